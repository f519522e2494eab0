//! Reading a partner export (CSV or JSON Lines) in batches of raw rows.
//!
//! The reader only cuts the input into rows and notes where each row starts; all
//! checking and normalising happens later, in parallel ([`super::process`]).

use super::mapping::{ColumnLayout, KeyMap, MappingError, MappingSpec};
use csv::ByteRecord;
use std::io::{self, BufRead, BufReader, Cursor, Read};

/// The UTF-8 byte-order mark some tools (Excel) put before the first line.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Longest JSON Lines line accepted; a longer line is rejected and skipped.
pub const MAX_JSON_LINE: usize = 1 << 20;

/// Delimiters recognised when none is given, in order of preference on a tie.
pub const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// The input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values (RFC 4180) with a header row.
    Csv,
    /// JSON Lines: one JSON object per line.
    Jsonl,
}

/// The export could not be opened for processing; nothing was processed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The input could not be read.
    #[error("cannot read the input: {0}")]
    Read(#[from] io::Error),
    /// A CSV input without even a header row.
    #[error("the input is empty: a CSV export needs a header row")]
    Empty,
    /// The mapping does not fit the input.
    #[error(transparent)]
    Mapping(#[from] MappingError),
}

/// Why a row was cut short by the reader, before any field was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// The CSV parser gave up on this record.
    Unparsable,
    /// The line is longer than [`MAX_JSON_LINE`].
    LineTooLong,
}

/// Where one row is in a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowSpan {
    /// 1-based physical line of the row's first byte.
    pub line: u64,
    /// Byte range of the row's raw text in [`InputBatch::raw`].
    pub start: usize,
    /// End of that range.
    pub end: usize,
    /// Set when the reader could not even cut the row properly.
    pub cut: Option<Cut>,
}

/// Raw rows as read. Buffers are reused from batch to batch.
#[derive(Default)]
pub(crate) struct InputBatch {
    /// Parsed CSV records (unused for JSON Lines); only the first `rows.len()` are valid.
    pub records: Vec<ByteRecord>,
    /// The raw text of the rows, one after the other.
    pub raw: Vec<u8>,
    /// One entry per row.
    pub rows: Vec<RowSpan>,
    /// Input bytes consumed once this batch was read (for progress).
    pub consumed: u64,
}

impl InputBatch {
    fn clear(&mut self) {
        self.raw.clear();
        self.rows.clear();
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }
}

/// How the fields of a row are found.
#[derive(Debug, Clone)]
pub(crate) enum Layout {
    /// CSV: by column position.
    Columns {
        /// The resolved columns.
        layout: ColumnLayout,
        /// The field delimiter.
        delimiter: u8,
    },
    /// JSON Lines: by member name.
    Keys(KeyMap),
}

/// An opened export: the row reader and how to find the fields in each row.
pub struct Source {
    pub(crate) reader: RowReader,
    pub(crate) layout: Layout,
}

impl Source {
    /// Opens a CSV export: reads the header, detects the delimiter unless one is
    /// given, and resolves `mapping` against the header.
    pub fn csv(
        input: Box<dyn Read + Send>,
        delimiter: Option<u8>,
        mapping: &MappingSpec,
    ) -> Result<Source, OpenError> {
        let mut buffered = BufReader::with_capacity(1 << 16, input);
        let mut first = Vec::new();
        (&mut buffered)
            .take(MAX_JSON_LINE as u64)
            .read_until(b'\n', &mut first)?;
        let bom = if first.starts_with(BOM) {
            first.drain(..BOM.len());
            BOM.len() as u64
        } else {
            0
        };
        let delimiter = delimiter.unwrap_or_else(|| detect_delimiter(&first));
        let tee = Tee {
            inner: Box::new(Cursor::new(first).chain(buffered)),
            buf: Vec::with_capacity(1 << 17),
            base: 0,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .buffer_capacity(1 << 16)
            .from_reader(tee);
        let mut header = ByteRecord::new();
        match rdr.read_byte_record(&mut header) {
            Ok(true) => {}
            Ok(false) => return Err(OpenError::Empty),
            Err(e) => return Err(OpenError::Read(csv_to_io(e))),
        }
        let names: Vec<String> = header
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_string())
            .collect();
        let layout = mapping.resolve_header(&names)?;
        let mut csv = CsvReader { rdr, bom };
        csv.trim_tee();
        Ok(Source {
            reader: RowReader::Csv(Box::new(csv)),
            layout: Layout::Columns { layout, delimiter },
        })
    }

