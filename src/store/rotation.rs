//! The switch of a rotation of `K_index`, made on the writer thread (see
//! [`crate::index::rotation`] and spec/index-key-rotation.md §4).

use super::{Finish, Job, Overlay, Store, StoreError, Switch, Writer};
use crate::index::IndexKey;
use crate::index::engine::{EngineError, ExcludedAddresses, Kv, KvRead, Policy, index_signal};
use crate::index::model::SignalRecord;
use crate::index::postings::PostingIndex;
use crate::index::rotation::{
    self, RingEpoch, RingState, RotationPhase, RotationState, move_excluded_keys,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use zeroize::Zeroizing;

/// Why a rotation was not started (nothing was written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A rotation is running.
    #[error("a rotation of the index key is running")]
    Running,
    /// The key id is in the ring already.
    #[error("the key id is in the key ring already")]
    KeyIdInRing,
}

/// A rotation to start.
pub struct StartRotation {
    /// The new key's id.
    pub key_id: String,
    /// The new key.
    pub key: Zeroizing<[u8; 32]>,
    /// Its file name in the directory of `domain.index_key_file`.
    pub file: String,
    /// The policy in force (its excluded addresses are lifted at the switch).
    pub policy: Arc<Policy>,
    /// Now (unix seconds).
    pub now: i64,
}

impl std::fmt::Debug for StartRotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartRotation")
            .field("key_id", &self.key_id)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// What a write does after the switch (the request's access-log entry).
pub type AfterSwitch =
    Box<dyn FnOnce(&mut dyn Kv, &RotationState) -> Result<(), EngineError> + Send>;

impl Writer {
    /// Starts a rotation: on the writer, in one transaction, the ring's record gets the
    /// new epoch and a running rotation, the `E` keys move to the new epoch, and `log`
    /// appends the request's entry; once that batch is in the tree the posting lists
    /// (rebuilt from the records, lifted) and the ring are swapped in. Every later write
    /// sees the new epoch.
    pub async fn start_rotation(
        &self,
        start: StartRotation,
        log: AfterSwitch,
    ) -> Result<Result<RotationState, Refused>, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |ov: &mut Overlay<'_>| {
            let result = switch(ov, start).and_then(|r| match r {
                Ok(state) => log(ov, &state).map(|()| Ok(state)),
                Err(refused) => Ok(Err(refused)),
            });
            let apply = matches!(result, Ok(Ok(_)));
            if !apply {
                ov.switch = None;
            }
            let finish: Finish = Box::new(move |flushed: Result<(), StoreError>| {
                let out = match (result, flushed) {
                    (Err(e), _) => Err(StoreError::from(e)),
                    (Ok(r), Ok(())) => Ok(r),
                    (Ok(Err(refused)), Err(_)) => Ok(Err(refused)),
                    (Ok(Ok(_)), Err(e)) => Err(e),
                };
                let _ = tx.send(out);
            });
            (finish, apply)
        });
        self.tx.send(job).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// Prepares the switch in the overlay (see [`Writer::start_rotation`]).
