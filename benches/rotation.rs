//! Cost of a rotation of `K_index` without HTTP (spec/index-key-rotation.md): a sled
//! store of N signals (half in matches with a second organisation, 10 % withdrawn so
//! that they hold archive key index entries), rotated on the real writer thread (group
//! commit, fsync per group): the switch (the writer's pause while the posting lists are
//! rebuilt in the new epoch), then the re-keying in chunks of 2,000 signals, first with
//! nothing else going on, then again (to the next epoch) while 64 concurrent clients
//! submit signals through the same writer.
//!
//! A plain timing harness, like `benches/retention.rs`: `cargo bench --bench rotation`
//! runs N = 200,000; `SAMENLOOP_BENCH_SIGNALS=1000000` a million;
//! `SAMENLOOP_BENCH_CHUNK=500` re-writes 500 signals per transaction instead of 2,000.

use samenloop::index::IndexKey;
use samenloop::index::engine::{Effects, IdSource, NewSignal, Policy, submit, withdraw};
use samenloop::index::model::{Contact, WithdrawReason};
use samenloop::pseudonym::{KeyKind, Pseudonym};
use samenloop::store::rotation::{StartRotation, load_ring, rekey_chunk};
use samenloop::store::{Store, Writer};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;
use zeroize::Zeroizing;

struct Ids(u128);
impl IdSource for Ids {
    fn random16(&mut self) -> [u8; 16] {
        self.0 += 1;
        self.0.to_be_bytes()
    }
}

fn p1(kind: KeyKind, seed: u64) -> Pseudonym {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8] = kind as u8;
    Pseudonym { kind, bytes }
}

/// Signal `i`: person `i / 2` for even-odd pairs of two organisations (so half the
/// persons have a match), a BSN and three name keys, an address: 5 keys.
fn signal(ring: &IndexKey, i: u64) -> NewSignal {
    let p = i / 2;
    let k = |kind, s| ring.rekey(&p1(kind, s));
    NewSignal {
        org: if i % 2 == 0 { "a" } else { "b" }.into(),
        network: "n".into(),
        reference: format!("r{i}"),
        category: None,
        contact: Contact {
            name: "Team".into(),
            phone: None,
            email: None,
        },
        key_id: "dev-2026".into(),
        valid_until: 10_000_000,
        person: vec![
            k(KeyKind::Bsn, p * 8),
            k(KeyKind::NameDate, p * 8 + 1),
            k(KeyKind::PhoneticDate, p * 8 + 2),
            k(KeyKind::InitialDate, p * 8 + 3),
        ],
        household: vec![k(KeyKind::Address, p * 8 + 4)],
        family: vec![],
        content_hash: ring.hash("samenloop/content", format!("r{i}").as_bytes()),
    }
}

fn policy() -> Policy {
    Policy {
        thresholds: [("n".to_string(), 2)].into_iter().collect(),
        max_postings_per_key: 32,
        max_component_signals: 64,
        ..Policy::default()
    }
}

const T0: i64 = 1_000_000;

