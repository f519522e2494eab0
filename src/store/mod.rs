//! Storage: the one narrow interface the index is written against, and its sled
//! implementation (design.md "Storage").
//!
//! All writes go through one writer thread. Each request's changes are collected in an
//! [`Overlay`] and applied as one atomic sled batch; after a group of requests the
//! database is flushed (fsync) and only then are the requests answered, so a 2xx always
//! means the data is durable ("group commit"). Reads go to the tree directly.
//!
//! The posting lists live in memory beside the tree ([`PostingIndex`]): they are rebuilt
//! from the signal records when the store opens, and a request's posting changes are
//! applied to them only after its batch is in the tree, so they never run ahead of it.

use crate::index::IndexKey;
use crate::index::counters;
use crate::index::engine::{EngineError, Entry, Kv, KvRead, Policy, index_signal};
use crate::index::model::{Alert, MatchRecord, Posting, SignalId, SignalRecord, SignalState};
use crate::index::postings::{PostingDelta, PostingIndex};
use crate::index::rotation::{RING_KEY, RingState, RotationPhase, RotationState};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, mpsc};

pub mod rotation;

/// A storage failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// sled reported an error.
    #[error("database error: {0}")]
    Db(String),
    /// The engine found a corrupt record.
    #[error("{0}")]
    Engine(String),
    /// The writer thread has stopped (shutting down).
    #[error("the store is shutting down")]
    Closed,
    /// The data directory's file system has less free space than the configured reserve.
    #[error("the disk is (nearly) full")]
    DiskFull,
    /// The ring of index keys the database was rotated to could not be loaded.
    #[error("{0}")]
    Keys(String),
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Db(e.to_string())
    }
}

impl From<EngineError> for StoreError {
    fn from(e: EngineError) -> Self {
        StoreError::Engine(e.to_string())
    }
}

/// Marks a database whose withdrawn signals all have archive key index entries.
const ARCHIVE_COMPLETE_KEY: &[u8] = b"carchive_index";
/// Marks a database whose signals all have their retention index entries.
const RETENTION_COMPLETE_KEY: &[u8] = b"cretention_index";
/// Marks a database whose matches all have their closed-match index entries (the
/// erasure schedule `Y`, merges `W`, alerts by match `g`).
const CLOSED_MATCH_COMPLETE_KEY: &[u8] = b"cclosed_match_index";

/// The sled database with the index tree, and the posting lists derived from it.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    /// sled's log file, for the `fdatasync` that sled's own flush leaves out.
    log: Arc<std::fs::File>,
    /// The data directory.
    dir: Arc<std::path::PathBuf>,
    postings: Arc<Mutex<PostingIndex>>,
    stats: Arc<PostingStats>,
    /// The ring of index keys (`None`: a store opened without one, by tools and tests;
    /// records are then read as stored).
    ring: Arc<RwLock<Option<Arc<IndexKey>>>>,
    /// Progress of the rotation of `K_index`, for /metrics.
    rotation: Arc<RotationProgress>,
}

/// Progress of the rotation of `K_index` (for /metrics), updated by the writer.
#[derive(Debug, Default)]
pub struct RotationProgress {
    /// Whether a rotation is running.
    pub running: AtomicBool,
    /// Signal records re-written by the running or last rotation.
    pub signals_rekeyed: AtomicU64,
    /// Keys re-keyed by the running or last rotation.
    pub keys_rekeyed: AtomicU64,
    /// Signal records of the running rotation not yet handled.
    pub remaining: AtomicU64,
    /// Milliseconds the writer paused at the last switch (posting lists rebuilt).
    pub switch_ms: AtomicU64,
}

impl RotationProgress {
    /// Takes over a rotation's state.
    pub fn update(&self, r: Option<&RotationState>) {
        let Some(r) = r else {
            return;
        };
        let running = r.state == RotationPhase::Running;
        self.running.store(running, Ordering::Relaxed);
        self.signals_rekeyed
            .store(r.signals_rekeyed, Ordering::Relaxed);
        self.keys_rekeyed.store(r.keys_rekeyed, Ordering::Relaxed);
        let left = if running {
            r.signals_total.saturating_sub(r.signals_rekeyed)
        } else {
            0
        };
        self.remaining.store(left, Ordering::Relaxed);
    }
}