    /// Opens a JSON Lines export.
    pub fn jsonl(input: Box<dyn Read + Send>, mapping: &MappingSpec) -> Result<Source, OpenError> {
        let keys = mapping.resolve_keys()?;
        Ok(Source {
            reader: RowReader::Jsonl(JsonlReader {
                rdr: BufReader::with_capacity(1 << 16, input),
                line: 0,
                consumed: 0,
            }),
            layout: Layout::Keys(keys),
        })
    }

    /// The delimiter in use (CSV only).
    pub fn delimiter(&self) -> Option<u8> {
        match &self.layout {
            Layout::Columns { delimiter, .. } => Some(*delimiter),
            Layout::Keys(_) => None,
        }
    }
}

/// Picks the candidate delimiter that occurs most often outside quotes in the header line.
pub fn detect_delimiter(header_line: &[u8]) -> u8 {
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for &b in header_line {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(i) = DELIMITERS.iter().position(|&d| d == b) {
                counts[i] += 1;
            }
        }
    }
    let mut best = 0;
    for i in 1..DELIMITERS.len() {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    DELIMITERS[best]
}

/// The row-cutting half of a [`Source`]; runs on the reading thread.
pub(crate) enum RowReader {
    Csv(Box<CsvReader>),
    Jsonl(JsonlReader),
}

impl RowReader {
    /// Replaces the contents of `batch` with up to `max_rows` next rows; none at the end.
    pub fn fill(&mut self, batch: &mut InputBatch, max_rows: usize) -> io::Result<()> {
        batch.clear();
        match self {
            RowReader::Csv(c) => c.fill(batch, max_rows),
            RowReader::Jsonl(j) => j.fill(batch, max_rows),
        }
    }
}

/// Keeps a copy of the bytes the CSV parser reads, so that each record's raw text
/// can be checked for RFC 4180 quoting (the parser itself is lenient).
struct Tee {
    inner: Box<dyn Read + Send>,
    /// Bytes from stream offset `base` on.
    buf: Vec<u8>,
    base: u64,
}

/// Most bytes one batch of CSV records may span. Only an unclosed quote, which makes
/// the rest of the file one field, comes near; past it the run stops instead of
/// reading the whole file into memory.
pub const MAX_CSV_BATCH_BYTES: usize = 256 << 20;

impl Read for Tee {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.buf.len() > MAX_CSV_BATCH_BYTES {
            return Err(io::Error::other(
                "a CSV record runs on for more than 256 MiB; is a quote not closed?",
            ));
        }
        let n = self.inner.read(out)?;
        self.buf.extend_from_slice(&out[..n]);
        Ok(n)
    }
}

pub(crate) struct CsvReader {
    rdr: csv::Reader<Tee>,
    /// Length of the byte-order mark that was stripped (for progress in file bytes).
    bom: u64,
}

fn csv_to_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

impl CsvReader {
    fn trim_tee(&mut self) {
        let pos = self.rdr.position().byte();
        let tee = self.rdr.get_mut();
        let drop = usize::try_from(pos.saturating_sub(tee.base))
            .unwrap_or(usize::MAX)
            .min(tee.buf.len());
        tee.buf.drain(..drop);
        tee.base += drop as u64;
    }

