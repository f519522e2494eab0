//! Turning raw rows into key-set lines or row rejects. Runs on the worker threads;
//! every function here is pure apart from writing into the chunk it is given.

use super::MAX_FIELD_BYTES;
use super::field::{Field, clear_subject};
use super::reject::{ROW, RowError, code};
use super::source::{Cut, InputBatch, Layout};
use crate::pseudonym::{Date, DomainKey, SubjectFields, derive_subject, normalise_subject};
use sha2::{Digest, Sha256};
use std::ops::Range;

/// What is needed to process rows; shared read-only by all workers.
pub(crate) struct Ctx {
    pub key: DomainKey,
    pub today: Date,
    pub layout: Layout,
}

/// The outcome of one row.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// 1-based physical line of the row's start.
    pub line: u64,
    /// The row's reference if it is well-formed: a hash (for duplicate detection)
    /// and its place in [`Chunk::refs`].
    pub reference: Option<(u128, Range<usize>)>,
    /// The key-set line's place in [`Chunk::out`], or why the row was rejected.
    pub result: Result<Range<usize>, Vec<RowError>>,
}

/// The output of a contiguous run of rows. Buffers are reused from batch to batch.
#[derive(Default)]
pub(crate) struct Chunk {
    /// Key-set lines of the accepted rows, each ending in `\n`, in row order.
    pub out: String,
    /// References of the rows (where well-formed), one after the other.
    pub refs: String,
    /// One outcome per row, in order.
    pub rows: Vec<Outcome>,
    scratch: SubjectFields,
    errors: Vec<RowError>,
}

impl Chunk {
    fn clear(&mut self) {
        self.out.clear();
        self.refs.clear();
        self.rows.clear();
    }
}

/// Processes rows `range` of `batch` into `chunk` (which is cleared first).
pub(crate) fn process_rows(ctx: &Ctx, batch: &InputBatch, range: Range<usize>, chunk: &mut Chunk) {
    chunk.clear();
    for i in range {
        let span = batch.rows[i];
        let raw = &batch.raw[span.start..span.end];
        let filled = match &ctx.layout {
            Layout::Columns { layout, delimiter } => {
                fill_from_csv(layout, *delimiter, span.cut, raw, &batch.records[i], chunk)
            }
            Layout::Keys(keys) => fill_from_json(keys, span.cut, raw, chunk),
        };
        match filled {
            Ok(()) => finish(ctx, span.line, chunk),
            Err(e) => chunk.rows.push(Outcome {
                line: span.line,
                reference: None,
                result: Err(vec![e]),
            }),
        }
    }
}

/// Puts the mapped fields of a CSV record into the chunk's scratch record; field
/// problems go to the chunk's error list. `Err` means the row as a whole is unusable
/// (its fields cannot be trusted to be in their columns, so not even the reference is kept).
fn fill_from_csv(
    layout: &super::mapping::ColumnLayout,
    delimiter: u8,
    cut: Option<Cut>,
    raw: &[u8],
    record: &csv::ByteRecord,
    chunk: &mut Chunk,
) -> Result<(), RowError> {
    if cut.is_some() || !super::source::quoting_ok(raw, delimiter) {
        return Err(RowError::new(
            ROW,
            code::MALFORMED_CSV,
            "not valid CSV: a stray quote, or a quoted field not closed properly \
             (later lines may have been read as part of this row)",
        ));
    }
    if record.len() != layout.width {
        return Err(RowError::new(
            ROW,
            code::CSV_FIELD_COUNT,
            format!(
                "the row has {} fields, the header has {}",
                record.len(),
                layout.width
            ),
        ));
    }
    clear_subject(&mut chunk.scratch);
    chunk.errors.clear();
    // One UTF-8 check for the whole record instead of one per field; a field is then
    // valid exactly when its bounds fall on character boundaries.
    let whole = std::str::from_utf8(record.as_slice()).ok();
    for &(col, field) in &layout.columns {
        let value = record.get(col).unwrap_or_default();
        let text = match (whole, record.range(col)) {
            (Some(w), Some(r)) => w.get(r),
            _ => std::str::from_utf8(value).ok(),
        };
        match text {
            Some(t) => put(field, t, &mut chunk.scratch, &mut chunk.errors),
            None => chunk.errors.push(RowError::new(
                field.to_string(),
                code::NOT_UTF8,
                "not valid UTF-8 (save the export as UTF-8, not as ANSI/Windows-1252)",
            )),
        }
    }
    Ok(())
}