/// Size of the in-memory posting lists (for /metrics), updated after every write.
#[derive(Debug, Default)]
pub struct PostingStats {
    /// Keys with at least one posting.
    pub keys: AtomicU64,
    /// Postings.
    pub postings: AtomicU64,
    /// Signal records read when the store was opened.
    pub rebuilt_from: AtomicU64,
    /// Milliseconds the rebuild took.
    pub rebuild_ms: AtomicU64,
}

impl PostingStats {
    fn update(&self, index: &PostingIndex) {
        self.keys.store(index.keys(), Ordering::Relaxed);
        self.postings.store(index.postings(), Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the database in `dir` and rebuilds the posting lists from its
    /// signal records under `policy` (the same rule a submission follows) at time `now`.
    /// Without a ring of index keys: for tools and tests on stores never rotated.
    pub fn open(
        dir: &std::path::Path,
        cache_mib: u64,
        policy: &Policy,
        now: i64,
    ) -> Result<Store, StoreError> {
        let (db, tree) = Self::open_db(dir, cache_mib)?;
        Self::open_tree(dir, db, tree, None, policy, now)
    }

    /// As [`Store::open`], with the ring of index keys: `ring` gets the ring's record
    /// (none before the first rotation) and returns the ring it names, `policy` gets
    /// that ring and returns the policy (whose excluded addresses are in its epoch).
    /// Records of an older epoch (a rotation that did not finish) are lifted as they
    /// are read.
    pub fn open_with_ring(
        dir: &std::path::Path,
        cache_mib: u64,
        now: i64,
        ring: impl FnOnce(Option<&RingState>) -> Result<IndexKey, String>,
        policy: impl FnOnce(&IndexKey) -> Result<Policy, String>,
    ) -> Result<(Store, Policy), StoreError> {
        let (db, tree) = Self::open_db(dir, cache_mib)?;
        let state = tree
            .get(RING_KEY)?
            .map(|v| {
                serde_json::from_slice::<RingState>(&v)
                    .map_err(|_| StoreError::from(EngineError::Corrupt('R')))
            })
            .transpose()?;
        let ring = Arc::new(ring(state.as_ref()).map_err(StoreError::Keys)?);
        let policy = policy(&ring).map_err(StoreError::Keys)?;
        let store = Self::open_tree(dir, db, tree, Some(ring), &policy, now)?;
        store
            .rotation
            .update(state.as_ref().and_then(|s| s.rotation.as_ref()));
        Ok((store, policy))
    }

    fn open_db(
        dir: &std::path::Path,
        cache_mib: u64,
    ) -> Result<(sled::Db, sled::Tree), StoreError> {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_mib * 1024 * 1024)
            .mode(sled::Mode::HighThroughput);
        // sled's file lock is released when the last thread of a closed store lets go of
        // it, a moment after the close: a reopen at once (a restart, a tool after the
        // server) waits for that moment, up to 2 s, before it says the lock is held.
        let started = std::time::Instant::now();
        let db = loop {
            match config.open() {
                Err(sled::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        && started.elapsed() < std::time::Duration::from_secs(2) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => break r?,
            }
        };
        let tree = db.open_tree("index")?;
        Ok((db, tree))
    }

    fn open_tree(
        dir: &std::path::Path,
        db: sled::Db,
        tree: sled::Tree,
        ring: Option<Arc<IndexKey>>,
        policy: &Policy,
        now: i64,
    ) -> Result<Store, StoreError> {
        let started = std::time::Instant::now();
        // sled 0.34 keeps its log (all trees) in the file `db` of its directory.
        let log = std::fs::File::open(dir.join("db"))
            .map_err(|e| StoreError::Db(format!("cannot open the log file: {e}")))?;
        let mut index = PostingIndex::new();
        let mut records = 0u64;
        // A database made before the figures' day counters: rebuild them from this scan.
        let mut backfill = match tree.get(counters::COMPLETE_KEY)? {
            Some(_) => None,
            None => Some(counters::Backfill::default()),
        };
        // A database made before the archive key index: write it for withdrawn signals.
        let mut archive = match tree.get(ARCHIVE_COMPLETE_KEY)? {
            Some(_) => None,
            None => Some(sled::Batch::default()),
        };
        // A database made before the retention index: write it for every signal.
        let mut retention = match tree.get(RETENTION_COMPLETE_KEY)? {
            Some(_) => None,
            None => Some(sled::Batch::default()),
        };
        for item in tree.scan_prefix([b's']) {
            let (_, v) = item?;
            let mut rec = SignalRecord::decode(&v)
                .ok_or_else(|| StoreError::from(EngineError::Corrupt('s')))?;
            if let Some(r) = &ring {
                if rec.epoch > r.epoch() {
                    return Err(StoreError::Keys(format!(
                        "a signal record is in index epoch {} but the key ring ends at epoch {}",
                        rec.epoch,
                        r.epoch()
                    )));
                }
                r.lift_record(&mut rec);
            }
            index_signal(&mut index, &rec, policy, now);
            if let Some(b) = backfill.as_mut() {
                b.add(&rec);
            }
            if let (Some(b), SignalState::Withdrawn { .. }) = (archive.as_mut(), &rec.state) {
                for k in rec.all_keys() {
                    b.insert(
                        crate::audit::subject::archive_key(&k.p2, rec.id),
                        Vec::new(),
                    );
                }
            }
            if let Some(b) = retention.as_mut() {
                for k in crate::index::retention::index_entries(&rec) {
                    b.insert(k, Vec::new());
                }
            }
            records += 1;
        }
        if tree.get(CLOSED_MATCH_COMPLETE_KEY)?.is_none() {
            let mut b = closed_match_backfill(&tree)?;
            b.insert(CLOSED_MATCH_COMPLETE_KEY, Vec::new());
            tree.apply_batch(b)?;
            tree.flush()?;
        }
        if let Some(mut b) = retention {
            b.insert(RETENTION_COMPLETE_KEY, Vec::new());
            tree.apply_batch(b)?;
            tree.flush()?;
        }
        if let Some(mut b) = archive {
            b.insert(ARCHIVE_COMPLETE_KEY, Vec::new());
            tree.apply_batch(b)?;
            tree.flush()?;
        }
        if let Some(b) = backfill {
            let mut batch = sled::Batch::default();
            for (k, v) in b.into_entries() {
                batch.insert(k, v);
            }
            tree.apply_batch(batch)?;
            tree.flush()?;
        }
        let stats = PostingStats::default();
        stats.update(&index);
        stats.rebuilt_from.store(records, Ordering::Relaxed);
        stats.rebuild_ms.store(
            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        Ok(Store {
            db,
            tree,
            log: Arc::new(log),
            dir: Arc::new(dir.to_path_buf()),
            postings: Arc::new(Mutex::new(index)),
            stats: Arc::new(stats),
            ring: Arc::new(RwLock::new(ring)),
            rotation: Arc::new(RotationProgress::default()),
        })
    }

    /// The ring of index keys in force. Panics never: a store opened without a ring
    /// answers with an empty one-epoch ring of zeros, which tools never use to derive.
    pub fn ring(&self) -> Arc<IndexKey> {
        self.ring_opt()
            .unwrap_or_else(|| Arc::new(IndexKey::new(String::new(), [0; 32])))
    }

    fn ring_opt(&self) -> Option<Arc<IndexKey>> {
        // The ring is replaced in one assignment: a poisoned lock still holds a whole ring.
        self.ring.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Progress of the rotation of `K_index`.
    pub fn rotation_progress(&self) -> &RotationProgress {
        &self.rotation
    }

    /// Size of the posting lists and of the last rebuild.
    pub fn posting_stats(&self) -> &PostingStats {
        &self.stats
    }

    fn lock_postings(&self) -> MutexGuard<'_, PostingIndex> {
        // A panic while the lock was held happened before the index was touched
        // (deltas are applied in one go), so the index is still whole.
        self.postings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes free for an unprivileged writer on the data directory's file system.
    pub fn free_bytes(&self) -> std::io::Result<u64> {
        free_bytes(&self.dir)
    }

    /// Writes everything to stable storage.
    ///
    /// sled's `flush` writes its log buffers with `sync_file_range`, which reaches the
    /// disk's volatile cache but neither flushes that cache nor the file's new length;
    /// sled's own `fsync` runs only every 500 ms. The `fdatasync` of the log file here
    /// (an `fsync` of any descriptor of the file covers all of its data) makes a flushed
    /// write survive a power loss too, which is what a 2xx promises.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.log
            .sync_data()
            .map_err(|e| StoreError::Db(format!("fdatasync of the log failed: {e}")))?;
        Ok(())
    }

    /// Keys and values under `prefix`, last key first, starting below `before` (exclusive).
    pub fn scan_prefix_rev(
        &self,
        prefix: &[u8],
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        let iter = match before {
            Some(b) => self.tree.range(prefix.to_vec()..b.to_vec()),
            None => self.tree.scan_prefix(prefix),
        };
        for item in iter.rev() {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                continue;
            }
            out.push((k.to_vec(), v.to_vec()));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Keys and values under `prefix`, in key order, starting after `after` (exclusive).
    pub fn scan_prefix_after(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        let start = match after {
            Some(a) => {
                let mut s = a.to_vec();
                s.push(0);
                s
            }
            None => prefix.to_vec(),
        };
        for item in self.tree.range(start..) {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Keys and values from `start` (inclusive) to `end` (exclusive), in key order or
    /// (`rev`) last key first; read lazily, so a long range costs no memory.
    pub fn range(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        rev: bool,
    ) -> impl Iterator<Item = Result<Entry, StoreError>> + use<> {
        let iter = self.tree.range(start..end);
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> + Send> = if rev {
            Box::new(iter.rev())
        } else {
            Box::new(iter)
        };
        iter.map(|r| {
            r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(StoreError::from)
        })
    }

    /// The postings of a key in the in-memory lists (expired signals included, until
    /// they are withdrawn or the lists are rebuilt).
    pub fn postings_of(&self, p2: &[u8; 32]) -> Vec<Posting> {
        self.lock_postings().get(p2).to_vec()
    }

    /// Every key and value, for tests that check what is (not) stored.
    pub fn dump(&self) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        for name in self.db.tree_names() {
            let t = self.db.open_tree(&name)?;
            for item in t.iter() {
                let (k, v) = item?;
                out.push((k.to_vec(), v.to_vec()));
            }
        }
        Ok(out)
    }

    /// Runs `f` in an overlay and applies its writes as one atomic batch, without a flush.
    /// For tools, benches and tests that bypass the writer thread; never call it while a
    /// [`Writer`] on the same store is running.
    pub fn transact<R>(
        &self,
        f: impl FnOnce(&mut dyn Kv) -> Result<R, EngineError>,
    ) -> Result<R, StoreError> {
        let mut index = self.lock_postings();
        let ring = self.ring_opt();
        let mut ov = Overlay::new(&self.tree, &index, ring);
        let r = f(&mut ov)?;
        let (batch, _, delta, switch) = ov.into_parts();
        self.tree.apply_batch(batch)?;
        match switch {
            Some(sw) => self.switch(&mut index, sw),
            None => delta.apply(&mut index),
        }
        self.stats.update(&index);
        Ok(r)
    }

    /// Size of the database on disk, bytes.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

/// The closed-match index entries of a database written before them: every closed
/// match's place in the erasure schedule, every merge, every alert under its match.
fn closed_match_backfill(tree: &sled::Tree) -> Result<sled::Batch, StoreError> {
    let view = TreeView(tree);
    let mut b = sled::Batch::default();
    for item in tree.scan_prefix([b'm']) {
        let (_, v) = item?;
        let m: MatchRecord =
            serde_json::from_slice(&v).map_err(|_| StoreError::from(EngineError::Corrupt('m')))?;
        for k in crate::index::retention::match_index_entries(&view, &m)? {
            b.insert(k, Vec::new());
        }
    }
    for item in tree.scan_prefix([b'o']) {
        let (k, v) = item?;
        let a: Alert =
            serde_json::from_slice(&v).map_err(|_| StoreError::from(EngineError::Corrupt('o')))?;
        if let Some(seq) = k
            .get(1..9)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
        {
            b.insert(
                crate::index::retention::match_alert_key(a.match_id, seq),
                Vec::new(),
            );
        }
    }
    Ok(b)
}

/// Reads of the tree itself, before the store is open.
struct TreeView<'a>(&'a sled::Tree);

impl KvRead for TreeView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.0
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| EngineError::Store(e.to_string()))
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, EngineError> {
        tree_scan(self.0, prefix)
    }
    fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, EngineError> {
        tree_range(self.0, start, end, limit)
    }
}

fn tree_scan(tree: &sled::Tree, prefix: &[u8]) -> Result<Vec<Entry>, EngineError> {
    tree.scan_prefix(prefix)
        .map(|r| {
            r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(|e| EngineError::Store(e.to_string()))
        })
        .collect()
}

fn tree_range(
    tree: &sled::Tree,
    start: &[u8],
    end: &[u8],
    limit: usize,
) -> Result<Vec<Entry>, EngineError> {
    tree.range(start.to_vec()..end.to_vec())
        .take(limit)
        .map(|r| {
            r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(|e| EngineError::Store(e.to_string()))
        })
        .collect()
}

impl KvRead for Store {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.tree
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| EngineError::Store(e.to_string()))
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, EngineError> {
        tree_scan(&self.tree, prefix)
    }
    fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, EngineError> {
        tree_range(&self.tree, start, end, limit)
    }
    fn index_ring(&self) -> Option<Arc<IndexKey>> {
        self.ring_opt()
    }
}

/// A request's writes on top of the tree and the posting lists; reads see them.
pub struct Overlay<'a> {
    tree: &'a sled::Tree,
    index: &'a PostingIndex,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    delta: PostingDelta,
    /// Whether anything but access-log values was written.
    data_writes: bool,
    /// The ring of index keys at the start of the request.
    ring: Option<Arc<IndexKey>>,
    /// A rotation's switch, made when the batch is in the tree.
    switch: Option<Switch>,
}

/// The switch of a rotation of `K_index`: the posting lists rebuilt in the new epoch,
/// the new ring, and the policy whose excluded addresses are lifted with it.
struct Switch {
    index: PostingIndex,
    ring: Arc<IndexKey>,
    policy: Arc<Policy>,
    state: RotationState,
    pause_ms: u64,
}

impl<'a> Overlay<'a> {
    fn new(tree: &'a sled::Tree, index: &'a PostingIndex, ring: Option<Arc<IndexKey>>) -> Self {
        Overlay {
            tree,
            index,
            writes: BTreeMap::new(),
            delta: PostingDelta::default(),
            data_writes: false,
            ring,
            switch: None,
        }
    }

