//! Verifying the access log: the chain of a database or of a JSON Lines export, its
//! head and its checkpoints (`spec/access-log.md` §5). A report names the first broken
//! entry and what is wrong with it.

use super::checkpoint::{self, Checkpoint};
use super::export::{EndLine, FORMAT, HeaderLine, StubLine};
use super::{Sealed, body_hash, entry_key, hex, link, seq_of_entry_key, unhex};
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The first thing found wrong.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Broken {
    /// The entry (sequence) at which the log stops verifying.
    pub seq: u64,
    /// What is wrong there.
    pub problem: String,
}

/// What a verification found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Report {
    /// Whether everything verified.
    pub ok: bool,
    /// Full entries whose chain link was checked.
    pub entries: u64,
    /// Stub lines (entries outside the export's selection) whose link was checked.
    pub stubs: u64,
    /// First sequence checked.
    pub first_seq: Option<u64>,
    /// Last sequence checked.
    pub last_seq: Option<u64>,
    /// The chain hash after the last entry checked.
    pub chain: Option<String>,
    /// Checkpoints compared with the chain.
    pub checkpoints_checked: u64,
    /// Of which with a valid signature (when a checkpoint key was given).
    pub checkpoints_signed: u64,
    /// The newest checkpoint the chain was found to agree with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checkpoint: Option<Checkpoint>,
    /// The first thing wrong; `None` when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken: Option<Broken>,
    /// Things a reader should know that are not errors (e.g. unsigned checkpoints).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Walks the chain line by line.
struct Chain<'a> {
    expected: u64,
    prev: [u8; 32],
    prev_at: i64,
    /// Every distinct checkpoint by sequence: one from the store or the export must not
    /// shadow one from elsewhere at the same sequence.
    checkpoints: BTreeMap<u64, Vec<Checkpoint>>,
    key: Option<&'a checkpoint::Verifier>,
    report: Report,
}

type Step = Result<(), Broken>;

fn broken(seq: u64, problem: impl Into<String>) -> Broken {
    Broken {
        seq,
        problem: problem.into(),
    }
}

impl<'a> Chain<'a> {
    fn new(
        first: u64,
        prev: [u8; 32],
        checkpoints: Vec<Checkpoint>,
        key: Option<&'a checkpoint::Verifier>,
    ) -> Self {
        let mut by_seq: BTreeMap<u64, Vec<Checkpoint>> = BTreeMap::new();
        for c in checkpoints {
            let at = by_seq.entry(c.seq).or_default();
            if !at.contains(&c) {
                at.push(c);
            }
        }
        Chain {
            expected: first,
            prev,
            prev_at: i64::MIN,
            checkpoints: by_seq,
            key,
            report: Report::default(),
        }
    }

    fn at_seq(&mut self, seq: u64) -> Step {
        if seq != self.expected {
            return Err(if seq > self.expected {
                broken(
                    self.expected,
                    format!(
                        "entry {} is missing (the next one present is {seq})",
                        self.expected
                    ),
                )
            } else {
                broken(
                    seq,
                    format!(
                        "entry {seq} comes after entry {}: out of order",
                        self.expected - 1
                    ),
                )
            });
        }
        Ok(())
    }

    fn advance(&mut self, seq: u64, computed: [u8; 32], stored: [u8; 32]) -> Step {
        if computed != stored {
            return Err(broken(
                seq,
                format!(
                    "the chain breaks at entry {seq}: its chain hash does not follow from its \
                     content and the entry before it (entry {seq} was changed, or entry {} was \
                     changed and its hash recomputed)",
                    seq.saturating_sub(1)
                ),
            ));
        }
        for cp in self.checkpoints.remove(&seq).unwrap_or_default() {
            self.report.checkpoints_checked += 1;
            if unhex(&cp.chain) != Some(computed) {
                return Err(broken(
                    seq,
                    format!(
                        "the chain at entry {seq} differs from the checkpoint made at {}: entries \
                         up to {seq} were changed and their hashes recomputed",
                        cp.at
                    ),
                ));
            }
            if let Some(k) = self.key {
                k.verify(&cp).map_err(|e| {
                    broken(
                        seq,
                        format!("the checkpoint at entry {seq} is not authentic: {e}"),
                    )
                })?;
                self.report.checkpoints_signed += 1;
            }
            self.report.last_checkpoint = Some(cp);
        }
        self.report.first_seq.get_or_insert(seq);
        self.report.last_seq = Some(seq);
        self.prev = computed;
        self.expected = seq + 1;
        Ok(())
    }