    fn fill(&mut self, batch: &mut InputBatch, max_rows: usize) -> io::Result<()> {
        while batch.rows.len() < max_rows {
            let i = batch.rows.len();
            if batch.records.len() <= i {
                batch.records.push(ByteRecord::new());
            }
            let record = &mut batch.records[i];
            let cut = match self.rdr.read_byte_record(record) {
                Ok(true) => None,
                Ok(false) => break,
                Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => return Err(csv_to_io(e)),
                // Not produced by a flexible byte-record reader; kept as a row-level reject.
                Err(_) => Some(Cut::Unparsable),
            };
            let (start_byte, start_line) = record
                .position()
                .map(|p| (p.byte(), p.line()))
                .unwrap_or((0, 0));
            let end_byte = self.rdr.position().byte();
            let tee = self.rdr.get_ref();
            let from = usize::try_from(start_byte.saturating_sub(tee.base)).unwrap_or(0);
            let to = usize::try_from(end_byte.saturating_sub(tee.base))
                .unwrap_or(0)
                .min(tee.buf.len());
            let raw = tee.buf.get(from..to).unwrap_or(&[]);
            // The parser's record position is just after the previous record's
            // terminator; blank lines and a CRLF's LF may come before the record.
            let lead = raw
                .iter()
                .take_while(|b| matches!(b, b'\n' | b'\r'))
                .count();
            let newlines = raw[..lead].iter().filter(|&&b| b == b'\n').count() as u64;
            let start = batch.raw.len();
            batch.raw.extend_from_slice(&raw[lead..]);
            batch.rows.push(RowSpan {
                line: start_line + newlines,
                start,
                end: batch.raw.len(),
                cut,
            });
        }
        self.trim_tee();
        batch.consumed = self.rdr.position().byte() + self.bom;
        Ok(())
    }
}

pub(crate) struct JsonlReader {
    rdr: BufReader<Box<dyn Read + Send>>,
    line: u64,
    consumed: u64,
}

impl JsonlReader {
    fn fill(&mut self, batch: &mut InputBatch, max_rows: usize) -> io::Result<()> {
        while batch.rows.len() < max_rows {
            let start = batch.raw.len();
            let n = (&mut self.rdr)
                .take(MAX_JSON_LINE as u64 + 1)
                .read_until(b'\n', &mut batch.raw)?;
            if n == 0 {
                break;
            }
            self.line += 1;
            self.consumed += n as u64;
            let mut cut = None;
            if batch.raw.last() != Some(&b'\n') && n > MAX_JSON_LINE {
                self.consumed += self.skip_line()?;
                cut = Some(Cut::LineTooLong);
            }
            if self.line == 1 && batch.raw[start..].starts_with(BOM) {
                batch.raw.drain(start..start + BOM.len());
            }
            while matches!(batch.raw.last(), Some(b'\n' | b'\r')) && batch.raw.len() > start {
                batch.raw.pop();
            }
            if cut.is_none() && batch.raw[start..].iter().all(u8::is_ascii_whitespace) {
                batch.raw.truncate(start);
                continue;
            }
            if cut.is_some() {
                batch.raw.truncate(start);
            }
            batch.rows.push(RowSpan {
                line: self.line,
                start,
                end: batch.raw.len(),
                cut,
            });
        }
        batch.consumed = self.consumed;
        Ok(())
    }

    /// Discards the rest of an over-long line; returns the bytes skipped.
    fn skip_line(&mut self) -> io::Result<u64> {
        let mut skipped = 0u64;
        loop {
            let buf = self.rdr.fill_buf()?;
            if buf.is_empty() {
                return Ok(skipped);
            }
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.rdr.consume(i + 1);
                    return Ok(skipped + i as u64 + 1);
                }
                None => {
                    let n = buf.len();
                    self.rdr.consume(n);
                    skipped += n as u64;
                }
            }
        }
    }
}