    /// Whether the request wrote anything but its access-log entry.
    fn writes_data(&self) -> bool {
        self.data_writes || !self.delta.is_empty()
    }

    fn into_parts(self) -> (sled::Batch, usize, PostingDelta, Option<Switch>) {
        let mut batch = sled::Batch::default();
        let n = self.writes.len();
        for (k, v) in self.writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        (batch, n, self.delta, self.switch)
    }
}

impl KvRead for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        if let Some(v) = self.writes.get(key) {
            return Ok(v.clone());
        }
        self.tree
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| EngineError::Store(e.to_string()))
    }
    fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, EngineError> {
        // Removals in the overlay may hide tree entries: read that many more.
        let own: Vec<(&Vec<u8>, &Option<Vec<u8>>)> =
            self.writes.range(start.to_vec()..end.to_vec()).collect();
        let hidden = own.iter().filter(|(_, v)| v.is_none()).count();
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
            tree_range(self.tree, start, end, limit.saturating_add(hidden))?
                .into_iter()
                .collect();
        for (k, v) in own {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }
    fn index_ring(&self) -> Option<Arc<IndexKey>> {
        self.ring.clone()
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, EngineError> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
            tree_scan(self.tree, prefix)?.into_iter().collect();
        for (k, v) in self
            .writes
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().collect())
    }
}

