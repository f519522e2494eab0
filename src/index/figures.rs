//! Network figures for the municipality (issue "Coordinator alerts and follow-up" §5):
//! aggregate counts of one network over a period of whole local days, with small cells
//! suppressed so that nobody can be singled out.
//!
//! The computation is pure ([`compute`] over match facts and signal counts, [`publish`]
//! for the suppression); [`collect`] reads the facts from the store: the signal counts
//! from the daily counters ([`super::counters`], never the signal records) and the match
//! figures from the network's match list and follow-ups.
//!
//! Suppression: every count below `min_cell` (zero included) is withheld (`null`),
//! and further cells are withheld until no withheld cell can be computed from the
//! published ones through the sums the figures state (a breakdown and its total):
//! a secondary ("complementary") suppression, checked by linear algebra over all
//! the sums at once. A median or 90th percentile is published only together with its
//! number of rounds, so never over fewer than `min_cell` rounds.

use super::engine::{self, EngineError, KvRead};
use super::followup;
use super::model::{CloseReason, Deadline, FollowUp, MatchKind, MatchStatus, Stage, Step};
use serde::{Deserialize, Serialize};

/// One match of the network, as far as the figures need it.
#[derive(Debug, Clone)]
pub struct MatchFacts {
    /// Kind.
    pub kind: MatchKind,
    /// Formed (the match record's time; used when no follow-up says when the network was alerted).
    pub created_at: i64,
    /// Folded into another match (its follow-up is frozen: never overdue).
    pub merged: bool,
    /// The network's follow-up of it.
    pub follow_up: Option<FollowUp>,
}

/// The raw counts of one network and period, before suppression.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Signals submitted in the period.
    pub submitted: u64,
    /// Signals active at the end of the period.
    pub active_at_end: u64,
    /// Matches formed in the period: person, household, family.
    pub formed: [u64; 3],
    /// Follow-up rounds opened in the period.
    pub rounds_opened: u64,
    /// Hours from opening to the coordinator's first step, per acknowledged round.
    pub hours_to_acknowledgement: Vec<f64>,
    /// Hours from opening to the decision, per decided round.
    pub hours_to_decision: Vec<f64>,
    /// Follow-ups with a passed, unmet deadline now.
    pub overdue_now: u64,
    /// Closings in the period, per [`CloseReason::ALL`].
    pub closed: [u64; 7],
}

// The closings are published per reason and in one sum with their total: a new reason
// needs its own cell here (and in `ClosedFigures`, the cell list and the spec), or it
// could be computed from the total.
const _: () = assert!(
    CloseReason::ALL.len() == 7,
    "add the new closing reason to the figures"
);

/// One follow-up round: from `formed`/`reopened` to the next.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Round {
    opened_at: i64,
    /// First step by a coordinator in the round.
    acknowledged_at: Option<i64>,
    /// First coordinator step that reached a decision (consent given or refused, closed).
    decided_at: Option<i64>,
}

fn by_coordinator(s: &Step) -> bool {
    s.by != "index"
}

fn rounds(history: &[Step]) -> Vec<Round> {
    let mut out: Vec<Round> = Vec::new();
    for s in history {
        if s.action == "formed" || s.action == "reopened" {
            out.push(Round {
                opened_at: s.at,
                acknowledged_at: None,
                decided_at: None,
            });
            continue;
        }
        let Some(r) = out.last_mut() else { continue };
        if !by_coordinator(s) {
            continue;
        }
        r.acknowledged_at.get_or_insert(s.at);
        if matches!(
            s.stage,
            Stage::ConsentGiven | Stage::ConsentRefused | Stage::Closed
        ) {
            r.decided_at.get_or_insert(s.at);
        }
    }
    out
}

fn kind_index(k: MatchKind) -> usize {
    match k {
        MatchKind::Person => 0,
        MatchKind::Household => 1,
        MatchKind::Family => 2,
    }
}

fn hours(secs: i64) -> f64 {
    secs.max(0) as f64 / 3600.0
}

