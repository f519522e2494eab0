//! Cost of matching one new signal against a store of N signals (sled, no flush), and
//! the time to rebuild the in-memory posting lists when a store of N signals opens.
//!
//! `cargo bench --bench matching` runs N = 10,000 and 100,000; set
//! `SAMENLOOP_BENCH_SIZES=10000,100000,1000000` for the full curve (prefilling a
//! million signals takes a few minutes). `SAMENLOOP_BENCH_CACHE_MIB` sets sled's page
//! cache (default 256, as in the development configuration). The design goal: the cost
//! stays flat in N, because a submission touches only the posting lists of its own keys.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use samenloop::index::engine::{Effects, IdSource, NewSignal, Policy, submit};
use samenloop::index::model::{Contact, StoredKey};
use samenloop::pseudonym::KeyKind;
use samenloop::store::Store;

struct Ids(u128);
impl IdSource for Ids {
    fn random16(&mut self) -> [u8; 16] {
        self.0 += 1;
        self.0.to_be_bytes()
    }
}

/// splitmix64: deterministic key material.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn key(kind: KeyKind, seed: u64) -> StoredKey {
    let mut p2 = [0u8; 32];
    for (i, chunk) in p2.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&mix(seed.wrapping_mul(31).wrapping_add(i as u64)).to_le_bytes());
    }
    StoredKey {
        kind: kind as u8,
        p2,
    }
}

/// A signal with the key mix of a typical person: BSN for 70 %, 11 name keys (3 of which
/// count only at a shared address and are not posted), an address.
fn signal(i: u64, org: &str) -> NewSignal {
    let mut person = Vec::new();
    if i % 10 < 7 {
        person.push(key(KeyKind::Bsn, i * 16));
    }
    for (j, k) in [
        KeyKind::NameDate,
        KeyKind::PhoneticDate,
        KeyKind::FamilyStart,
        KeyKind::FamilyEnd,
        KeyKind::GivenStart,
        KeyKind::GivenEnd,
        KeyKind::InitialDate,
        KeyKind::AllInitials,
        KeyKind::PhoneticYear,
        KeyKind::PhoneticMonthDay,
        KeyKind::InitialBirthDate,
    ]
    .into_iter()
    .enumerate()
    {
        person.push(key(k, i * 16 + 1 + j as u64));
    }
    NewSignal {
        org: org.into(),
        network: "n".into(),
        reference: format!("r{i}"),
        category: None,
        contact: Contact {
            name: "Team".into(),
            phone: None,
            email: None,
        },
        key_id: "dev-2026".into(),
        valid_until: 4_000_000_000,
        person,
        household: vec![key(KeyKind::Address, i * 16 + 15)],
        family: vec![],
        content_hash: [0; 32],
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

/// Resident memory of this process, MB (Linux; 0 elsewhere).
fn rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

fn bench(c: &mut Criterion) {
    let sizes: Vec<u64> = std::env::var("SAMENLOOP_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000]);
    let cache_mib: u64 = std::env::var("SAMENLOOP_BENCH_CACHE_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let policy = policy();
    let mut group = c.benchmark_group("submit_one_signal");
    group.sample_size(50);
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), cache_mib, &policy, 1_000).unwrap();
        let mut ids = Ids(0);
        let started = std::time::Instant::now();
        for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
            store
                .transact(|kv| {
                    let mut fx = Effects::default();
                    for &i in chunk {
                        submit(kv, &policy, signal(i, "a"), 1_000, &mut ids, &mut fx)?;
                    }
                    Ok(())
                })
                .unwrap();
        }
        store.flush().unwrap();
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "prefill: {n} signals in batches of 1000 in {secs:.1} s = {:.0} signals/s (disk {} MB)",
            n as f64 / secs,
            store.size_on_disk() / 1_000_000
        );
        let mut next = n;
        group.bench_function(format!("no_match_N={n}"), |b| {
            b.iter_batched(
                || {
                    next += 1;
                    signal(next, "b")
                },
                |s| {
                    store
                        .transact(|kv| {
                            submit(kv, &policy, s, 2_000, &mut ids, &mut Effects::default())
                        })
                        .unwrap()
                },
                BatchSize::SmallInput,
            )
        });
        let mut m = 0;
        group.bench_function(format!("forms_match_N={n}"), |b| {
            b.iter_batched(
                || {
                    m += 1;
                    // Same keys as stored signal m, another organisation: a person match forms.
                    let mut s = signal(m, "c");
                    s.reference = format!("c{m}");
                    s
                },
                |s| {
                    store
                        .transact(|kv| {
                            submit(kv, &policy, s, 2_000, &mut ids, &mut Effects::default())
                        })
                        .unwrap()
                },
                BatchSize::SmallInput,
            )
        });
        // Reopen (after measuring on the warm store): the posting lists are rebuilt
        // from the signal records.
        drop(store);
        let store = Store::open(dir.path(), cache_mib, &policy, 1_000).unwrap();
        let stats = store.posting_stats();
        let load = |v: &std::sync::atomic::AtomicU64| v.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "reopen: posting lists of {} signals rebuilt in {} ms: {} keys, {} postings; process RSS {} MB",
            load(&stats.rebuilt_from),
            load(&stats.rebuild_ms),
            load(&stats.keys),
            load(&stats.postings),
            rss_mb()
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