impl Kv for Overlay<'_> {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.data_writes = true;
        self.writes.insert(key, Some(value));
    }
    fn remove(&mut self, key: Vec<u8>) {
        self.data_writes = true;
        self.writes.insert(key, None);
    }
    fn put_log(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }
    fn postings(&self, p2: &[u8; 32]) -> Vec<Posting> {
        self.delta.view(self.index, p2)
    }
    fn add_posting(&mut self, p2: &[u8; 32], posting: Posting) {
        self.delta.add(p2, posting);
    }
    fn remove_posting(&mut self, p2: &[u8; 32], signal: SignalId) {
        self.delta.remove(p2, signal);
    }
}

type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Job = Box<dyn FnOnce(&mut Overlay<'_>) -> (Finish, bool) + Send>;

/// Free bytes (for an unprivileged writer) on the file system that holds `path`.
pub fn free_bytes(path: &std::path::Path) -> std::io::Result<u64> {
    fs4::available_space(path)
}

/// The free-space reserve of the data directory, checked by the writer.
#[derive(Debug, Default)]
pub struct DiskState {
    /// Free bytes at the last check.
    pub free_bytes: AtomicU64,
    /// Whether the free space was below the reserve at the last check.
    pub low: AtomicBool,
    /// Whether the free space was below half the reserve at the last check: then not
    /// even access-log entries are written, so reads are refused too.
    pub critical: AtomicBool,
}

/// How much room the writer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Room {
    /// Above the reserve: everything is written.
    Ample,
    /// Below the reserve: only requests whose sole write is their access-log entry.
    Low,
    /// Below half the reserve: nothing.
    Critical,
}