/// Whether a follow-up has a passed deadline that is not met at `now`.
fn overdue_at(f: &FollowUp, now: i64) -> bool {
    if f.stage == Stage::Closed {
        return false;
    }
    let Some(round) = rounds(&f.history).last().copied() else {
        return f.is_overdue();
    };
    let passed = |which: Deadline, due: Option<i64>| {
        f.overdue.contains(&which) || due.is_some_and(|d| d <= now)
    };
    (round.acknowledged_at.is_none() && passed(Deadline::Acknowledge, f.acknowledge_due))
        || (round.decided_at.is_none() && passed(Deadline::Decision, f.decision_due))
}

/// The counts of one network over `[start, end)` (unix seconds) at `now`, from its
/// signal counts (submitted in the period, active at its end) and its matches.
///
/// - a match counts as formed when the network's follow-up began (`formed` step) in
///   the period, under the match's kind;
/// - a round is opened by `formed` or `reopened`; it is acknowledged at the first step a
///   coordinator records in it and decided at the first coordinator step that gives or
///   refuses consent or closes it (steps of the index itself, such as escalations or a
///   closing because the signals left, are neither);
/// - closings count every step into `closed` in the period, by reason;
/// - overdue counts follow-ups, not closed and not merged, with a deadline of the
///   current round that has passed unmet at `now`.
pub fn compute(
    start: i64,
    end: i64,
    now: i64,
    signals: (u64, u64),
    matches: &[MatchFacts],
) -> Counts {
    let mut c = Counts {
        submitted: signals.0,
        active_at_end: signals.1,
        ..Counts::default()
    };
    let within = |t: i64| (start..end).contains(&t);
    for m in matches {
        let Some(f) = &m.follow_up else {
            if within(m.created_at) {
                c.formed[kind_index(m.kind)] += 1;
            }
            continue;
        };
        let formed_at = f
            .history
            .iter()
            .find(|s| s.action == "formed")
            .map_or(m.created_at, |s| s.at);
        if within(formed_at) {
            c.formed[kind_index(m.kind)] += 1;
        }
        for r in rounds(&f.history).iter().filter(|r| within(r.opened_at)) {
            c.rounds_opened += 1;
            if let Some(a) = r.acknowledged_at {
                c.hours_to_acknowledgement.push(hours(a - r.opened_at));
            }
            if let Some(d) = r.decided_at {
                c.hours_to_decision.push(hours(d - r.opened_at));
            }
        }
        for s in f.history.iter().filter(|s| within(s.at)) {
            if let (Stage::Closed, Some(reason)) = (s.stage, s.reason) {
                let i = CloseReason::ALL.iter().position(|r| *r == reason);
                if let Some(n) = i.and_then(|i| c.closed.get_mut(i)) {
                    *n += 1;
                }
            }
        }
        if !m.merged && overdue_at(f, now) {
            c.overdue_now += 1;
        }
    }
    c
}

/// The nearest-rank percentile `p` (0 < p ≤ 1) of `v`: the smallest value with at
/// least a fraction `p` of the values at or below it. `None` for no values.
pub fn percentile(v: &[f64], p: f64) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len().max(1));
    s.get(rank - 1).copied()
}

/// Which cells to withhold: every cell below `min_cell`, then, as long as a withheld
/// non-zero cell can be computed from the published ones through `sums` (each a list
/// of cells with coefficients that add up to zero, e.g. `parts − total`), the smallest
/// published cell of a sum that holds the exposed one (or of any sum). A withheld zero
/// may be computable (e.g. `0 = total − the only part`): it describes nobody.
pub fn suppress(values: &[u64], sums: &[Vec<(usize, i64)>], min_cell: u64) -> Vec<bool> {
    let mut hidden: Vec<bool> = values.iter().map(|v| *v < min_cell).collect();
    loop {
        // A hidden zero that can be computed describes nobody: only the others count.
        let Some(exposed) = (0..values.len())
            .find(|i| hidden[*i] && values[*i] > 0 && determined(*i, &hidden, sums))
        else {
            return hidden;
        };
        let smallest = |only_with: Option<usize>| {
            sums.iter()
                .filter(|s| only_with.is_none_or(|i| s.iter().any(|(c, _)| *c == i)))
                .flatten()
                .map(|(c, _)| *c)
                .filter(|c| !hidden[*c])
                .min_by_key(|c| (values[*c], *c))
        };
        match smallest(Some(exposed)).or_else(|| smallest(None)) {
            Some(c) => hidden[c] = true,
            // Every cell of every sum is hidden: nothing can be computed any more.
            None => return hidden,
        }
    }
}

