//! Exports of the access log, produced in chunks so that any period streams in
//! constant memory (`spec/access-log.md` §4).
//!
//! **JSON Lines** is a verifiable segment of the chain: a header line, then one line per
//! entry of the period in sequence order — the stored line itself when the entry is in
//! the reader's scope and passes the filter, otherwise a *stub* with only its sequence,
//! body hash and chain hash — and an end line with the last chain hash and the counts.
//! The header carries the chain hash before the segment and the newest checkpoint in it. `samenloop audit verify --export` checks it offline.
//!
//! **CSV** holds the selected entries only, one row each, for spreadsheets: it proves
//! nothing by itself. Cells that a spreadsheet would read as a formula are prefixed
//! with `'`.

use super::checkpoint::{self, Checkpoint};
use super::query::{Filter, seq_range};
use super::{Entry, Scope, Sealed, body_hash, entry_key, hex, rfc3339_ms, seq_of_entry_key};
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// The `format` of an export's header line.
pub const FORMAT: &str = "samenloop-access-log";

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON Lines with stubs, header and end line (verifiable).
    Jsonl,
    /// CSV of the selected entries.
    Csv,
}

/// The first line of a JSON Lines export.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HeaderLine {
    /// [`FORMAT`].
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// When the export was made (RFC 3339).
    pub generated_at: String,
    /// Sequence of the first line after the header.
    pub first_seq: u64,
    /// Chain hash of the entry before it (zeros before entry 1); `null` if the index no
    /// longer has it (pruned).
    pub prev_chain: Option<String>,
    /// The selection, as asked (lines outside it are stubs).
    pub filter: serde_json::Value,
    /// The newest stored checkpoint within the exported sequences, if any: the chain
    /// must agree with it at its sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
}

/// A line for an entry outside the scope or the filter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StubLine {
    /// Sequence.
    pub seq: u64,
    /// BLAKE3 of the entry's body (hex).
    pub body_hash: String,
    /// The entry's chain hash (hex).
    pub chain: String,
}

/// The last line of a JSON Lines export.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EndLine {
    /// Always `true`.
    pub end: bool,
    /// Sequence of the last entry line (`first_seq - 1` when there is none).
    pub last_seq: u64,
    /// Its chain hash (or `prev_chain` when there is none).
    pub chain: Option<String>,
    /// Full entry lines.
    pub entries: u64,
    /// Stub lines.
    pub stubs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Header,
    Body,
    End,
    Done,
}

/// An export in progress: call [`Export::next_chunk`] until it returns `None`.
#[derive(Debug)]
pub struct Export {
    format: Format,
    scope: Scope,
    filter: Filter,
    filter_json: serde_json::Value,
    next: u64,
    hi: u64,
    lo: u64,
    stage: Stage,
    generated_at: String,
    last_chain: Option<[u8; 32]>,
    entries: u64,
    stubs: u64,
}

/// CSV column names.
pub const CSV_COLUMNS: [&str; 19] = [
    "seq",
    "time",
    "action",
    "outcome",
    "status",
    "operation",
    "actor",
    "organisation",
    "role",
    "on_behalf_of",
    "purpose",
    "actor_networks",
    "network",
    "object_type",
    "object_id",
    "related",
    "client",
    "request_id",
    "chain",
];

/// A cell a spreadsheet would not run as a formula.
fn cell(s: &str) -> String {
    match s.as_bytes().first() {
        Some(b'=' | b'+' | b'@' | b'\t' | b'\r') => format!("'{s}"),
        Some(b'-') if s.len() > 1 => format!("'{s}"),
        _ => s.to_string(),
    }
}

fn csv_row(e: &Entry, chain: &str) -> Vec<String> {
    let opt = |o: &Option<String>| cell(o.as_deref().unwrap_or(""));
    let name = |v: serde_json::Value| v.as_str().unwrap_or("").to_string();
    vec![
        e.seq.to_string(),
        rfc3339_ms(e.at_ms),
        e.action.name().to_string(),
        e.outcome.name().to_string(),
        e.status.to_string(),
        cell(&e.operation),
        cell(&e.actor),
        opt(&e.org),
        opt(&e.role),
        opt(&e.on_behalf_of),
        opt(&e.purpose),
        cell(&e.actor_networks.join(" ")),
        opt(&e.network),
        e.object_type
            .map(|t| name(serde_json::to_value(t).unwrap_or_default()))
            .unwrap_or_default(),
        opt(&e.object_id),
        cell(&e.related.join(" ")),
        cell(&e.client),
        cell(&e.request_id),
        chain.to_string(),
    ]
}

impl Export {
    /// An export of the entries of `filter`'s period; entries outside `scope` or the
    /// other conditions of `filter` are stubs (JSON Lines) or left out (CSV).
    /// `filter_json` is echoed in the header.
    pub fn new(
        store: &Store,
        scope: Scope,
        filter: Filter,
        filter_json: serde_json::Value,
        format: Format,
        generated_at_ms: i64,
    ) -> Result<Export, StoreError> {
        let (lo, hi) = seq_range(store, filter.from_ms, filter.to_ms)?;
        Ok(Export {
            format,
            scope,
            filter,
            filter_json,
            next: lo,
            lo,
            hi,
            stage: Stage::Header,
            generated_at: rfc3339_ms(generated_at_ms),
            last_chain: None,
            entries: 0,
            stubs: 0,
        })
    }