/// Whether the raw text of one CSV record follows RFC 4180 quoting: a field is
/// either unquoted without any `"`, or fully quoted with inner quotes doubled.
pub fn quoting_ok(raw: &[u8], delimiter: u8) -> bool {
    if !raw.contains(&b'"') {
        return true;
    }
    let mut n = raw.len();
    while n > 0 && matches!(raw[n - 1], b'\n' | b'\r') {
        n -= 1;
    }
    let raw = &raw[..n];
    let mut i = 0;
    loop {
        if raw.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match raw[i..].iter().position(|&b| b == b'"') {
                    None => return false,
                    Some(p) => {
                        i += p + 1;
                        if raw.get(i) == Some(&b'"') {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
            match raw.get(i) {
                None => return true,
                Some(&b) if b == delimiter => i += 1,
                Some(_) => return false,
            }
        } else {
            let end = raw[i..]
                .iter()
                .position(|&b| b == delimiter)
                .map_or(n, |p| i + p);
            if raw[i..end].contains(&b'"') {
                return false;
            }
            if end == n {
                return true;
            }
            i = end + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters() {
        assert_eq!(detect_delimiter(b"a,b,c\n"), b',');
        assert_eq!(detect_delimiter(b"a;b;c\r\n"), b';');
        assert_eq!(detect_delimiter(b"\"a;b\",c,d\n"), b',');
        assert_eq!(detect_delimiter(b"\"x,y,z\";b\n"), b';');
        assert_eq!(detect_delimiter(b"a\tb|c\td\n"), b'\t');
        assert_eq!(detect_delimiter(b"abc\n"), b',');
        assert_eq!(detect_delimiter(b"a,b;c\n"), b',');
    }

    #[test]
    fn rfc4180_quoting() {
        for ok in [
            &b"a,b,c\n"[..],
            b"\"a\",\"b,c\",d\r\n",
            b"\"a \"\"x\"\" b\",c",
            b"\"multi\nline\",x\n",
            b"a,\"\"",
            b"a,b,",
        ] {
            assert!(quoting_ok(ok, b','), "{}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b"a\"b,c\n"[..],
            b"\"ab\"c,d",
            b"\"unterminated,x\n",
            b" \"a\",b",
            b"\"a\" ,b",
        ] {
            assert!(!quoting_ok(bad, b','), "{}", String::from_utf8_lossy(bad));
        }
        assert!(quoting_ok(b"\"a;b\";c", b';'));
        assert!(!quoting_ok(b"\"a\",b", b';'));
    }

    fn read_all(source: &mut Source) -> Vec<(u64, String)> {
        let mut batch = InputBatch::default();
        let mut out = Vec::new();
        loop {
            source.reader.fill(&mut batch, 2).unwrap();
            if batch.len() == 0 {
                return out;
            }
            for r in &batch.rows {
                out.push((
                    r.line,
                    String::from_utf8_lossy(&batch.raw[r.start..r.end]).into_owned(),
                ));
            }
        }
    }

    #[test]
    fn csv_rows_keep_their_physical_line() {
        let text = "\u{feff}reference;bsn\r\nA;1\r\n\r\nB;\"x\ny\"\r\nC;3";
        let mut s = Source::csv(
            Box::new(Cursor::new(text.as_bytes().to_vec())),
            None,
            &MappingSpec::new(),
        )
        .unwrap();
        assert_eq!(s.delimiter(), Some(b';'));
        let rows = read_all(&mut s);
        assert_eq!(
            rows,
            vec![
                (2, "A;1\r".to_string()),
                (4, "B;\"x\ny\"\r".to_string()),
                (6, "C;3".to_string())
            ]
        );
    }

    #[test]
    fn jsonl_lines_skip_blanks_and_cut_long_lines() {
        let long = "x".repeat(MAX_JSON_LINE + 10);
        let text = format!("\u{feff}{{\"a\":1}}\n\n  \r\n{long}\n{{\"b\":2}}\r\n");
        let mut s = Source::jsonl(
            Box::new(Cursor::new(text.into_bytes())),
            &MappingSpec::new(),
        )
        .unwrap();
        let mut batch = InputBatch::default();
        s.reader.fill(&mut batch, 10).unwrap();
        let rows: Vec<(u64, Option<Cut>, String)> = batch
            .rows
            .iter()
            .map(|r| {
                (
                    r.line,
                    r.cut,
                    String::from_utf8_lossy(&batch.raw[r.start..r.end]).into_owned(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (1, None, "{\"a\":1}".to_string()),
                (4, Some(Cut::LineTooLong), String::new()),
                (5, None, "{\"b\":2}".to_string()),
            ]
        );
    }

    #[test]
    fn empty_csv_is_an_error() {
        let r = Source::csv(Box::new(Cursor::new(Vec::new())), None, &MappingSpec::new());
        assert!(matches!(r, Err(OpenError::Empty)));
    }
}