/// Whether hidden cell `i` is a linear combination of the published cells: the unit
/// vector of `i` lies in the row space of the sums restricted to the hidden cells.
fn determined(i: usize, hidden: &[bool], sums: &[Vec<(usize, i64)>]) -> bool {
    let cols: Vec<usize> = (0..hidden.len()).filter(|c| hidden[*c]).collect();
    let row = |s: &Vec<(usize, i64)>| -> Vec<f64> {
        cols.iter()
            .map(|c| {
                s.iter()
                    .filter(|(x, _)| x == c)
                    .map(|(_, k)| *k as f64)
                    .sum()
            })
            .collect()
    };
    let mut m: Vec<Vec<f64>> = sums.iter().map(row).collect();
    let without = rank(m.clone());
    m.push(
        cols.iter()
            .map(|c| if *c == i { 1.0 } else { 0.0 })
            .collect(),
    );
    rank(m) == without
}

fn rank(mut m: Vec<Vec<f64>>) -> usize {
    let cols = m.first().map_or(0, Vec::len);
    let mut r = 0;
    for c in 0..cols {
        let Some(p) = (r..m.len()).find(|i| m[*i][c].abs() > 1e-9) else {
            continue;
        };
        m.swap(r, p);
        let pivot = m[r].clone();
        for (i, row) in m.iter_mut().enumerate() {
            if i != r && row[c].abs() > 1e-9 {
                let f = row[c] / pivot[c];
                for (x, y) in row.iter_mut().zip(&pivot) {
                    *x -= f * y;
                }
            }
        }
        r += 1;
    }
    r
}

/// Signals of the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalFigures {
    /// Submitted in the period.
    pub submitted: Option<u64>,
    /// Active at the end of the period (the last second of `to`).
    pub active_at_end: Option<u64>,
}

/// Matches formed in the period, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchFigures {
    /// Person matches.
    pub person: Option<u64>,
    /// Household matches.
    pub household: Option<u64>,
    /// Family matches.
    pub family: Option<u64>,
    /// All of them.
    pub total: Option<u64>,
}

/// Median and 90th percentile, in hours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Durations {
    /// Median (nearest rank).
    pub median: Option<f64>,
    /// 90th percentile (nearest rank).
    pub p90: Option<f64>,
}

/// Follow-up rounds opened in the period and how fast they were picked up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUpFigures {
    /// Rounds opened (matches formed, and reopened after a closing).
    pub rounds_opened: Option<u64>,
    /// Of those, acknowledged by now.
    pub acknowledged: Option<u64>,
    /// Of those, not acknowledged yet.
    pub not_acknowledged: Option<u64>,
    /// Of those, decided by now.
    pub decided: Option<u64>,
    /// Of those, not decided yet.
    pub undecided: Option<u64>,
    /// Time from opening to acknowledgement, over the acknowledged rounds.
    pub hours_to_acknowledgement: Durations,
    /// Time from opening to decision, over the decided rounds.
    pub hours_to_decision: Durations,
    /// Follow-ups overdue now (whatever the period).
    pub overdue_now: Option<u64>,
}

/// Closings in the period by reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedFigures {
    /// Care is in place.
    pub care_in_place: Option<u64>,
    /// Consent refused.
    pub consent_refused: Option<u64>,
    /// No concern.
    pub no_concern: Option<u64>,
    /// Moved out of the region.
    pub moved_out_of_region: Option<u64>,
    /// Handed to Veilig Thuis.
    pub handed_to_veilig_thuis: Option<u64>,
    /// Handed over.
    pub handed_over: Option<u64>,
    /// The signals left the match (closed by the index).
    pub withdrawn: Option<u64>,
    /// All closings.
    pub total: Option<u64>,
}

/// A withheld figure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withheld {
    /// JSON pointer of the figure in the answer.
    pub cell: String,
    /// `suppressed`: a count below `min_cell`, or one withheld so that such a count
    /// cannot be computed from the others (deliberately not told which);
    /// `rounds_suppressed`: a duration statistic whose number of rounds is withheld.
    pub reason: String,
}

