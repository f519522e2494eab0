//! Cost of `GET /v1/networks/{network}/figures` without HTTP: the figures of one
//! network over a year, read from a sled store that holds M matches of that network
//! (each with a follow-up of four steps) and two years of daily signal counters.
//!
//! `cargo bench --bench figures` runs M = 1,000 and 10,000; set
//! `SAMENLOOP_BENCH_MATCHES=1000,10000,100000` for more. The cost grows with the
//! network's matches (each is read with its follow-up), never with its signals.

use criterion::{Criterion, criterion_group, criterion_main};
use samenloop::index::counters;
use samenloop::index::engine::{Kv, Policy, match_key, network_matches_prefix};
use samenloop::index::figures;
use samenloop::index::followup;
use samenloop::index::model::*;
use samenloop::store::Store;

const DAY: i64 = 86_400;
/// 2026-01-01 00:00 UTC.
const T0: i64 = 1_767_225_600;

fn step(action: &str, stage: Stage, by: &str, at: i64) -> Step {
    Step {
        action: action.into(),
        stage,
        by: by.into(),
        on_behalf_of: None,
        at,
        organisation: None,
        date: None,
        reason: (stage == Stage::Closed).then_some(CloseReason::CareInPlace),
        deadline: None,
    }
}

fn put_match(kv: &mut dyn Kv, id: u64) {
    let at = T0 + (id as i64 * 7919) % (360 * DAY);
    let m = MatchRecord {
        id,
        handle: format!("m_{id:032x}"),
        kind: [MatchKind::Person, MatchKind::Household, MatchKind::Family][id as usize % 3],
        status: MatchStatus::Open,
        scope: id,
        created_at: at,
        updated_at: at,
        orgs: vec!["woonstad".into(), "ggz-noord".into()],
        networks: vec!["n".into()],
        merged_into: None,
    };
    kv.put(match_key(id), serde_json::to_vec(&m).unwrap());
    let mut k = network_matches_prefix("n");
    k.extend_from_slice(&id.to_be_bytes());
    kv.put(k, Vec::new());
    let history = vec![
        step("formed", Stage::New, "index", at),
        step(
            "acknowledge",
            Stage::Acknowledged,
            "coord",
            at + 3600 * (1 + id as i64 % 90),
        ),
        step("consent_given", Stage::ConsentGiven, "coord", at + 3 * DAY),
        step("close", Stage::Closed, "coord", at + 20 * DAY),
    ];
    let f = FollowUp {
        stage: Stage::Closed,
        unacknowledged: false,
        lead: None,
        meeting_on: None,
        closed_reason: Some(CloseReason::CareInPlace),
        opened_at: at,
        acknowledged_at: Some(history[1].at),
        decided_at: Some(history[2].at),
        acknowledge_due: None,
        decision_due: None,
        overdue: Vec::new(),
        history,
    };
    followup::store(kv, id, "n", None, &f).unwrap();
}

fn signal_counts(kv: &mut dyn Kv) {
    // 20 signals a day for two years, each valid for 365 days.
    for d in 0..730 {
        for i in 0..20 {
            let at = T0 - 365 * DAY + d * DAY + i * 600;
            let rec = SignalRecord {
                id: 0,
                public_id: String::new(),
                org: "o".into(),
                network: "n".into(),
                reference: String::new(),
                category: None,
                contact: Contact {
                    name: String::new(),
                    phone: None,
                    email: None,
                },
                key_id: String::new(),
                submitted_at: at,
                renewed_at: None,
                valid_until: at + 365 * DAY,
                state: SignalState::Active,
                entity: 0,
                content_hash: [0; 32],
                person: vec![],
                household: vec![],
                family: vec![],
                epoch: 0,
            };
            counters::on_submit(kv, &rec).unwrap();
        }
    }
}

fn bench(c: &mut Criterion) {
    let sizes: Vec<u64> = std::env::var("SAMENLOOP_BENCH_MATCHES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000]);
    let mut group = c.benchmark_group("figures");
    group.sample_size(10);
    for m in sizes {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 256, &Policy::default(), T0).unwrap();
        store
            .transact(|kv| {
                signal_counts(kv);
                Ok(())
            })
            .unwrap();
        for chunk in (1..=m).collect::<Vec<_>>().chunks(10_000) {
            store
                .transact(|kv| {
                    for id in chunk {
                        put_match(kv, *id);
                    }
                    Ok(())
                })
                .unwrap();
        }
        let (from, to) = (T0 / DAY, T0 / DAY + 364);
        let now = T0 + 400 * DAY;
        let p = figures::collect(&store, "n", from, to, now, 5).unwrap();
        assert_eq!(p.matches_formed.total, Some(m));
        group.bench_function(format!("{m} matches"), |b| {
            b.iter(|| figures::collect(&store, "n", from, to, now, 5).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