/// How often the writer looks at the free space, at most.
const DISK_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The writer's view of the reserve: refreshed at most every [`DISK_CHECK_EVERY`].
struct DiskGuard {
    reserve: u64,
    checked: Option<std::time::Instant>,
    state: Arc<DiskState>,
}

impl DiskGuard {
    /// Which writes may be made now.
    fn room(&mut self, store: &Store) -> Room {
        if self.reserve == 0 {
            return Room::Ample;
        }
        if self.checked.is_none_or(|t| t.elapsed() >= DISK_CHECK_EVERY) {
            self.checked = Some(std::time::Instant::now());
            // A failing statvfs says nothing about space: keep the last verdict.
            if let Ok(free) = store.free_bytes() {
                let low = free < self.reserve;
                let was = self.state.low.swap(low, Ordering::Relaxed);
                if low != was {
                    if low {
                        eprintln!(
                            "samenloop: free disk space below the reserve of {} MiB: refusing writes until space returns",
                            self.reserve >> 20
                        );
                    } else {
                        eprintln!(
                            "samenloop: free disk space is back above the reserve: writes resume"
                        );
                    }
                }
                self.state
                    .critical
                    .store(free < self.reserve / 2, Ordering::Relaxed);
                self.state.free_bytes.store(free, Ordering::Relaxed);
            }
        }
        if self.state.critical.load(Ordering::Relaxed) {
            Room::Critical
        } else if self.state.low.load(Ordering::Relaxed) {
            Room::Low
        } else {
            Room::Ample
        }
    }
}