    /// A full entry stored (or exported) under sequence `seq`.
    fn full(&mut self, seq: u64, line: Vec<u8>) -> Step {
        self.at_seq(seq)?;
        let sealed = Sealed { line };
        let (Some(body), Some(stored)) = (sealed.body(), sealed.chain()) else {
            return Err(broken(
                seq,
                format!("entry {seq} is not a well-formed sealed line"),
            ));
        };
        let Some(e) = sealed.entry() else {
            return Err(broken(
                seq,
                format!("entry {seq} is not a well-formed entry"),
            ));
        };
        if e.seq != seq {
            return Err(broken(
                seq,
                format!(
                    "the entry in place {seq} says it is entry {}: entries were moved",
                    e.seq
                ),
            ));
        }
        if e.at_ms < self.prev_at {
            return Err(broken(
                seq,
                format!("entry {seq} is dated before the entry before it"),
            ));
        }
        self.prev_at = e.at_ms;
        self.report.entries += 1;
        let computed = link(&self.prev, seq, &body_hash(&body));
        self.advance(seq, computed, stored)
    }

    /// A stub line of an export.
    fn stub(&mut self, s: StubLine) -> Step {
        self.at_seq(s.seq)?;
        let (Some(bh), Some(stored)) = (unhex(&s.body_hash), unhex(&s.chain)) else {
            return Err(broken(
                s.seq,
                format!("the stub of entry {} is malformed", s.seq),
            ));
        };
        self.report.stubs += 1;
        let computed = link(&self.prev, s.seq, &bh);
        self.advance(s.seq, computed, stored)
    }

    fn finish(mut self, result: Step) -> Report {
        self.report.chain = self.report.last_seq.map(|_| hex(&self.prev));
        match result {
            Ok(()) => self.report.ok = true,
            Err(b) => self.report.broken = Some(b),
        }
        self.report
    }
}

/// Verifies the access log of a store: every entry in order, the head, and every stored
/// checkpoint and every one of `external` (from a checkpoint file kept elsewhere), with
/// signatures when `key` is given.
pub fn verify_store(
    store: &Store,
    key: Option<&checkpoint::Verifier>,
    external: Vec<Checkpoint>,
) -> Result<Report, StoreError> {
    let mut cps = checkpoint::list(store, None, usize::MAX)?;
    cps.extend(external);
    let first = match store.range(entry_key(0), entry_key(u64::MAX), false).next() {
        Some(r) => seq_of_entry_key(&r?.0).unwrap_or(1),
        None => 1,
    };
    let mut notes = Vec::new();
    let prev = if first == 1 {
        Some([0; 32])
    } else {
        let p = cps
            .iter()
            .find(|c| c.seq == first - 1)
            .and_then(|c| unhex(&c.chain));
        if p.is_some() {
            notes.push(format!(
                "entries before {first} were pruned; the chain is checked from the checkpoint at {}",
                first - 1
            ));
        }
        p
    };
    let latest_cp = cps.iter().map(|c| c.seq).max();
    let h = super::head(store)?;
    let mut chain = Chain::new(first, prev.unwrap_or([0; 32]), cps, key);
    chain.report.notes = notes;
    let result = (|| -> Result<Step, StoreError> {
        if prev.is_none() {
            // Entries before `first` were deleted: the first one missing is entry 1.
            return Ok(Err(broken(
                1,
                format!(
                    "entries 1 to {} are missing: the log starts at entry {first} and no \
                     checkpoint covers the entries before it",
                    first - 1
                ),
            )));
        }
        // A live log grows while it is verified: the head read before the walk is
        // compared with the chain at its sequence, and entries beyond it must be
        // covered by the head read after the walk.
        let mut after_head: std::collections::BTreeMap<u64, [u8; 32]> = Default::default();
        for item in store.range(entry_key(0), entry_key(u64::MAX), false) {
            let (k, v) = item?;
            let Some(seq) = seq_of_entry_key(&k) else {
                return Ok(Err(broken(chain.expected, "a malformed entry key")));
            };
            if let Err(b) = chain.full(seq, v) {
                return Ok(Err(b));
            }
            if seq >= h.seq {
                after_head.insert(seq, chain.prev);
            }
        }
        let last = chain.expected - 1;
        if h.seq > last {
            return Ok(Err(broken(
                last + 1,
                format!(
                    "entries {} to {} are missing: the log was cut short after entry {last}",
                    last + 1,
                    h.seq
                ),
            )));
        }
        if h.seq > 0 && after_head.get(&h.seq) != Some(&h.chain) {
            return Ok(Err(broken(
                h.seq,
                format!(
                    "the head of the log (entry {}) does not match that entry",
                    h.seq
                ),
            )));
        }
        let h2 = super::head(store)?;
        if last > h2.seq {
            return Ok(Err(broken(
                h2.seq + 1,
                format!(
                    "entries {} to {last} lie beyond the head of the log (entry {}): they were \
                     not appended by the index",
                    h2.seq + 1,
                    h2.seq
                ),
            )));
        }
        if let Some(cs) = latest_cp.filter(|&s| s > last) {
            return Ok(Err(broken(
                last + 1,
                format!(
                    "a checkpoint covers entries up to {cs}, but the log ends at {last}: entries were removed"
                ),
            )));
        }
        Ok(Ok(()))
    })()?;
    let mut report = chain.finish(result);
    if key.is_none() && report.checkpoints_checked > 0 {
        report
            .notes
            .push("no checkpoint key was given: checkpoint signatures were not checked".into());
    }
    Ok(report)
}

