//! Cost of the access log without HTTP, on a sled store holding N entries that look
//! like a network's day (partners submitting, coordinators reading matches, refused
//! requests): appending an entry in a transaction, exporting the whole log as JSON Lines
//! for a privacy officer of one of three networks (full lines and stubs), the same as
//! CSV, and verifying the chain.
//!
//! `cargo bench --bench audit` runs N = 100,000; set `SAMENLOOP_BENCH_ENTRIES=100000,1000000`
//! for more. The floor is an export of at least 100,000 entries/s; the figure
//! is `N / time` of the export benches.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use samenloop::audit::export::{Export, Format};
use samenloop::audit::query::Filter;
use samenloop::audit::{Action, Entry, ObjectType, Outcome, Scope, append};
use samenloop::index::engine::Policy;
use samenloop::store::Store;

/// 2026-11-25 08:00 UTC.
const T0_MS: i64 = 1_764_057_600_000;

fn entry(i: u64) -> Entry {
    let net = ["zorgnetwerk-noord", "jeugd-0-12", "zorg-zuid"][(i % 3) as usize];
    let (action, object_type, role, op) = match i % 4 {
        0 => (
            Action::Create,
            ObjectType::Signal,
            "partner",
            "POST /v1/signals",
        ),
        1 => (
            Action::Read,
            ObjectType::Match,
            "coordinator",
            "GET /v1/matches/{handle}",
        ),
        2 => (
            Action::Search,
            ObjectType::Match,
            "coordinator",
            "GET /v1/networks/{network}/matches",
        ),
        _ => (
            Action::Read,
            ObjectType::Signal,
            "partner",
            "GET /v1/signals/{id}",
        ),
    };
    Entry {
        seq: 0,
        at_ms: T0_MS + i as i64 * 50,
        action,
        outcome: if i % 50 == 0 {
            Outcome::Denied
        } else {
            Outcome::Success
        },
        status: if i % 50 == 0 { 404 } else { 200 },
        operation: op.into(),
        actor: format!("user-{}", i % 200),
        org: Some(format!("org-{}", i % 20)),
        role: Some(role.into()),
        on_behalf_of: (i % 5 == 0).then(|| format!("prof-{}", i % 97)),
        purpose: None,
        actor_networks: vec![net.into()],
        network: Some(net.into()),
        object_type: Some(object_type),
        object_id: Some(format!(
            "sig_{:032x}",
            i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        )),
        related: (0..(i % 3))
            .map(|k| format!("m_{:032x}", (i + k).wrapping_mul(0x2545_f491_4f6c_dd1d)))
            .collect(),
        client: "10.1.2.3".into(),
        request_id: format!("req_{:024x}", i.wrapping_mul(0xff51_afd7_ed55_8ccd) >> 8),
    }
}

fn drain(store: &Store, format: Format, scope: Scope) -> (u64, usize) {
    let mut ex = Export::new(
        store,
        scope,
        Filter::default(),
        serde_json::json!({}),
        format,
        T0_MS,
    )
    .unwrap();
    let mut bytes = 0usize;
    while let Some(chunk) = ex.next_chunk(store, 4096).unwrap() {
        bytes += chunk.len();
    }
    (ex.entries(), bytes)
}

fn bench(c: &mut Criterion) {
    let sizes: Vec<u64> = std::env::var("SAMENLOOP_BENCH_ENTRIES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000]);
    let mut group = c.benchmark_group("access-log");
    group.sample_size(10);
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 256, &Policy::default(), T0_MS / 1000).unwrap();
        for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
            store
                .transact(|kv| {
                    for i in chunk {
                        append(kv, entry(*i))?;
                    }
                    Ok(())
                })
                .unwrap();
        }
        let officer = || Scope::Networks(vec!["zorgnetwerk-noord".into()]);
        let (full, bytes) = drain(&store, Format::Jsonl, officer());
        assert_eq!(full, n.div_ceil(3));
        eprintln!(
            "{n} entries: JSON Lines export for one network {:.1} MB ({full} full lines)",
            bytes as f64 / 1e6
        );
        group.throughput(Throughput::Elements(n));
        group.bench_function(format!("export jsonl, {n} entries"), |b| {
            b.iter(|| drain(&store, Format::Jsonl, officer()))
        });
        group.bench_function(format!("export csv, {n} entries"), |b| {
            b.iter(|| drain(&store, Format::Csv, officer()))
        });
        group.bench_function(format!("verify, {n} entries"), |b| {
            b.iter(|| {
                let r = samenloop::audit::verify::verify_store(&store, None, Vec::new()).unwrap();
                assert!(r.ok);
            })
        });
        group.throughput(Throughput::Elements(1000));
        let mut i = n;
        group.bench_function(format!("append 1000 entries, {n} stored"), |b| {
            b.iter(|| {
                store
                    .transact(|kv| {
                        for _ in 0..1000 {
                            i += 1;
                            append(kv, entry(i))?;
                        }
                        Ok(())
                    })
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