fn put(field: Field, value: &str, s: &mut SubjectFields, errors: &mut Vec<RowError>) {
    if value.len() > MAX_FIELD_BYTES {
        errors.push(RowError::new(
            field.to_string(),
            code::TOO_LONG,
            "longer than 1000 bytes",
        ));
    } else {
        field.slot(s).push_str(value);
    }
}

fn fill_from_json(
    keys: &super::mapping::KeyMap,
    cut: Option<Cut>,
    raw: &[u8],
    chunk: &mut Chunk,
) -> Result<(), RowError> {
    if cut.is_some() {
        return Err(RowError::new(
            ROW,
            code::TOO_LONG,
            "the line is longer than 1 MiB",
        ));
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return Err(RowError::new(
            ROW,
            code::NOT_UTF8,
            "the line is not valid UTF-8",
        ));
    };
    let object = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(m)) => m,
        Ok(_) => {
            return Err(RowError::new(
                ROW,
                code::MALFORMED_JSON,
                "the line is JSON but not an object",
            ));
        }
        Err(e) => {
            // serde_json's syntax errors name positions, not input text.
            return Err(RowError::new(
                ROW,
                code::MALFORMED_JSON,
                format!("the line is not one JSON object (column {})", e.column()),
            ));
        }
    };
    clear_subject(&mut chunk.scratch);
    chunk.errors.clear();
    for (k, v) in &object {
        let Some(field) = keys.field(k) else { continue };
        match v {
            serde_json::Value::String(s) => put(field, s, &mut chunk.scratch, &mut chunk.errors),
            serde_json::Value::Null => {}
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => {
                field.slot(&mut chunk.scratch).push_str(&n.to_string())
            }
            _ => chunk.errors.push(RowError::new(
                field.to_string(),
                code::WRONG_TYPE,
                "must be a string, an integer or null",
            )),
        }
    }
    Ok(())
}

/// Normalises and derives the chunk's scratch record, or records why not.
fn finish(ctx: &Ctx, line: u64, chunk: &mut Chunk) {
    let s = &chunk.scratch;
    let reference_ok = |errors: &[RowError]| !errors.iter().any(|e| e.field == "reference");
    let result = if chunk.errors.is_empty() {
        match normalise_subject(s, ctx.today) {
            Ok(n) => {
                let start = chunk.out.len();
                derive_subject(&ctx.key, &n).write_json(&mut chunk.out);
                chunk.out.push('\n');
                Ok(start..chunk.out.len())
            }
            Err(errors) => Err(errors.into_iter().map(RowError::from).collect::<Vec<_>>()),
        }
    } else {
        // Fields that could not even be read: report those; normalising the rest
        // would add noise (e.g. insufficient_identifiers for a field left empty).
        Err(chunk.errors.clone())
    };
    let well_formed = match &result {
        Ok(_) => true,
        Err(errors) => {
            reference_ok(errors)
                && crate::pseudonym::ladder::check_reference(s.reference.trim()).is_ok()
        }
    };
    let reference = well_formed.then(|| {
        let r = s.reference.trim();
        let start = chunk.refs.len();
        chunk.refs.push_str(r);
        (reference_hash(r), start..chunk.refs.len())
    });
    chunk.rows.push(Outcome {
        line,
        reference,
        result,
    });
}

/// 128 bits of SHA-256 of a reference: enough to tell a million references apart
/// without keeping them all in memory.
fn reference_hash(r: &str) -> u128 {
    let d = Sha256::digest(r.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_le_bytes(b)
}