/// Verifies a JSON Lines export: header, every line's link, the end line, the
/// checkpoint in it and every one of `external` that falls inside it.
pub fn verify_export(
    reader: impl std::io::BufRead,
    key: Option<&checkpoint::Verifier>,
    external: Vec<Checkpoint>,
) -> Report {
    let mut lines = reader.split(b'\n').enumerate();
    let header: HeaderLine = match lines.next() {
        Some((_, Ok(l))) => match serde_json::from_slice::<HeaderLine>(&l) {
            Ok(h) if h.format == FORMAT && h.version == 1 => h,
            _ => {
                return Report {
                    broken: Some(broken(
                        0,
                        "line 1 is not the header of an access-log export",
                    )),
                    ..Report::default()
                };
            }
        },
        _ => {
            return Report {
                broken: Some(broken(0, "the export is empty")),
                ..Report::default()
            };
        }
    };
    let Some(prev) = header.prev_chain.as_deref().and_then(unhex) else {
        return Report {
            broken: Some(broken(
                header.first_seq,
                "the header gives no chain hash before the first entry",
            )),
            ..Report::default()
        };
    };
    let mut cps = external;
    if let Some(cp) = header.checkpoint.clone() {
        if cp.seq < header.first_seq {
            return Report {
                broken: Some(broken(
                    cp.seq,
                    "the header's checkpoint is outside the export",
                )),
                ..Report::default()
            };
        }
        cps.push(cp);
    }
    let mut chain = Chain::new(header.first_seq, prev, cps, key);
    let mut end: Option<EndLine> = None;
    let result = (|| -> Step {
        for (i, line) in lines.by_ref() {
            let line = line.map_err(|e| broken(chain.expected, format!("read error: {e}")))?;
            if line.is_empty() {
                continue;
            }
            if let Some(e) = &end {
                return Err(broken(
                    e.last_seq,
                    format!("line {} comes after the end line", i + 1),
                ));
            }
            if let Ok(e) = serde_json::from_slice::<EndLine>(&line) {
                end = Some(e);
                continue;
            }
            if let Ok(s) = serde_json::from_slice::<StubLine>(&line) {
                chain.stub(s)?;
                continue;
            }
            let seq = serde_json::from_slice::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v.get("seq").and_then(serde_json::Value::as_u64))
                .unwrap_or(chain.expected);
            chain.full(seq, line)?;
        }
        let last = chain.expected - 1;
        let Some(e) = &end else {
            return Err(broken(
                last + 1,
                format!(
                    "the export ends after entry {last} without its end line: it was cut short"
                ),
            ));
        };
        if let Some(cs) = header
            .checkpoint
            .as_ref()
            .map(|c| c.seq)
            .filter(|&s| s > last)
        {
            return Err(broken(
                last + 1,
                format!(
                    "the header's checkpoint covers entries up to {cs}, but the export ends at {last}"
                ),
            ));
        }
        if e.last_seq != last
            || e.entries != chain.report.entries
            || e.stubs != chain.report.stubs
            || e.chain.as_deref().and_then(unhex) != Some(chain.prev)
        {
            return Err(broken(
                last,
                format!(
                    "the end line (entry {}, {} entries, {} stubs) does not match the lines before it",
                    e.last_seq, e.entries, e.stubs
                ),
            ));
        }
        Ok(())
    })();
    chain.finish(result)
}

/// Verifies an export file.
pub fn verify_export_file(
    path: &std::path::Path,
    key: Option<&checkpoint::Verifier>,
    external: Vec<Checkpoint>,
) -> Result<Report, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(verify_export(std::io::BufReader::new(f), key, external))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{append, seal, tests::entry};
    use crate::index::engine::Policy;

    fn store_with(n: u64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 16, &Policy::default(), 0).unwrap();
        store
            .transact(|kv| {
                for _ in 0..n {
                    append(kv, entry())?;
                }
                Ok(())
            })
            .unwrap();
        (dir, store)
    }

    #[test]
    fn a_whole_log_verifies() {
        let (_d, store) = store_with(5);
        let r = verify_store(&store, None, Vec::new()).unwrap();
        assert!(r.ok, "{r:?}");
        assert_eq!((r.entries, r.first_seq, r.last_seq), (5, Some(1), Some(5)));
    }

    #[test]
    fn an_entry_beyond_the_head_is_caught() {
        let (_d, store) = store_with(3);
        // A well-chained entry 4 written past the index (the head still says 3).
        let prev = crate::audit::head(&store).unwrap().chain;
        let mut e = entry();
        e.seq = 4;
        let (sealed, _) = seal(&prev, &e).unwrap();
        store
            .transact(|kv| {
                kv.put(entry_key(4), sealed.line.clone());
                Ok(())
            })
            .unwrap();
        let r = verify_store(&store, None, Vec::new()).unwrap();
        let b = r.broken.expect("broken");
        assert_eq!(b.seq, 4, "{}", b.problem);
        assert!(b.problem.contains("beyond the head"), "{}", b.problem);
    }
}