/// The published figures (everything but the period and network header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    /// Signals.
    pub signals: SignalFigures,
    /// Matches formed.
    pub matches_formed: MatchFigures,
    /// Follow-up.
    pub follow_up: FollowUpFigures,
    /// Closings.
    pub closed: ClosedFigures,
    /// The withheld figures.
    pub suppressed: Vec<Withheld>,
}

/// The cells of the answer, in a fixed order, with their JSON pointers.
const CELLS: [&str; 20] = [
    "/signals/submitted",             // 0
    "/signals/active_at_end",         // 1
    "/matches_formed/person",         // 2
    "/matches_formed/household",      // 3
    "/matches_formed/family",         // 4
    "/matches_formed/total",          // 5
    "/follow_up/rounds_opened",       // 6
    "/follow_up/acknowledged",        // 7
    "/follow_up/not_acknowledged",    // 8
    "/follow_up/decided",             // 9
    "/follow_up/undecided",           // 10
    "/follow_up/overdue_now",         // 11
    "/closed/care_in_place",          // 12
    "/closed/consent_refused",        // 13
    "/closed/no_concern",             // 14
    "/closed/moved_out_of_region",    // 15
    "/closed/handed_to_veilig_thuis", // 16
    "/closed/handed_over",            // 17
    "/closed/withdrawn",              // 18
    "/closed/total",                  // 19
];

fn round1(h: f64) -> f64 {
    (h * 10.0).round() / 10.0
}

/// Applies the suppression to `c` (see the module documentation).
pub fn publish(c: &Counts, min_cell: u64) -> Published {
    let acknowledged = c.hours_to_acknowledgement.len() as u64;
    let decided = c.hours_to_decision.len() as u64;
    let values: Vec<u64> = vec![
        c.submitted,
        c.active_at_end,
        c.formed[0],
        c.formed[1],
        c.formed[2],
        c.formed.iter().sum(),
        c.rounds_opened,
        acknowledged,
        c.rounds_opened.saturating_sub(acknowledged),
        decided,
        c.rounds_opened.saturating_sub(decided),
        c.overdue_now,
        c.closed[0],
        c.closed[1],
        c.closed[2],
        c.closed[3],
        c.closed[4],
        c.closed[5],
        c.closed[6],
        c.closed.iter().sum(),
    ];
    let sums: Vec<Vec<(usize, i64)>> = vec![
        vec![(2, 1), (3, 1), (4, 1), (5, -1)],
        vec![(7, 1), (8, 1), (6, -1)],
        vec![(9, 1), (10, 1), (6, -1)],
        (12..=18).map(|i| (i, 1)).chain([(19, -1)]).collect(),
    ];
    let hidden = suppress(&values, &sums, min_cell);
    let cell = |i: usize| (!hidden[i]).then_some(values[i]);
    let mut suppressed: Vec<Withheld> = (0..values.len())
        .filter(|i| hidden[*i])
        .map(|i| Withheld {
            cell: CELLS[i].to_string(),
            reason: "suppressed".to_string(),
        })
        .collect();
    let mut durations = |n: usize, v: &[f64], name: &str| {
        if hidden[n] {
            for stat in ["median", "p90"] {
                suppressed.push(Withheld {
                    cell: format!("/follow_up/{name}/{stat}"),
                    reason: "rounds_suppressed".to_string(),
                });
            }
            Durations {
                median: None,
                p90: None,
            }
        } else {
            Durations {
                median: percentile(v, 0.5).map(round1),
                p90: percentile(v, 0.9).map(round1),
            }
        }
    };
    let to_ack = durations(7, &c.hours_to_acknowledgement, "hours_to_acknowledgement");
    let to_decision = durations(9, &c.hours_to_decision, "hours_to_decision");
    Published {
        signals: SignalFigures {
            submitted: cell(0),
            active_at_end: cell(1),
        },
        matches_formed: MatchFigures {
            person: cell(2),
            household: cell(3),
            family: cell(4),
            total: cell(5),
        },
        follow_up: FollowUpFigures {
            rounds_opened: cell(6),
            acknowledged: cell(7),
            not_acknowledged: cell(8),
            decided: cell(9),
            undecided: cell(10),
            hours_to_acknowledgement: to_ack,
            hours_to_decision: to_decision,
            overdue_now: cell(11),
        },
        closed: ClosedFigures {
            care_in_place: cell(12),
            consent_refused: cell(13),
            no_concern: cell(14),
            moved_out_of_region: cell(15),
            handed_to_veilig_thuis: cell(16),
            handed_over: cell(17),
            withdrawn: cell(18),
            total: cell(19),
        },
        suppressed,
    }
}

