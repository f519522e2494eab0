//! Which input column feeds which canonical field.
//!
//! A mapping is given explicitly (a mapping file's `[columns]` table and `--map
//! FIELD=COLUMN` flags, the flags winning) and completed by name: a column whose
//! header (CSV) or key (JSON) equals a canonical field name, ignoring case and
//! surrounding spaces, feeds that field unless the field or the column is already
//! mapped explicitly. Columns that feed no field are ignored.

use super::field::Field;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// The explicit part of a mapping, as the user wrote it (not yet checked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappingSpec {
    /// (field name as written, column name as written), in order; one entry per field.
    entries: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    columns: toml::Table,
}

impl MappingSpec {
    /// An empty mapping: every field is mapped by name.
    pub fn new() -> MappingSpec {
        MappingSpec::default()
    }

    /// Maps `field` to `column`, replacing an earlier mapping of the same field.
    pub fn set(&mut self, field: &str, column: &str) {
        let field = field.trim().to_ascii_lowercase();
        match self.entries.iter_mut().find(|(f, _)| *f == field) {
            Some(e) => e.1 = column.to_string(),
            None => self.entries.push((field, column.to_string())),
        }
    }

    /// Whether nothing is mapped explicitly.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The explicit entries (field, column) in order.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    /// Parses the text of a mapping file: a TOML `[columns]` table of
    /// `field = "Column header"`. Parent fields may be written quoted
    /// (`"parent1.bsn" = "BSN moeder"`) or as a dotted key (`parent1.bsn = ...`).
    pub fn from_toml(text: &str) -> Result<MappingSpec, String> {
        let file: MappingFile = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let mut spec = MappingSpec::new();
        flatten(&mut spec, "", &file.columns)?;
        Ok(spec)
    }

    /// Reads a mapping file.
    pub fn read_file(path: &Path) -> Result<MappingSpec, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read mapping file {}: {e}", path.display()))?;
        MappingSpec::from_toml(&text)
            .map_err(|e| format!("mapping file {} is not valid: {e}", path.display()))
    }

    /// Parses one `FIELD=COLUMN` flag value.
    pub fn parse_flag(s: &str) -> Result<(String, String), String> {
        match s.split_once('=') {
            Some((f, c)) if !f.trim().is_empty() && !c.trim().is_empty() => {
                Ok((f.trim().to_string(), c.to_string()))
            }
            _ => Err("expected FIELD=COLUMN, e.g. birth_date=Geboortedatum".to_string()),
        }
    }

    /// The explicit entries as fields; unknown field names are collected as problems.
    fn fields(&self, problems: &mut Vec<String>) -> Vec<(Field, &str)> {
        let mut out = Vec::with_capacity(self.entries.len());
        for (f, c) in &self.entries {
            match Field::parse(f) {
                Some(field) => out.push((field, c.as_str())),
                None => problems.push(format!("unknown field \"{f}\"")),
            }
        }
        out
    }

    /// Resolves the mapping against a CSV header (the header's column names in order).
    pub fn resolve_header(&self, header: &[String]) -> Result<ColumnLayout, MappingError> {
        let mut problems = Vec::new();
        let explicit = self.fields(&mut problems);
        let mut columns: Vec<(usize, Field)> = Vec::new();
        let mut used = vec![false; header.len()];
        for (field, column) in &explicit {
            let want = column.trim();
            let exact: Vec<usize> = positions(header, |h| h.trim() == want);
            let found = if exact.len() == 1 {
                Ok(exact[0])
            } else if exact.len() > 1 {
                Err(format!(
                    "column \"{want}\" (for {field}) occurs {} times in the header",
                    exact.len()
                ))
            } else {
                match positions(header, |h| h.trim().eq_ignore_ascii_case(want)).as_slice() {
                    [i] => Ok(*i),
                    [] => Err(format!(
                        "column \"{want}\" (for {field}) is not in the header"
                    )),
                    many => Err(format!(
                        "column \"{want}\" (for {field}) matches {} header columns",
                        many.len()
                    )),
                }
            };
            match found {
                Ok(i) => {
                    used[i] = true;
                    columns.push((i, *field));
                }
                Err(p) => problems.push(p),
            }
        }
        for field in Field::all() {
            if explicit.iter().any(|(f, _)| *f == field) {
                continue;
            }
            let name = field.to_string();
            let by_name = positions(header, |h| h.trim().eq_ignore_ascii_case(&name));
            let free: Vec<usize> = by_name.into_iter().filter(|&i| !used[i]).collect();
            match free.as_slice() {
                [] => {}
                [i] => columns.push((*i, field)),
                many => problems.push(format!(
                    "{} header columns are named {name}; map one with --map {name}=COLUMN",
                    many.len()
                )),
            }
        }
        if !columns.iter().any(|(_, f)| *f == Field::Reference)
            && !explicit.iter().any(|(f, _)| *f == Field::Reference)
        {
            problems.push(
                "no column for reference (name a column \"reference\" or use --map reference=COLUMN)"
                    .to_string(),
            );
        }
        if problems.is_empty() {
            columns.sort_by_key(|(i, _)| *i);
            Ok(ColumnLayout {
                columns,
                width: header.len(),
            })
        } else {
            Err(MappingError {
                problems,
                columns: Some(header.len()),
            })
        }
    }

    /// Resolves the mapping for JSON objects, whose keys are only known row by row.
    pub fn resolve_keys(&self) -> Result<KeyMap, MappingError> {
        let mut problems = Vec::new();
        let explicit = self.fields(&mut problems);
        if !problems.is_empty() {
            return Err(MappingError {
                problems,
                columns: None,
            });
        }
        let mut exact = HashMap::new();
        let mut folded = HashMap::new();
        for (field, column) in &explicit {
            exact.insert(column.to_string(), *field);
            folded.entry(column.trim().to_lowercase()).or_insert(*field);
        }
        for field in Field::all() {
            if !explicit.iter().any(|(f, _)| *f == field) {
                folded.entry(field.to_string()).or_insert(field);
            }
        }
        Ok(KeyMap { exact, folded })
    }
}