/// Handle to the writer thread.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::SyncSender<Job>,
    healthy: Arc<AtomicBool>,
    /// Number of flushes done (for metrics).
    pub flushes: Arc<AtomicU64>,
    /// Free space and whether it is below the reserve (for metrics).
    pub disk: Arc<DiskState>,
    /// Counts durable commits; alert workers and event streams wait on it.
    commits: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

/// Most requests committed with one flush.
const GROUP: usize = 256;

impl Writer {
    /// Starts the writer thread for `store`. It stops when every `Writer` handle is dropped.
    /// While the data directory's file system has fewer than `reserve_bytes` free (0:
    /// never), requests that would write fail with [`StoreError::DiskFull`] and write
    /// nothing; requests that write nothing but their access-log entry (a read, an
    /// idempotent resubmission) still succeed until the free space falls below half
    /// the reserve.
    pub fn start(
        store: Store,
        reserve_bytes: u64,
    ) -> Result<(Writer, std::thread::JoinHandle<()>), StoreError> {
        let (tx, rx) = mpsc::sync_channel::<Job>(4096);
        let healthy = Arc::new(AtomicBool::new(true));
        let flushes = Arc::new(AtomicU64::new(0));
        let disk = Arc::new(DiskState::default());
        let mut guard = DiskGuard {
            reserve: reserve_bytes,
            checked: None,
            state: disk.clone(),
        };
        // A first look now, so that /metrics and the log tell before the first write.
        guard.room(&store);
        let (h, f) = (healthy.clone(), flushes.clone());
        let (commits, _) = tokio::sync::watch::channel(0u64);
        let c = commits.clone();
        let handle = std::thread::Builder::new()
            .name("samenloop-writer".into())
            .spawn(move || writer_loop(store, rx, h, f, guard, c))
            .map_err(|e| StoreError::Db(e.to_string()))?;
        Ok((
            Writer {
                tx,
                healthy,
                flushes,
                disk,
                commits,
            },
            handle,
        ))
    }