/// Reads the facts of `network` from the store: its match list, each match and the
/// network's follow-up of it. A merged match whose follow-up was carried over to the
/// match it was folded into is left out (the carried copy counts), so no round counts
/// twice.
pub fn match_facts(kv: &dyn KvRead, network: &str) -> Result<Vec<MatchFacts>, EngineError> {
    let mut out = Vec::new();
    for (k, _) in kv.scan_prefix(&engine::network_matches_prefix(network))? {
        let id_bytes: [u8; 8] = k
            .get(k.len().saturating_sub(8)..)
            .and_then(|b| b.try_into().ok())
            .ok_or(EngineError::Corrupt('n'))?;
        let mid = u64::from_be_bytes(id_bytes);
        let Some(m) = engine::match_by_id(kv, mid)? else {
            continue;
        };
        let f = followup::load(kv, mid, network)?;
        let merged = m.status == MatchStatus::Merged;
        if let (true, Some(into), Some(f)) = (merged, m.merged_into, &f) {
            let carried = followup::load(kv, into, network)?
                .is_some_and(|g| g.history.first() == f.history.first());
            if carried {
                continue;
            }
        }
        out.push(MatchFacts {
            kind: m.kind,
            created_at: m.created_at,
            merged,
            follow_up: f,
        });
    }
    Ok(out)
}

