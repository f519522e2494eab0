//! Cost of a retention run without HTTP: a sled store of N signals (half in matches
//! with a second organisation) all of which expired, archived by the job in its
//! transactions of 2,000 (each signal leaves its matches, which dissolve), and then, an
//! archive period later, all erased.
//!
//! A plain timing harness (each run destroys what it measures, so it runs once):
//! `cargo bench --bench retention` runs N = 100,000, all due;
//! `SAMENLOOP_BENCH_SIGNALS=1000000 SAMENLOOP_BENCH_DUE=0.01` a run over a store of a
//! million signals of which 1 % is due (the job reads only what is due, so the store's
//! size should not matter).

use samenloop::index::engine::{Effects, IdSource, NewSignal, Policy, submit};
use samenloop::index::model::{Contact, StoredKey};
use samenloop::index::retention::{Done, archive_expired, erase_archived};
use samenloop::pseudonym::KeyKind;
use samenloop::store::Store;
use std::time::Instant;

struct Ids(u128);
impl IdSource for Ids {
    fn random16(&mut self) -> [u8; 16] {
        self.0 += 1;
        self.0.to_be_bytes()
    }
}

fn key(kind: KeyKind, seed: u64) -> StoredKey {
    let mut p2 = [0u8; 32];
    p2[..8].copy_from_slice(&seed.to_le_bytes());
    p2[8] = kind as u8;
    p2[9..17].copy_from_slice(&seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    StoredKey {
        kind: kind as u8,
        p2,
    }
}

/// Signal `i`: person `i / 2` for even-odd pairs of two organisations (so half the
/// persons have a match), a BSN and three name keys, an address.
fn signal(i: u64, valid_until: i64) -> NewSignal {
    let p = i / 2;
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
        valid_until,
        person: vec![
            key(KeyKind::Bsn, p * 8),
            key(KeyKind::NameDate, p * 8 + 1),
            key(KeyKind::PhoneticDate, p * 8 + 2),
            key(KeyKind::InitialDate, p * 8 + 3),
        ],
        household: vec![key(KeyKind::Address, p * 8 + 4)],
        family: vec![],
        content_hash: [0; 32],
    }
}

fn main() {
    let n: u64 = std::env::var("SAMENLOOP_BENCH_SIGNALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let share: f64 = std::env::var("SAMENLOOP_BENCH_DUE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    // Signals 0..due (whole pairs) expire first; the others a year later.
    let due = ((n as f64 * share) as u64) & !1;
    let policy = Policy {
        thresholds: [("n".to_string(), 2)].into_iter().collect(),
        max_postings_per_key: 32,
        max_component_signals: 64,
        ..Policy::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_000_000;
    let until = t0 + 86_400;
    let store = Store::open(dir.path(), 256, &policy, t0).unwrap();
    let mut ids = Ids(0);
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(2000) {
        store
            .transact(|kv| {
                let mut fx = Effects::default();
                for &i in chunk {
                    let end = if i < due { until } else { until + 365 * 86_400 };
                    submit(kv, &policy, signal(i, end), t0, &mut ids, &mut fx)?;
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

    let now = until + 1;
    let started = Instant::now();
    let mut total = Done::default();
    loop {
        let mut done = Done::default();
        let k = store
            .transact(|kv| archive_expired(kv, &policy, &mut ids, now, 2000, &mut done))
            .unwrap();
        total.archived.append(&mut done.archived);
        total.alerts += done.alerts;
        if k < 2000 {
            break;
        }
    }
    store.flush().unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "archive: {} expired signals (of {n} stored) in {secs:.2} s = {:.0} signals/s ({} matches dissolved)",
        total.archived.len(),
        total.archived.len() as f64 / secs,
        total.alerts
    );
    assert_eq!(total.archived.len() as u64, due);

    let later = now + 31 * 86_400;
    let started = Instant::now();
    let mut erased = 0;
    loop {
        let mut done = Done::default();
        let k = store
            .transact(|kv| erase_archived(kv, later, 30 * 86_400, 2000, &mut done))
            .unwrap();
        erased += done.erased.len();
        if k < 2000 {
            break;
        }
    }
    store.flush().unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "erase: {erased} archived signals (of {n} stored) in {secs:.2} s = {:.0} signals/s",
        erased as f64 / secs
    );
    assert_eq!(erased as u64, due);
}
