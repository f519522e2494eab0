//! Given names, initials and family names (spec §3.2–§3.4).

use super::error::Reason;
use super::text::{Unit, fold, split_at, words};

/// Tussenvoegsels and comparable name particles, after folding (spec §3.4, table T).
///
/// They are removed from family names before any key is derived, so that
/// "de Vries", "Vries, de", "Vries" and "DE VRIES" meet.
pub const TUSSENVOEGSELS: &[&str] = &[
    "aan", "al", "am", "auf", "bij", "d", "da", "das", "de", "del", "della", "dem", "den", "der",
    "des", "di", "do", "dos", "du", "el", "het", "in", "l", "la", "le", "les", "lo", "onder", "op",
    "over", "s", "t", "te", "ten", "ter", "tho", "thoe", "tot", "uijt", "uit", "v", "van", "vd",
    "vom", "von", "voor", "zu", "zum", "zur",
];

/// Whether `word` (folded) is in the tussenvoegsel table.
pub fn is_tussenvoegsel(word: &str) -> bool {
    TUSSENVOEGSELS.binary_search(&word).is_ok()
}

/// Most family-name parts used for keys; further parts are ignored (spec §3.4).
pub const MAX_FAMILY_PARTS: usize = 3;

/// The normalised given-name information of a person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GivenNames {
    /// The first given name in full, if the record has one (not only initials).
    pub first: Option<String>,
    /// The initials of all given names, in order (`"mj"`).
    pub initials: String,
}

/// Which of the two given-name fields a rejection is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GivenField {
    /// The `given_names` field.
    GivenNames,
    /// The `initials` field.
    Initials,
}

/// Normalises a given-names field (and an optional separate initials field) (spec §3.2).
///
/// Hyphenated given names count as separate names ("Jan-Willem" = "Jan Willem").
/// A field whose first word is a single letter is read as initials only.
pub fn given_names(given: &str, initials: &str) -> Result<GivenNames, (GivenField, Reason)> {
    let parse = |text: &str, field: GivenField| -> Result<Vec<String>, (GivenField, Reason)> {
        let ws = words(&fold(text).map_err(|r| (field, r))?);
        if ws.is_empty() && !text.trim().is_empty() {
            return Err((field, Reason::EmptyName));
        }
        Ok(ws)
    };
    let given_words = parse(given, GivenField::GivenNames)?;
    let initial_words = parse(initials, GivenField::Initials)?;
    let mut out = GivenNames::default();
    if let Some(first) = given_words.first() {
        if first.len() > 1 {
            out.first = Some(first.clone());
        }
    }
    let source = if initial_words.is_empty() {
        &given_words
    } else {
        &initial_words
    };
    out.initials = source.iter().filter_map(|w| w.chars().next()).collect();
    Ok(out)
}

/// Normalises a family-name field into its core parts (spec §3.4).
///
/// Returns the cores of the parts in order of appearance, without duplicates,
/// at most [`MAX_FAMILY_PARTS`]. An empty field gives an empty list.
pub fn family_name(input: &str) -> Result<Vec<String>, Reason> {
    let units = fold(input)?;
    let pieces = split_at(&units, Unit::Comma);
    let main: &[Unit] = match pieces.as_slice() {
        [only] => only,
        [main, trailer] if words(trailer).iter().all(|w| is_tussenvoegsel(w)) => main,
        _ => return Err(Reason::CommaInFamilyName),
    };
    let cores = family_cores(main);
    if cores.is_empty() && !input.trim().is_empty() {
        return Err(Reason::EmptyName);
    }
    Ok(cores)
}

/// Splits folded family-name units into parts and takes each part's core.
fn family_cores(units: &[Unit]) -> Vec<String> {
    let mut cores: Vec<String> = Vec::new();
    for segment in split_at(units, Unit::Hyphen) {
        let ws = words(segment);
        // A tussenvoegsel after a non-tussenvoegsel word starts a new part
        // ("Jansen de Vries" written without hyphen).
        let mut part: Vec<&str> = Vec::new();
        for w in &ws {
            if is_tussenvoegsel(w) && part.iter().any(|p| !is_tussenvoegsel(p)) {
                push_core(&mut cores, &part);
                part.clear();
            }
            part.push(w);
        }
        push_core(&mut cores, &part);
    }
    cores.truncate(MAX_FAMILY_PARTS);
    cores
}

fn push_core(cores: &mut Vec<String>, part: &[&str]) {
    if part.is_empty() {
        return;
    }
    let start = part
        .iter()
        .position(|w| !is_tussenvoegsel(w))
        .unwrap_or(part.len() - 1);
    let core: String = part[start..].concat();
    if !cores.contains(&core) {
        cores.push(core);
    }
}