    /// A receiver that changes after every durable commit (of any request).
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// Whether the last flush succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Runs `f` on the writer thread in an overlay; its writes are applied atomically and
    /// flushed before the result is returned. If `f` fails, nothing it wrote is applied.
    pub async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Kv) -> Result<R, EngineError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<R, StoreError>>();
        let job: Job = Box::new(move |ov: &mut Overlay<'_>| match f(ov) {
            Ok(r) => (
                Box::new(move |flushed: Result<(), StoreError>| {
                    let _ = tx.send(flushed.map(|()| r));
                }) as Finish,
                true,
            ),
            Err(e) => {
                let err = StoreError::from(e);
                (
                    Box::new(move |_| {
                        let _ = tx.send(Err(err));
                    }) as Finish,
                    false,
                )
            }
        });
        self.tx.send(job).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

fn writer_loop(
    store: Store,
    rx: mpsc::Receiver<Job>,
    healthy: Arc<AtomicBool>,
    flushes: Arc<AtomicU64>,
    mut guard: DiskGuard,
    commits: tokio::sync::watch::Sender<u64>,
) {
    while let Ok(first) = rx.recv() {
        let mut pending: Vec<Finish> = Vec::new();
        let mut job = Some(first);
        let room = guard.room(&store);
        let mut index = store.lock_postings();
        while let Some(j) = job.take() {
            let mut ov = Overlay::new(&store.tree, &index, store.ring_opt());
            let (finish, apply) = j(&mut ov);
            if apply {
                let refuse = match room {
                    Room::Ample => false,
                    Room::Low => ov.writes_data(),
                    Room::Critical => true,
                };
                let (batch, n, delta, switch) = ov.into_parts();
                let applied = if n == 0 {
                    Ok(())
                } else if refuse {
                    // Nothing of it is applied: the batch and the delta are dropped.
                    Err(StoreError::DiskFull)
                } else {
                    store.tree.apply_batch(batch).map_err(StoreError::from)
                };
                match applied {
                    Ok(()) => {
                        match switch {
                            Some(sw) => store.switch(&mut index, sw),
                            None => delta.apply(&mut index),
                        }
                        pending.push(finish);
                    }
                    Err(e) => finish(Err(e)),
                }
            } else {
                finish(Ok(()));
            }
            if pending.len() < GROUP {
                job = rx.try_recv().ok();
            }
        }
        store.stats.update(&index);
        drop(index);
        if pending.is_empty() {
            continue;
        }
        let flushed = store.flush();
        flushes.fetch_add(1, Ordering::Relaxed);
        healthy.store(flushed.is_ok(), Ordering::Relaxed);
        for f in pending {
            f(flushed.clone());
        }
        if flushed.is_ok() {
            commits.send_modify(|n| *n += 1);
        }
    }
    // All senders are gone: make sure everything is on disk before the thread ends.
    let _ = store.flush();
}
