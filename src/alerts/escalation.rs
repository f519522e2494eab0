//! The escalation job (run by `serve`): deadlines that passed become overdue follow-ups and
//! `match.escalated` alerts.
//!
//! Every `alerts.escalation_check_secs` the job range-scans the deadline index (`t`,
//! ordered by due time) up to the server clock's now and hands each entry to
//! [`crate::index::followup::escalate`] on the writer: one transaction per page marks
//! the deadlines overdue, appends the `escalated` steps and writes the alerts, and drops
//! entries that no longer stand for a live deadline. Overdue follow-ups are listed per
//! network (`V`), so the overdue list and the gauge need no scan of all follow-ups.

use crate::http::State;
use crate::http::routes::signals::OsIds;
use crate::index::followup::{self, Escalation};
use std::time::Duration;

/// Deadline entries handled per transaction.
const PAGE: usize = 256;

/// Escalates every deadline due at the server clock's now; returns how many.
pub async fn run_once(state: &State) -> Result<u64, crate::store::StoreError> {
    let now = state.now();
    let mut after: Option<Vec<u8>> = None;
    let mut escalated = 0;
    loop {
        let rows = state
            .store
            .scan_prefix_after(b"t", after.as_deref(), PAGE)?;
        let full = rows.len() == PAGE;
        let due: Vec<Vec<u8>> = rows
            .into_iter()
            .map(|(k, _)| k)
            .take_while(|k| followup::parse_deadline_key(k).is_none_or(|(d, ..)| d <= now))
            .collect();
        if due.is_empty() {
            break;
        }
        let whole_page = full && due.len() == PAGE;
        after = due.last().cloned();
        let policy = state.policy();
        let done = state
            .writer
            .run(move |kv| {
                let mut out = Vec::with_capacity(due.len());
                for k in &due {
                    out.push(followup::escalate(kv, &policy, &mut OsIds, k, now)?);
                }
                Ok(out)
            })
            .await?;
        for e in done {
            if let Escalation::Escalated { network, deadline } = e {
                escalated += 1;
                state
                    .metrics
                    .alerts_written
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let which = match deadline {
                    crate::index::model::Deadline::Acknowledge => "acknowledge",
                    crate::index::model::Deadline::Decision => "decision",
                };
                state.metrics.inc(
                    "samenloop_escalations_total",
                    format!("network=\"{network}\",deadline=\"{which}\""),
                    1,
                );
            }
        }
        if !whole_page {
            break;
        }
    }
    Ok(escalated)
}

/// Starts the job on the current (actix) runtime; it ends when the server stops.
pub fn spawn(state: State) {
    actix_web::rt::spawn(async move {
        let every = Duration::from_secs(state.cfg.alerts.escalation_check_secs);
        let mut stop = state.shutdown.subscribe();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
            let outcome = match run_once(&state).await {
                Ok(_) => "ok",
                Err(_) => "failed",
            };
            state.metrics.inc(
                "samenloop_escalation_runs_total",
                format!("outcome=\"{outcome}\""),
                1,
            );
        }
    });
}

/// The gauge `samenloop_matches_overdue{network}` in the Prometheus text format.
pub fn overdue_metrics(state: &State) -> String {
    let mut out = String::from(
        "# HELP samenloop_matches_overdue Follow-ups with a passed deadline that are not closed\n\
         # TYPE samenloop_matches_overdue gauge\n",
    );
    for n in &state.cfg.networks {
        let count = crate::index::engine::KvRead::scan_prefix(
            &state.store,
            &followup::overdue_prefix(&n.id),
        )
        .map(|v| v.len())
        .unwrap_or(0);
        out.push_str(&format!(
            "samenloop_matches_overdue{{network=\"{}\"}} {count}\n",
            n.id
        ));
    }
    out
}