/// Splits a full-name field into (given-names text, family-name text) (spec §3.5).
///
/// "Jansen-de Vries, Marieke" → family before the comma, given names after it.
/// Without a comma the given names run up to the first tussenvoegsel that is not
/// the first word, or else up to the last word, which is the family name.
pub fn split_full_name(input: &str) -> Result<(String, String), Reason> {
    let units = fold(input)?;
    let pieces = split_at(&units, Unit::Comma);
    let render = |us: &[Unit]| -> String {
        let s: String = us
            .iter()
            .map(|u| match u {
                Unit::Letter(b) => *b as char,
                Unit::Hyphen => '-',
                _ => ' ',
            })
            .collect();
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    match pieces.as_slice() {
        [family, given] => {
            let gw = words(given);
            // "Vries, de" has no given name; "Berg, T." has the initial T although
            // `t` is in table T too: single letters are initials.
            let initials_only = gw.iter().all(|w| w.len() == 1);
            if gw.is_empty() || (!initials_only && gw.iter().all(|w| is_tussenvoegsel(w))) {
                return Err(Reason::FullNameWithoutGivenName);
            }
            Ok((render(given), render(family)))
        }
        [only] => {
            // Tokens keep their hyphens so that "Vries-Jansen" stays one family-name token.
            let text = render(only);
            let tokens: Vec<&str> = text.split(' ').filter(|t| !t.is_empty()).collect();
            if tokens.len() < 2 {
                return Err(Reason::FullNameWithoutGivenName);
            }
            let split = tokens
                .iter()
                .enumerate()
                .skip(1)
                .find(|(_, t)| is_tussenvoegsel(t))
                .map(|(i, _)| i)
                .unwrap_or(tokens.len() - 1);
            Ok((tokens[..split].join(" "), tokens[split..].join(" ")))
        }
        _ => Err(Reason::CommaInFamilyName),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        let mut sorted = TUSSENVOEGSELS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, TUSSENVOEGSELS);
    }

    #[test]
    fn family_name_variants_meet() {
        let want = vec!["vries".to_string()];
        for v in [
            "de Vries",
            "Vries, de",
            "DE VRIES",
            "Vries",
            "  de   vries ",
        ] {
            assert_eq!(family_name(v).unwrap(), want, "{v}");
        }
        assert_eq!(
            family_name("Jansen-de Vries").unwrap(),
            vec!["jansen", "vries"]
        );
        assert_eq!(
            family_name("de Vries-Jansen").unwrap(),
            vec!["vries", "jansen"]
        );
        assert_eq!(
            family_name("Jansen de Vries").unwrap(),
            vec!["jansen", "vries"]
        );
        assert_eq!(family_name("van 't Hof").unwrap(), vec!["hof"]);
        assert_eq!(family_name("d'Ancona").unwrap(), vec!["ancona"]);
        assert_eq!(family_name("O'Brien").unwrap(), vec!["obrien"]);
        assert_eq!(family_name("Van").unwrap(), vec!["van"]);
        assert_eq!(family_name("Çelik").unwrap(), vec!["celik"]);
        assert_eq!(family_name("").unwrap(), Vec::<String>::new());
        assert_eq!(family_name("Jansen, M."), Err(Reason::CommaInFamilyName));
        assert_eq!(family_name("Jansen2"), Err(Reason::DigitInName));
        assert_eq!(family_name("--"), Err(Reason::EmptyName));
        assert_eq!(family_name("  "), Ok(vec![]));
    }

    #[test]
    fn given_names_and_initials() {
        let g = given_names("Marieke Johanna", "").unwrap();
        assert_eq!(g.first.as_deref(), Some("marieke"));
        assert_eq!(g.initials, "mj");
        let g = given_names("M.J.", "").unwrap();
        assert_eq!(g.first, None);
        assert_eq!(g.initials, "mj");
        let g = given_names("", "M. J.").unwrap();
        assert_eq!(g.initials, "mj");
        let g = given_names("Jan-Willem", "").unwrap();
        assert_eq!(g.first.as_deref(), Some("jan"));
        assert_eq!(g.initials, "jw");
        let g = given_names("Daniël", "").unwrap();
        assert_eq!(g.first.as_deref(), Some("daniel"));
        assert_eq!(
            given_names("...", ""),
            Err((GivenField::GivenNames, Reason::EmptyName))
        );
        assert_eq!(
            given_names("Jan", "-"),
            Err((GivenField::Initials, Reason::EmptyName))
        );
    }

    #[test]
    fn full_names() {
        assert_eq!(
            split_full_name("Jansen-de Vries, Marieke").unwrap(),
            ("marieke".to_string(), "jansen-de vries".to_string())
        );
        assert_eq!(
            split_full_name("M. de Vries-Jansen").unwrap(),
            ("m".to_string(), "de vries-jansen".to_string())
        );
        assert_eq!(
            split_full_name("Jan Peter Smit").unwrap(),
            ("jan peter".to_string(), "smit".to_string())
        );
        assert_eq!(
            split_full_name("Smit"),
            Err(Reason::FullNameWithoutGivenName)
        );
        assert_eq!(
            split_full_name("Vries, de"),
            Err(Reason::FullNameWithoutGivenName)
        );
        assert_eq!(
            split_full_name("Vries, van der"),
            Err(Reason::FullNameWithoutGivenName)
        );
        assert_eq!(
            split_full_name("Vries,"),
            Err(Reason::FullNameWithoutGivenName)
        );
        // Initials that are also in table T (d, l, s, t, v) are still initials.
        assert_eq!(
            split_full_name("Berg, T.").unwrap(),
            ("t".to_string(), "berg".to_string())
        );
        assert_eq!(
            split_full_name("JANSEN, D.S.").unwrap(),
            ("d s".to_string(), "jansen".to_string())
        );
        // A given-name part mixing initials and a tussenvoegsel word is not initials.
        assert_eq!(
            split_full_name("Hof, v. de"),
            Err(Reason::FullNameWithoutGivenName)
        );
    }
}