fn flatten(spec: &mut MappingSpec, prefix: &str, table: &toml::Table) -> Result<(), String> {
    for (k, v) in table {
        let name = format!("{prefix}{k}");
        match v {
            toml::Value::String(c) => {
                if c.trim().is_empty() {
                    return Err(format!("columns.{name} is empty"));
                }
                spec.set(&name, c)
            }
            toml::Value::Table(t) if prefix.is_empty() => flatten(spec, &format!("{name}."), t)?,
            _ => return Err(format!("columns.{name} must be a string (a column name)")),
        }
    }
    Ok(())
}

fn positions(header: &[String], pred: impl Fn(&str) -> bool) -> Vec<usize> {
    header
        .iter()
        .enumerate()
        .filter(|(_, h)| pred(h))
        .map(|(i, _)| i)
        .collect()
}

/// A mapping resolved against a CSV header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnLayout {
    /// (column index, field), in column order.
    pub columns: Vec<(usize, Field)>,
    /// Number of columns in the header; every row must have exactly this many.
    pub width: usize,
}

/// A mapping for JSON objects: which key feeds which field.
#[derive(Debug, Clone)]
pub struct KeyMap {
    exact: HashMap<String, Field>,
    folded: HashMap<String, Field>,
}

impl KeyMap {
    /// The field a JSON key feeds, if any.
    pub fn field(&self, key: &str) -> Option<Field> {
        if let Some(f) = self.exact.get(key) {
            return Some(*f);
        }
        let k = key.trim();
        if k.bytes().all(|b| !b.is_ascii_uppercase()) && k.is_ascii() {
            return self.folded.get(k).copied();
        }
        self.folded.get(&k.to_lowercase()).copied()
    }
}