fn switch(
    ov: &mut Overlay<'_>,
    start: StartRotation,
) -> Result<Result<RotationState, Refused>, EngineError> {
    let started = std::time::Instant::now();
    let current = ov
        .index_ring()
        .ok_or_else(|| EngineError::Store("the store has no key ring".into()))?;
    let mut state = rotation::load(ov)?.unwrap_or_else(|| RingState::initial(&current));
    if state.running() {
        return Ok(Err(Refused::Running));
    }
    if current.contains(&start.key_id) {
        return Ok(Err(Refused::KeyIdInRing));
    }
    let next = Arc::new(current.with_epoch(start.key_id.clone(), *start.key));
    let epoch = next.epoch();
    let excluded_moved = move_excluded_keys(ov, &next, epoch)?;
    // The posting lists in the new epoch, by the rule a restart follows, under the
    // policy as it will be after the switch.
    let mut policy = (*start.policy).clone();
    policy.excluded_addresses = ExcludedAddresses::new(
        start
            .policy
            .excluded_addresses
            .lifted(|p| next.lift(epoch, p)),
    );
    let mut index = PostingIndex::new();
    index.reserve(ov.index.keys() as usize);
    let mut total = 0u64;
    for item in ov.tree.scan_prefix([b's']) {
        let (_, v) = item.map_err(|e| EngineError::Store(e.to_string()))?;
        let mut rec = SignalRecord::decode(&v).ok_or(EngineError::Corrupt('s'))?;
        next.lift_record(&mut rec);
        index_signal(&mut index, &rec, &policy, start.now);
        total += 1;
    }
    state.epochs.push(RingEpoch {
        key_id: start.key_id.clone(),
        file: Some(start.file),
    });
    let rot = RotationState {
        state: RotationPhase::Running,
        from_key_id: current.id().to_string(),
        to_key_id: start.key_id,
        target_epoch: epoch,
        cursor: 0,
        signals_rekeyed: 0,
        keys_rekeyed: 0,
        signals_total: total,
        excluded_moved,
        started_at: start.now,
        finished_at: None,
    };
    state.rotation = Some(rot.clone());
    rotation::save(ov, &state);
    ov.switch = Some(Switch {
        index,
        ring: next,
        policy: start.policy,
        state: rot.clone(),
        pause_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    Ok(Ok(rot))
}

impl Store {
    /// Makes a switch whose batch is in the tree: posting lists, excluded addresses, ring.
    pub(super) fn switch(&self, index: &mut PostingIndex, sw: Switch) {
        let epoch = sw.ring.epoch();
        *index = sw.index;
        sw.policy
            .excluded_addresses
            .lift(|p| sw.ring.lift(epoch, p));
        *self.ring.write().unwrap_or_else(|p| p.into_inner()) = Some(sw.ring);
        self.rotation.update(Some(&sw.state));
        self.rotation
            .switch_ms
            .store(sw.pause_ms, Ordering::Relaxed);
    }
}

/// Re-writes one chunk of the running rotation on the writer (see
/// [`rotation::rekey_chunk`]); `None` when no rotation runs.
pub async fn rekey_chunk(
    writer: &Writer,
    store: &Store,
    max: usize,
    now: i64,
) -> Result<Option<RotationState>, StoreError> {
    let out = writer
        .run(move |kv| {
            let ring = kv
                .index_ring()
                .ok_or_else(|| EngineError::Store("the store has no key ring".into()))?;
            rotation::rekey_chunk(kv, &ring, max, now)
        })
        .await?;
    Ok(match out {
        rotation::Chunk::Idle => None,
        rotation::Chunk::Written(state) => {
            store.rotation.update(Some(&state));
            Some(state)
        }
    })
}

/// The ring a database names, loaded from its key files: epoch 0 is `first` (from
/// `domain.index_key_file`), later epochs are read from `dir` by `read` (file path →
/// key id and secret). The key ids must be the recorded ones.
pub fn load_ring(
    state: Option<&RingState>,
    first: IndexKey,
    dir: &std::path::Path,
    read: impl Fn(&std::path::Path) -> Result<(String, Zeroizing<[u8; 32]>), String>,
) -> Result<IndexKey, String> {
    let Some(state) = state else {
        return Ok(first);
    };
    let Some(e0) = state.epochs.first() else {
        return Err("the database's index key ring is empty".into());
    };
    if e0.key_id != first.id() {
        return Err(format!(
            "domain.index_key_file holds key id {:?}, but the database's index key ring starts with {:?}",
            first.id(),
            e0.key_id
        ));
    }
    let mut ring = first;
    for (i, e) in state.epochs.iter().enumerate().skip(1) {
        let file = e.file.as_deref().ok_or_else(|| {
            format!(
                "index key ring epoch {i} (key id {:?}) names no key file",
                e.key_id
            )
        })?;
        let path = dir.join(file);
        let (id, secret) = read(&path)
            .map_err(|err| format!("index key ring epoch {i} (key id {:?}): {err}", e.key_id))?;
        if id != e.key_id {
            return Err(format!(
                "index key ring epoch {i}: {} holds key id {id:?}, the database expects {:?}",
                path.display(),
                e.key_id
            ));
        }
        ring = ring.with_epoch(id, *secret);
    }
    Ok(ring)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::engine::{self, Effects, IdSource, NewSignal};
    use crate::index::model::{Contact, WithdrawReason};
    use crate::pseudonym::{KeyKind, Pseudonym};
    use std::collections::HashMap;

    struct Ids(u64);
    impl IdSource for Ids {
        fn random16(&mut self) -> [u8; 16] {
            self.0 += 1;
            u128::from(self.0).to_be_bytes()
        }
    }

    const K0: [u8; 32] = [0x11; 32];
    const K1: [u8; 32] = [0x22; 32];

    /// A shelter's address: excluded, in the ring's epoch (as `serve` builds it).
    fn shelter() -> Pseudonym {
        p1(KeyKind::Address, 200)
    }

    fn policy(ring: &IndexKey) -> Policy {
        Policy {
            thresholds: HashMap::from([("n".to_string(), 2)]),
            max_postings_per_key: 32,
            max_component_signals: 64,
            excluded_addresses: ExcludedAddresses::new([ring.rekey(&shelter()).p2].into()),
            ..Policy::default()
        }
    }

    fn p1(kind: KeyKind, i: u8) -> Pseudonym {
        Pseudonym {
            kind,
            bytes: [i; 32],
        }
    }

    fn open(dir: &std::path::Path) -> (Store, Policy) {
        Store::open_with_ring(
            dir,
            8,
            100,
            |state| {
                load_ring(state, IndexKey::new("k0".into(), K0), dir, |p| {
                    assert!(p.ends_with("k1.toml"));
                    Ok(("k1".to_string(), Zeroizing::new(K1)))
                })
            },
            |ring| Ok(policy(ring)),
        )
        .unwrap()
    }

    fn signal(ring: &IndexKey, org: &str, reference: &str, person: u8) -> NewSignal {
        let rk = |p: Pseudonym| ring.rekey(&p);
        NewSignal {
            org: org.into(),
            network: "n".into(),
            reference: reference.into(),
            category: None,
            contact: Contact {
                name: "T".into(),
                phone: None,
                email: None,
            },
            key_id: "d".into(),
            valid_until: 1_000_000,
            person: vec![rk(p1(KeyKind::Bsn, person))],
            household: vec![rk(p1(KeyKind::Address, person / 2))],
            family: vec![],
            content_hash: ring.hash("samenloop/content", reference.as_bytes()),
        }
    }

    fn all_p2(rec: &SignalRecord) -> Vec<[u8; 32]> {
        rec.all_keys().map(|k| k.p2).collect()
    }

    /// The worker stopped after every chunk (the store closed and opened again, as after
    /// a crash) resumes from its cursor and ends with every record in the new epoch,
    /// the postings a fresh rebuild gives, the archive entries moved and no old P2 left.
    #[tokio::test]
    async fn a_rotation_cut_off_after_every_chunk_resumes_and_completes() {
        let dir = tempfile::tempdir().unwrap();
        let ring0 = IndexKey::new("k0".into(), K0);
        let mut old_p2: Vec<[u8; 32]> = Vec::new();
        {
            let (store, policy) = open(dir.path());
            let mut ids = Ids(0);
            for i in 0..23u8 {
                // Pairs of organisations on one person: matches.
                let org = if i % 2 == 0 { "a" } else { "b" };
                let mut new = signal(&ring0, org, &format!("R{i}"), i / 2);
                if i == 20 {
                    // Expires at 150, archived below by the retention job.
                    new.valid_until = 150;
                }
                old_p2.extend(new.person.iter().chain(&new.household).map(|k| k.p2));
                old_p2.push(new.content_hash);
                store
                    .transact(|kv| {
                        engine::submit(kv, &policy, new, 100, &mut ids, &mut Effects::default())
                    })
                    .unwrap();
            }
            // Two withdrawn (archived) signals: archive key index entries in epoch 0.
            for id in [3u64, 8] {
                store
                    .transact(|kv| {
                        let rec = engine::signal_by_id(kv, id)?.unwrap();
                        engine::withdraw(kv, &rec, WithdrawReason::ConcernOver, 200)
                    })
                    .unwrap();
            }
            // The expired one archived: archive key index entries without a withdrawal.
            let mut done = crate::index::retention::Done::default();
            store
                .transact(|kv| {
                    crate::index::retention::archive_expired(
                        kv, &policy, &mut ids, 160, 10, &mut done,
                    )
                })
                .unwrap();
            assert_eq!(done.archived.len(), 1);
            // A runtime excluded address (`E` + P2), as the admin API will keep them.
            let mut e = vec![b'E'];
            e.extend_from_slice(&ring0.rekey(&shelter()).p2);
            old_p2.push(ring0.rekey(&shelter()).p2);
            store
                .transact(|kv| {
                    kv.put(e, b"{}".to_vec());
                    Ok(())
                })
                .unwrap();
            store.flush().unwrap();
        }
        let before: Vec<SignalRecord> = {
            let (store, _) = open(dir.path());
            store
                .dump()
                .unwrap()
                .iter()
                .filter(|(k, _)| k.first() == Some(&b's'))
                .map(|(_, v)| SignalRecord::decode(v).unwrap())
                .collect()
        };
        assert!(before.iter().all(|r| r.epoch == 0));
        let ring1 = ring0.with_epoch("k1".into(), K1);

        // Start, then one chunk of 4 per "process".
        let mut chunks = 0;
        loop {
            let (store, policy) = open(dir.path());
            let policy = Arc::new(policy);
            let (writer, thread) = Writer::start(store.clone(), 0).unwrap();
            if chunks == 0 {
                let started = writer
                    .start_rotation(
                        StartRotation {
                            key_id: "k1".into(),
                            key: Zeroizing::new(K1),
                            file: "k1.toml".into(),
                            policy: policy.clone(),
                            now: 300,
                        },
                        Box::new(|_, _| Ok(())),
                    )
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(started.signals_total, 23);
                // A second start while it runs is refused, nothing written.
                let again = writer
                    .start_rotation(
                        StartRotation {
                            key_id: "k2".into(),
                            key: Zeroizing::new([0x33; 32]),
                            file: "k2.toml".into(),
                            policy: policy.clone(),
                            now: 301,
                        },
                        Box::new(|_, _| Ok(())),
                    )
                    .await
                    .unwrap();
                assert_eq!(again, Err(Refused::Running));
                // The policy in force now excludes the shelter in the new epoch.
                let new = ring0.with_epoch("k1".into(), K1).rekey(&shelter()).p2;
                assert!(policy.excluded_addresses.contains(&new));
                assert!(
                    !policy
                        .excluded_addresses
                        .contains(&ring0.rekey(&shelter()).p2)
                );
                assert_eq!(started.excluded_moved, 1);
            }
            assert_eq!(
                store.ring().epoch(),
                1,
                "the ring is reloaded from the record"
            );
            let state = rekey_chunk(&writer, &store, 4, 400).await.unwrap().unwrap();
            chunks += 1;
            drop(writer);
            thread.join().unwrap();
            if state.state == RotationPhase::Done {
                assert_eq!(state.signals_rekeyed, 23);
                assert_eq!(state.finished_at, Some(400));
                break;
            }
            assert!(chunks < 10, "the rotation does not end");
        }
        assert_eq!(chunks, 6, "23 records, 4 per chunk: the last chunk finds 3");

        let (store, policy) = open(dir.path());
        let dump = store.dump().unwrap();
        let after: Vec<SignalRecord> = dump
            .iter()
            .filter(|(k, _)| k.first() == Some(&b's'))
            .map(|(_, v)| SignalRecord::decode(v).unwrap())
            .collect();
        assert_eq!(after.len(), before.len());
        let mut expected = PostingIndex::new();
        for (old, new) in before.iter().zip(&after) {
            let mut lifted = old.clone();
            ring1.lift_record(&mut lifted);
            assert_eq!(&lifted, new, "every record is its old self, lifted");
            assert_eq!(new.epoch, 1);
            index_signal(&mut expected, new, &policy, 100);
        }
        for rec in &after {
            for p2 in all_p2(rec) {
                assert_eq!(store.postings_of(&p2), expected.get(&p2).to_vec());
            }
            if [3, 8, 21].contains(&rec.id) {
                for p2 in all_p2(rec) {
                    let k = crate::audit::subject::archive_key(&p2, rec.id);
                    assert!(dump.iter().any(|(key, _)| key == &k), "archive entry moved");
                }
            }
        }
        assert_eq!(
            store.posting_stats().postings.load(Ordering::Relaxed),
            expected.postings()
        );
        let mut moved = vec![b'E'];
        moved.extend_from_slice(&ring1.rekey(&shelter()).p2);
        assert!(
            dump.iter().any(|(k, v)| k == &moved && v == b"{}"),
            "E key moved"
        );
        for old in &old_p2 {
            for (k, v) in &dump {
                assert!(
                    !k.windows(32).any(|w| w == old) && !v.windows(32).any(|w| w == old),
                    "an epoch-0 value is left in the store"
                );
            }
        }
        // Matching goes on with keys derived afresh: a third organisation joins.
        let new = signal(&ring1, "c", "R-new", 0);
        let out = store
            .transact(|kv| {
                engine::submit(
                    kv,
                    &policy,
                    new,
                    500,
                    &mut Ids(1000),
                    &mut Effects::default(),
                )
            })
            .unwrap();
        assert!(
            matches!(out, engine::SubmitOutcome::Created { alerts: 1, .. }),
            "{out:?}"
        );
        // Keys a request derived before the switch are lifted on the writer and join too.
        let mut stale = signal(&ring0, "d", "R-stale", 5);
        store.ring().lift_new(&mut stale, 0);
        let out = store
            .transact(|kv| {
                engine::submit(
                    kv,
                    &policy,
                    stale,
                    500,
                    &mut Ids(2000),
                    &mut Effects::default(),
                )
            })
            .unwrap();
        assert!(
            matches!(out, engine::SubmitOutcome::Created { alerts: 1, .. }),
            "{out:?}"
        );
    }
}