/// The published figures of `network` over local days `from..=to` (days since the
/// epoch; `to` must be a completed day for "active at the end" to be final) at `now`.
pub fn collect(
    kv: &dyn KvRead,
    network: &str,
    from: i64,
    to: i64,
    now: i64,
    min_cell: u64,
) -> Result<Published, EngineError> {
    let signals = super::counters::signal_counts(kv, network, from, to)?;
    let facts = match_facts(kv, network)?;
    let start = crate::calendar::local_midnight(from);
    let end = crate::calendar::local_midnight(to + 1);
    Ok(publish(
        &compute(start, end, now, signals, &facts),
        min_cell,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(action: &str, stage: Stage, by: &str, at: i64) -> Step {
        Step {
            action: action.into(),
            stage,
            by: by.into(),
            on_behalf_of: None,
            at,
            organisation: None,
            date: None,
            reason: None,
            deadline: None,
        }
    }

    fn close(reason: CloseReason, by: &str, at: i64) -> Step {
        Step {
            reason: Some(reason),
            ..step("close", Stage::Closed, by, at)
        }
    }

    fn follow_up(history: Vec<Step>) -> FollowUp {
        let last = history.last().map_or(Stage::New, |s| s.stage);
        FollowUp {
            stage: last,
            unacknowledged: false,
            lead: None,
            meeting_on: None,
            closed_reason: None,
            opened_at: history.first().map_or(0, |s| s.at),
            acknowledged_at: None,
            decided_at: None,
            acknowledge_due: None,
            decision_due: None,
            overdue: Vec::new(),
            history,
        }
    }

    fn facts(kind: MatchKind, f: FollowUp) -> MatchFacts {
        MatchFacts {
            kind,
            created_at: f.opened_at,
            merged: false,
            follow_up: Some(f),
        }
    }

    const H: i64 = 3600;

    #[test]
    fn rounds_times_closings_and_overdue_are_counted_per_definition() {
        let t0 = 1_000 * H;
        let ms = vec![
            // Acknowledged after 2 h, consent given after 10 h, closed (care in place).
            facts(
                MatchKind::Person,
                follow_up(vec![
                    step("formed", Stage::New, "index", t0),
                    step("escalated", Stage::New, "index", t0 + H),
                    step("acknowledge", Stage::Acknowledged, "coord", t0 + 2 * H),
                    step("consent_given", Stage::ConsentGiven, "coord", t0 + 10 * H),
                    close(CloseReason::CareInPlace, "coord", t0 + 20 * H),
                    // Reopened, picked up after 4 h, still undecided.
                    step("reopened", Stage::New, "index", t0 + 30 * H),
                    step("acknowledge", Stage::Acknowledged, "coord", t0 + 34 * H),
                ]),
            ),
            // Formed before the period: its round does not count, its closing does.
            facts(
                MatchKind::Household,
                follow_up(vec![
                    step("formed", Stage::New, "index", t0 - 100 * H),
                    close(CloseReason::NoConcern, "coord", t0 + 5 * H),
                ]),
            ),
            // Closed by the index (signals left): a closing, but no decision.
            facts(
                MatchKind::Family,
                follow_up(vec![
                    step("formed", Stage::New, "index", t0 + H),
                    close(CloseReason::Withdrawn, "index", t0 + 3 * H),
                ]),
            ),
            // Overdue: acknowledge deadline passed, never acknowledged.
            facts(
                MatchKind::Person,
                FollowUp {
                    acknowledge_due: Some(t0 + 50 * H),
                    ..follow_up(vec![step("formed", Stage::New, "index", t0 + 2 * H)])
                },
            ),
            // Escalated for the acknowledgement, then acknowledged: no longer overdue.
            facts(
                MatchKind::Person,
                FollowUp {
                    overdue: vec![Deadline::Acknowledge],
                    decision_due: Some(t0 + 500 * H),
                    ..follow_up(vec![
                        step("formed", Stage::New, "index", t0 + 3 * H),
                        step("escalated", Stage::New, "index", t0 + 40 * H),
                        step("acknowledge", Stage::Acknowledged, "coord", t0 + 45 * H),
                    ])
                },
            ),
        ];
        let c = compute(t0, t0 + 48 * H, t0 + 60 * H, (7, 3), &ms);
        assert_eq!(c.submitted, 7);
        assert_eq!(c.active_at_end, 3);
        assert_eq!(c.formed, [3, 0, 1]);
        assert_eq!(c.rounds_opened, 5);
        assert_eq!(c.hours_to_acknowledgement, vec![2.0, 4.0, 42.0]);
        assert_eq!(c.hours_to_decision, vec![10.0]);
        assert_eq!(c.closed, [1, 0, 1, 0, 0, 0, 1]);
        assert_eq!(c.overdue_now, 1);
        // Merged matches are never overdue.
        let mut merged = ms[3].clone();
        merged.merged = true;
        assert_eq!(
            compute(t0, t0 + 48 * H, t0 + 60 * H, (0, 0), &[merged]).overdue_now,
            0
        );
    }

    /// Writes a match, its place in the network's list and the network's follow-up,
    /// the way the engine and the workflow store them.
    fn put_match(
        kv: &mut crate::index::testkv::Mem,
        id: u64,
        kind: MatchKind,
        merged_into: Option<u64>,
        f: &FollowUp,
    ) {
        use crate::index::engine::Kv;
        let m = crate::index::model::MatchRecord {
            id,
            handle: format!("m_{id}"),
            kind,
            status: if merged_into.is_some() {
                MatchStatus::Merged
            } else {
                MatchStatus::Open
            },
            scope: id,
            created_at: f.opened_at,
            updated_at: f.opened_at,
            orgs: vec!["a".into(), "b".into()],
            networks: vec!["n".into()],
            merged_into,
        };
        kv.put(engine::match_key(id), serde_json::to_vec(&m).unwrap());
        let mut k = engine::network_matches_prefix("n");
        k.extend_from_slice(&id.to_be_bytes());
        kv.put(k, Vec::new());
        followup::store(kv, id, "n", None, f).unwrap();
    }

    #[test]
    fn figures_read_from_the_store_count_a_carried_follow_up_once() {
        let mut kv = crate::index::testkv::Mem::default();
        let day = 20_748; // 2026-10-22
        let t0 = crate::calendar::local_midnight(day) + 9 * H;
        let formed = |at| step("formed", Stage::New, "index", at);
        // Match 1 was folded into match 2, which had no follow-up of its own: 2 carries
        // a copy (same first step) that went on. Match 1's frozen copy must not count.
        let carried = follow_up(vec![formed(t0)]);
        put_match(&mut kv, 1, MatchKind::Person, Some(2), &carried);
        let mut went_on = carried.clone();
        went_on.history.push(step(
            "acknowledge",
            Stage::Acknowledged,
            "coord",
            t0 + 2 * H,
        ));
        put_match(&mut kv, 2, MatchKind::Person, None, &went_on);
        // Match 3 was folded into match 4, which had its own follow-up: both count.
        put_match(
            &mut kv,
            3,
            MatchKind::Household,
            Some(4),
            &follow_up(vec![formed(t0 + H)]),
        );
        put_match(
            &mut kv,
            4,
            MatchKind::Family,
            None,
            &follow_up(vec![formed(t0 + 3 * H)]),
        );
        // Another network's match is not read.
        followup::store(&mut kv, 9, "other", None, &follow_up(vec![formed(t0)])).unwrap();

        let facts = match_facts(&kv, "n").unwrap();
        assert_eq!(facts.len(), 3);
        let c = compute(
            crate::calendar::local_midnight(day),
            crate::calendar::local_midnight(day + 1),
            t0 + 10 * H,
            (0, 0),
            &facts,
        );
        assert_eq!(c.formed, [1, 1, 1]);
        assert_eq!(c.rounds_opened, 3);
        assert_eq!(c.hours_to_acknowledgement, vec![2.0]);
        // Through `collect`, with a cell minimum of 1 (only zeros withheld).
        let p = collect(&kv, "n", day, day, t0 + 10 * H, 1).unwrap();
        assert_eq!(p.matches_formed.total, Some(3));
        assert_eq!(p.follow_up.acknowledged, Some(1));
        assert_eq!(p.follow_up.hours_to_acknowledgement.median, Some(2.0));
        // The day before holds nothing.
        let p = collect(&kv, "n", day - 1, day - 1, t0 + 10 * H, 1).unwrap();
        assert_eq!(p.matches_formed.total, None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(5.0));
        assert_eq!(percentile(&v, 0.9), Some(9.0));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(percentile(&[7.0], 0.9), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    /// Whether any hidden cell can be computed from the published ones (brute force
    /// over the sums: the test's own independent check of [`determined`]).
    fn recoverable(values: &[u64], hidden: &[bool], sums: &[Vec<(usize, i64)>]) -> bool {
        // Substitution until nothing changes: a sum with one unknown gives it away.
        let mut known: Vec<bool> = hidden.iter().map(|h| !h).collect();
        loop {
            let mut progress = false;
            for s in sums {
                let unknown: Vec<usize> =
                    s.iter().map(|(c, _)| *c).filter(|c| !known[*c]).collect();
                if unknown.len() == 1 {
                    known[unknown[0]] = true;
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
        (0..values.len()).any(|i| known[i] && hidden[i] && values[i] > 0)
    }

    #[test]
    fn one_small_cell_of_a_breakdown_takes_a_second_cell_with_it() {
        // person 20, household 3, family 7, total 30: household alone would follow from
        // the total; the smallest other cell (family) is withheld too.
        let sums = vec![vec![(0, 1), (1, 1), (2, 1), (3, -1)]];
        let values = [20, 3, 7, 30];
        let h = suppress(&values, &sums, 5);
        assert_eq!(h, vec![false, true, true, false]);
        assert!(!recoverable(&values, &h, &sums));
        // Two small cells protect each other; nothing else is withheld.
        let h = suppress(&[20, 3, 2, 25], &sums, 5);
        assert_eq!(h, vec![false, true, true, false]);
        // A small total with large parts is impossible; a small total with small parts
        // withholds all of them.
        assert_eq!(suppress(&[1, 1, 2, 4], &sums, 5), vec![true; 4]);
        // Nothing small: nothing withheld.
        assert_eq!(suppress(&[5, 6, 7, 18], &sums, 5), vec![false; 4]);
    }

    #[test]
    fn linked_breakdowns_are_protected_together() {
        // rounds = ack + not_ack = decided + undecided; one small cell in the first
        // breakdown. Withholding the shared total would not do: the second breakdown
        // gives it back. The suppression must end with nothing recoverable.
        let sums = vec![vec![(1, 1), (2, 1), (0, -1)], vec![(3, 1), (4, 1), (0, -1)]];
        for values in [
            [30u64, 27, 3, 10, 20],
            [30, 2, 28, 29, 1],
            [9, 4, 5, 4, 5],
            [6, 6, 0, 6, 0],
        ] {
            let h = suppress(&values, &sums, 5);
            for (i, v) in values.iter().enumerate() {
                if *v < 5 {
                    assert!(h[i], "{values:?}: small cell {i} published");
                }
            }
            assert!(!recoverable(&values, &h, &sums), "{values:?}: {h:?}");
        }
        // The unit check agrees with substitution on a case where the total is hidden:
        // hiding 0 and 2 leaves 0 = 3 + 4 published, so 2 = 0 − 1 is recoverable.
        assert!(determined(2, &[true, false, true, false, false], &sums));
        assert!(!determined(2, &[true, true, true, true, false], &sums));
    }

    #[test]
    fn publish_withholds_small_cells_and_durations_over_few_rounds() {
        let c = Counts {
            submitted: 40,
            active_at_end: 4,
            formed: [12, 3, 0],
            rounds_opened: 15,
            hours_to_acknowledgement: vec![
                1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.25,
            ],
            hours_to_decision: vec![5.0, 6.0],
            overdue_now: 2,
            closed: [6, 0, 0, 0, 0, 0, 0],
        };
        let p = publish(&c, 5);
        assert_eq!(p.signals.submitted, Some(40));
        assert_eq!(p.signals.active_at_end, None);
        // household 3 and family 0 protect each other; person and total stay.
        assert_eq!(p.matches_formed.person, Some(12));
        assert_eq!(p.matches_formed.household, None);
        assert_eq!(p.matches_formed.family, None);
        assert_eq!(p.matches_formed.total, Some(15));
        // acknowledged 12, not acknowledged 3 (small): 3 = 15 − 12, so acknowledged or
        // the total goes too; the smallest is acknowledged (12 < 15).
        assert_eq!(p.follow_up.not_acknowledged, None);
        assert_eq!(p.follow_up.rounds_opened, Some(15));
        assert_eq!(p.follow_up.acknowledged, None);
        assert_eq!(p.follow_up.hours_to_acknowledgement.median, None);
        // decided 2 (small), undecided 13: 13 goes too.
        assert_eq!(p.follow_up.decided, None);
        assert_eq!(p.follow_up.undecided, None);
        assert_eq!(p.follow_up.hours_to_decision.p90, None);
        assert_eq!(p.follow_up.overdue_now, None);
        // Closings: the zeros are withheld; that they add up to 0 = total − care in
        // place gives away only zeros, so care in place and the total stay.
        assert_eq!(p.closed.care_in_place, Some(6));
        assert_eq!(p.closed.total, Some(6));
        assert_eq!(p.closed.no_concern, None);
        let cells: Vec<&str> = p.suppressed.iter().map(|w| w.cell.as_str()).collect();
        assert!(cells.contains(&"/matches_formed/family"));
        assert!(cells.contains(&"/follow_up/hours_to_acknowledgement/median"));
        assert!(p.suppressed.iter().any(
            |w| w.cell == "/follow_up/hours_to_decision/p90" && w.reason == "rounds_suppressed"
        ));

        // Every round acknowledged: the durations are published (nearest rank, 0.1 h);
        // the withheld zero of "not acknowledged" takes nothing with it.
        let mut c2 = c.clone();
        c2.rounds_opened = 12;
        let p2 = publish(&c2, 5);
        assert_eq!(p2.follow_up.rounds_opened, Some(12));
        assert_eq!(p2.follow_up.acknowledged, Some(12));
        assert_eq!(p2.follow_up.not_acknowledged, None);
        assert_eq!(p2.follow_up.hours_to_acknowledgement.median, Some(6.0));
        assert_eq!(p2.follow_up.hours_to_acknowledgement.p90, Some(11.0));
        // A cell minimum of 1 withholds only zeros.
        let p3 = publish(&c, 1);
        assert_eq!(p3.matches_formed.household, Some(3));
        assert_eq!(p3.matches_formed.family, None);
        assert_eq!(p3.follow_up.hours_to_decision.median, Some(5.0));
    }
}