/// The mapping does not fit the input; nothing was processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError {
    /// Every problem found, one phrase each.
    pub problems: Vec<String>,
    /// How many columns the header has (CSV only). The header's cells are never
    /// repeated: in an export without a header row they would be personal data.
    pub columns: Option<usize>,
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot map the input columns: {}",
            self.problems.join("; ")
        )?;
        if let Some(n) = self.columns {
            write!(
                f,
                " (the first line, read as the header, has {n} columns; check that it is a header row)"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for MappingError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::field::PersonField;

    fn header(cols: &[&str]) -> Vec<String> {
        cols.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn by_name_is_case_insensitive_and_ignores_extra_columns() {
        let h = header(&[" Reference ", "BSN", "notes", "Birth_Date"]);
        let l = MappingSpec::new().resolve_header(&h).unwrap();
        assert_eq!(
            l.columns,
            vec![
                (0, Field::Reference),
                (1, Field::Person(PersonField::Bsn)),
                (3, Field::Person(PersonField::BirthDate)),
            ]
        );
        assert_eq!(l.width, 4);
    }

    #[test]
    fn explicit_mapping_wins_and_is_completed_by_name() {
        let mut m = MappingSpec::from_toml(
            "[columns]\nreference = \"Dossier\"\nparent1.bsn = \"BSN moeder\"\n\"parent2.bsn\" = \"BSN vader\"\n",
        )
        .unwrap();
        m.set("reference", "Nr");
        let h = header(&[
            "Nr",
            "Dossier",
            "bsn moeder",
            "BSN vader",
            "bsn",
            "reference",
        ]);
        let l = m.resolve_header(&h).unwrap();
        assert_eq!(
            l.columns,
            vec![
                (0, Field::Reference),
                (2, Field::Parent(1, PersonField::Bsn)),
                (3, Field::Parent(2, PersonField::Bsn)),
                (4, Field::Person(PersonField::Bsn)),
            ]
        );
    }

    #[test]
    fn problems_are_all_listed() {
        let mut m = MappingSpec::new();
        m.set("voornaam", "Voornaam");
        m.set("birth_date", "Geboortedatum");
        let err = m.resolve_header(&header(&["Naam", "bsn"])).unwrap_err();
        assert_eq!(err.problems.len(), 3, "{err}");
        let text = err.to_string();
        assert!(text.contains("unknown field \"voornaam\""), "{text}");
        assert!(text.contains("\"Geboortedatum\" (for birth_date) is not in the header"));
        assert!(text.contains("no column for reference"));
        assert!(text.contains("has 2 columns"));
        assert!(!text.contains("Naam"), "header cells are never repeated");
    }

    #[test]
    fn duplicate_named_columns_are_refused() {
        let err = MappingSpec::new()
            .resolve_header(&header(&["reference", "bsn", "BSN"]))
            .unwrap_err();
        assert!(err.to_string().contains("2 header columns are named bsn"));
    }

    #[test]
    fn flags_and_files() {
        assert_eq!(
            MappingSpec::parse_flag("bsn=BSN = x"),
            Ok(("bsn".into(), "BSN = x".into()))
        );
        assert!(MappingSpec::parse_flag("bsn").is_err());
        assert!(MappingSpec::parse_flag("=x").is_err());
        assert!(MappingSpec::from_toml("[columns]\nbsn = 1\n").is_err());
        assert!(MappingSpec::from_toml("[cols]\nbsn = \"x\"\n").is_err());
        assert!(MappingSpec::from_toml("[columns]\na.b.c = \"x\"\n").is_err());
    }

    #[test]
    fn json_keys() {
        let mut m = MappingSpec::new();
        m.set("family_name", "Achternaam");
        let k = m.resolve_keys().unwrap();
        assert_eq!(
            k.field("Achternaam"),
            Some(Field::Person(PersonField::FamilyName))
        );
        assert_eq!(
            k.field("achternaam"),
            Some(Field::Person(PersonField::FamilyName))
        );
        assert_eq!(k.field("family_name"), None);
        assert_eq!(k.field("Reference"), Some(Field::Reference));
        assert_eq!(
            k.field("parent1.bsn"),
            Some(Field::Parent(1, PersonField::Bsn))
        );
        assert_eq!(k.field("notes"), None);
        let mut bad = MappingSpec::new();
        bad.set("x", "y");
        assert!(bad.resolve_keys().is_err());
    }
}