    /// Selected entries written so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    fn chain_before(store: &Store, seq: u64) -> Result<Option<[u8; 32]>, StoreError> {
        if seq <= 1 {
            return Ok(Some([0; 32]));
        }
        if let Some(s) = super::query::entry_at(store, seq - 1)? {
            return Ok(s.chain());
        }
        Ok(checkpoint::list(store, Some(seq), 1)?
            .into_iter()
            .find(|c| c.seq == seq - 1)
            .and_then(|c| super::unhex(&c.chain)))
    }

    /// The next piece of the export (about `max_entries` entries), or `None` at the end.
    pub fn next_chunk(
        &mut self,
        store: &Store,
        max_entries: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        match self.stage {
            Stage::Done => return Ok(None),
            Stage::Header => {
                self.stage = Stage::Body;
                match self.format {
                    Format::Jsonl => {
                        let prev = Self::chain_before(store, self.lo)?;
                        self.last_chain = prev;
                        let checkpoint = checkpoint::list(store, Some(self.hi), 1)?
                            .into_iter()
                            .find(|c| c.seq >= self.lo);
                        let h = HeaderLine {
                            format: FORMAT.into(),
                            version: 1,
                            generated_at: self.generated_at.clone(),
                            first_seq: self.lo,
                            prev_chain: prev.map(|c| hex(&c)),
                            filter: self.filter_json.clone(),
                            checkpoint,
                        };
                        out.extend(
                            serde_json::to_vec(&h).map_err(|e| StoreError::Db(e.to_string()))?,
                        );
                        out.push(b'\n');
                    }
                    Format::Csv => {
                        let mut w = csv::Writer::from_writer(Vec::new());
                        w.write_record(CSV_COLUMNS)
                            .map_err(|e| StoreError::Db(e.to_string()))?;
                        out.extend(w.into_inner().map_err(|e| StoreError::Db(e.to_string()))?);
                    }
                }
                return Ok(Some(out));
            }
            Stage::End => {
                self.stage = Stage::Done;
                if self.format == Format::Csv {
                    return Ok(None);
                }
                let last_seq = self.next.max(self.lo).saturating_sub(1);
                let end = EndLine {
                    end: true,
                    last_seq,
                    chain: self.last_chain.map(|c| hex(&c)),
                    entries: self.entries,
                    stubs: self.stubs,
                };
                out.extend(serde_json::to_vec(&end).map_err(|e| StoreError::Db(e.to_string()))?);
                out.push(b'\n');
                return Ok(Some(out));
            }
            Stage::Body => {}
        }
        let mut csv = (self.format == Format::Csv).then(|| csv::Writer::from_writer(Vec::new()));
        let mut n = 0usize;
        let mut iter = store.range(entry_key(self.next), entry_key(self.hi), false);
        while n < max_entries {
            let Some(item) = iter.next() else {
                self.next = self.hi;
                self.stage = Stage::End;
                break;
            };
            let (k, line) = item?;
            let seq = seq_of_entry_key(&k).unwrap_or(self.next);
            self.next = seq + 1;
            n += 1;
            let sealed = Sealed { line };
            let chain = sealed.chain();
            let entry = sealed.entry();
            self.last_chain = chain;
            let selected = entry
                .as_ref()
                .is_some_and(|e| self.scope.sees(e) && self.filter.matches(e));
            match (&mut csv, selected, entry) {
                (Some(w), true, Some(e)) => {
                    self.entries += 1;
                    let ch = chain.map(|c| hex(&c)).unwrap_or_default();
                    w.write_record(csv_row(&e, &ch))
                        .map_err(|e| StoreError::Db(e.to_string()))?;
                }
                (Some(_), _, _) => {}
                (None, true, _) => {
                    self.entries += 1;
                    out.extend_from_slice(&sealed.line);
                    out.push(b'\n');
                }
                (None, false, _) => {
                    self.stubs += 1;
                    // A line that is not a sealed entry is exported as it is, so that
                    // the verifier reports it instead of the export hiding it.
                    let Some(body) = sealed.body().filter(|_| chain.is_some()) else {
                        out.extend_from_slice(&sealed.line);
                        out.push(b'\n');
                        continue;
                    };
                    let stub = StubLine {
                        seq,
                        body_hash: hex(&body_hash(&body)),
                        chain: chain.map(|c| hex(&c)).unwrap_or_default(),
                    };
                    out.extend(
                        serde_json::to_vec(&stub).map_err(|e| StoreError::Db(e.to_string()))?,
                    );
                    out.push(b'\n');
                }
            }
        }
        if let Some(w) = csv {
            out.extend(w.into_inner().map_err(|e| StoreError::Db(e.to_string()))?);
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused() {
        assert_eq!(cell("=1+1"), "'=1+1");
        assert_eq!(cell("+31"), "'+31");
        assert_eq!(cell("-"), "-");
        assert_eq!(cell("-2"), "'-2");
        assert_eq!(cell("@x"), "'@x");
        assert_eq!(cell("regie-1"), "regie-1");
    }
}