/// Signals per transaction (`SAMENLOOP_BENCH_CHUNK`, default 2,000 as in `serve`).
fn chunk() -> usize {
    std::env::var("SAMENLOOP_BENCH_CHUNK")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

async fn rotate(
    writer: &Writer,
    store: &Store,
    policy: &Arc<Policy>,
    id: &str,
    byte: u8,
) -> (f64, u64, u64) {
    let started = Instant::now();
    writer
        .start_rotation(
            StartRotation {
                key_id: id.into(),
                key: Zeroizing::new([byte; 32]),
                file: format!("{id}.toml"),
                policy: policy.clone(),
                now: T0,
            },
            Box::new(|_, _| Ok(())),
        )
        .await
        .unwrap()
        .unwrap();
    let switch = started.elapsed().as_secs_f64();
    println!(
        "switch to {id}: writer paused {:.0} ms (posting lists rebuilt: {} keys, {} postings); answered after {:.0} ms",
        store.rotation_progress().switch_ms.load(Ordering::Relaxed),
        store.posting_stats().keys.load(Ordering::Relaxed),
        store.posting_stats().postings.load(Ordering::Relaxed),
        switch * 1000.0
    );
    let started = Instant::now();
    let last = loop {
        let s = rekey_chunk(writer, store, chunk(), T0)
            .await
            .unwrap()
            .unwrap();
        if s.finished_at.is_some() {
            break s;
        }
    };
    (
        started.elapsed().as_secs_f64(),
        last.signals_rekeyed,
        last.keys_rekeyed,
    )
}

fn main() {
    let n: u64 = std::env::var("SAMENLOOP_BENCH_SIGNALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let ring0 = IndexKey::new("k0".into(), [0x11; 32]);
    let keys: [(String, u8); 2] = [("k1".into(), 0x22), ("k2".into(), 0x33)];
    let open = || {
        Store::open_with_ring(
            dir.path(),
            512,
            T0,
            |state| {
                load_ring(state, ring0.clone(), dir.path(), |p| {
                    let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                    let (id, b) = keys.iter().find(|(id, _)| id == name).unwrap();
                    Ok((id.clone(), Zeroizing::new([*b; 32])))
                })
            },
            |_| Ok(policy()),
        )
        .unwrap()
    };
    let (store, policy) = open();
    let policy = Arc::new(policy);
    let mut ids = Ids(0);
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(2000) {
        store
            .transact(|kv| {
                let mut fx = Effects::default();
                for &i in chunk {
                    submit(kv, &policy, signal(&ring0, i), T0, &mut ids, &mut fx)?;
                }
                Ok(())
            })
            .unwrap();
    }
    // Every tenth signal withdrawn (archived): its keys are in the archive key index.
    for chunk in (1..=n).step_by(10).collect::<Vec<_>>().chunks(2000) {
        store
            .transact(|kv| {
                for &id in chunk {
                    let rec = samenloop::index::engine::signal_by_id(kv, id)?.unwrap();
                    withdraw(kv, &rec, WithdrawReason::ConcernOver, T0 + 1)?;
                }
                Ok(())
            })
            .unwrap();
    }
    store.flush().unwrap();
    eprintln!(
        "prefill: {n} signals in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (writer, thread) = Writer::start(store.clone(), 0).unwrap();
    rt.block_on(async {
        let (secs, signals, keys) = rotate(&writer, &store, &policy, "k1", 0x22).await;
        println!(
            "re-key alone: {signals} signals, {keys} keys in {secs:.2} s = {:.0} keys/s ({:.0} signals/s)",
            keys as f64 / secs,
            signals as f64 / secs
        );

        // Again, to the next epoch, with intake: 64 clients submitting one signal per
        // request, each request's keys derived under the ring it saw (as the API does).
        let stop = Arc::new(AtomicBool::new(false));
        let submitted = Arc::new(AtomicU64::new(0));
        let next = Arc::new(AtomicU64::new(n));
        let mut clients = Vec::new();
        for _ in 0..64 {
            let (w, st, stop, submitted, next, policy) = (
                writer.clone(),
                store.clone(),
                stop.clone(),
                submitted.clone(),
                next.clone(),
                policy.clone(),
            );
            clients.push(tokio::spawn(async move {
                let mut ids = Ids(u128::from(next.load(Ordering::Relaxed)) << 32);
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let ring = st.ring();
                    let epoch = ring.epoch();
                    let mut new = signal(&ring, i);
                    let seed = ids.random16();
                    let policy = policy.clone();
                    w.run(move |kv| {
                        if let Some(r) = kv.index_ring() {
                            r.lift_new(&mut new, epoch);
                        }
                        let mut ids = Ids(u128::from_be_bytes(seed));
                        submit(kv, &policy, new, T0, &mut ids, &mut Effects::default())
                    })
                    .await
                    .unwrap();
                    submitted.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let warm = submitted.load(Ordering::Relaxed);
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        let before = submitted.load(Ordering::Relaxed);
        println!(
            "intake before the rotation: {:.0} signals/s (64 clients, one signal per request)",
            (before - warm) as f64
        );
        let t = Instant::now();
        let (secs, signals, keys) = rotate(&writer, &store, &policy, "k2", 0x33).await;
        let during = submitted.load(Ordering::Relaxed) - before;
        let intake_secs = t.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.await.unwrap();
        }
        println!(
            "re-key with intake: {signals} signals, {keys} keys in {secs:.2} s = {:.0} keys/s ({:.0} signals/s), while {during} signals were submitted ({:.0}/s)",
            keys as f64 / secs,
            signals as f64 / secs,
            during as f64 / intake_secs
        );
    });
    drop(writer);
    thread.join().unwrap();
    drop(store);
    // The records are all in the last epoch.
    let (store, _) = open();
    let epochs: std::collections::BTreeMap<u32, u64> = store
        .dump()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.first() == Some(&b's') && k.len() == 9)
        .fold(Default::default(), |mut m, (_, v)| {
            *m.entry(samenloop::index::model::SignalRecord::epoch_of(v).unwrap())
                .or_default() += 1;
            m
        });
    println!("records per epoch after both rotations: {epochs:?}");
    assert_eq!(epochs.len(), 1);
}
