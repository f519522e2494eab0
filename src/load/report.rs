//! What a load run measured: per phase and in total, as JSON and as text.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Latency percentiles, milliseconds (nearest rank).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of samples in microseconds.
    pub fn of_micros(mut samples: Vec<u64>) -> Percentiles {
        samples.sort_unstable();
        let n = samples.len();
        if n == 0 {
            return Percentiles::default();
        }
        let at = |q: f64| {
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            samples[rank - 1] as f64 / 1000.0
        };
        Percentiles {
            count: n,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: samples[n - 1] as f64 / 1000.0,
        }
    }
}

/// One second of a phase.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Second {
    /// Seconds since the start of the phase.
    pub second: u32,
    /// Requests sent (or due) in it.
    pub requests: usize,
    /// Their median latency, ms.
    pub p50_ms: f64,
    /// Their 99th percentile, ms.
    pub p99_ms: f64,
    /// Their largest latency, ms.
    pub max_ms: f64,
}

/// Groups latencies (µs) by the second they were sent in.
pub fn timeline(seconds: &[u32], micros: &[u64]) -> Vec<Second> {
    let mut by: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for (s, l) in seconds.iter().zip(micros) {
        by.entry(*s).or_default().push(*l);
    }
    by.into_iter()
        .map(|(second, v)| {
            let p = Percentiles::of_micros(v);
            Second {
                second,
                requests: p.count,
                p50_ms: p.p50,
                p99_ms: p.p99,
                max_ms: p.max,
            }
        })
        .collect()
}

/// The server process during a phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerFigures {
    /// CPU time over wall time, percent of one core (200 = two cores busy).
    pub cpu_percent: Option<f64>,
    /// Resident memory at the end of the phase, bytes.
    pub rss_bytes: Option<u64>,
    /// Highest resident memory sampled during the phase (every 100 ms), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Highest resident memory since the process started (`VmHWM`), bytes.
    pub hwm_bytes: Option<u64>,
}

/// The store after a phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreFigures {
    /// Signals ever stored (`samenloop_store_signals`).
    pub signals: u64,
    /// Matches ever formed (`samenloop_store_matches`).
    pub matches: u64,
    /// Disk use of the database (allocated blocks of the data directory, or the
    /// server's own figure when the directory is not known), bytes.
    pub disk_bytes: u64,
    /// `disk_bytes / signals`.
    pub disk_bytes_per_signal: Option<f64>,
    /// Resident memory of the server per stored signal, bytes.
    pub rss_bytes_per_signal: Option<f64>,
}

/// One phase: preload, or one step of the measurement.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    /// `preload` or `measure` (with the step's target rate).
    pub name: String,
    /// `batch` or `single`.
    pub mode: String,
    /// Signals per request.
    pub batch_size: usize,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Target requests per second (open loop), or none (closed loop: as fast as it goes).
    pub target_rate: Option<f64>,
    /// Requests sent.
    pub requests: u64,
    /// Signals sent.
    pub submitted: u64,
    /// Signals stored (201 new + 200 already stored).
    pub accepted: u64,
    /// Signals stored as new (201).
    pub new: u64,
    /// Signals not stored, by HTTP status (of the request or the batch item) or
    /// `timeout` / `connect` / `transport`.
    pub errors: BTreeMap<String, u64>,
    /// Signals meant to meet an earlier signal of another organisation.
    pub matching_signals: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Accepted signals per second.
    pub signals_per_sec: f64,
    /// Answered requests per second.
    pub requests_per_sec: f64,
    /// Request latency, ms: in open loop from the scheduled send time (so queueing in
    /// the client counts: no coordinated omission), in closed loop from the send.
    pub latency_ms: Percentiles,
    /// Requests and latency per second of the phase (by send time), to tell stalls
    /// from steady queueing.
    pub timeline: Vec<Second>,
    /// The server process.
    pub server: ServerFigures,
    /// CPU of the load tool itself, percent of one core (it shares the machine).
    pub client_cpu_percent: Option<f64>,
    /// Matches formed during the phase.
    pub matches_formed: u64,
    /// The store at the end of the phase.
    pub store: StoreFigures,
}

impl Phase {
    /// Signals refused, all causes.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Time from a matching submission's answer until the coordinator's match list shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AlertFigures {
    /// Probes run (each a pair of signals of two organisations on one new person).
    pub probes: usize,
    /// Probes whose match the coordinator saw within 10 s.
    pub seen: usize,
    /// Percentiles over the seen probes, ms.
    pub latency_ms: Percentiles,
    /// With `--webhook`: time from the same answer until the alert's webhook arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookFigures>,
}

/// Time from a matching submission's answer until its alert's webhook reached the load
/// tool's receiver (signature verified).
#[derive(Debug, Clone, Default, Serialize)]
pub struct WebhookFigures {
    /// Probes whose webhook arrived within 10 s.
    pub arrived: usize,
    /// Percentiles over them, ms (0: the webhook arrived before the load tool had the
    /// answer; the server sends both after the same commit).
    pub latency_ms: Percentiles,
    /// Probes whose webhook arrived before the answer did.
    pub before_answer: usize,
    /// Webhooks received in the whole run (all alerts, probes or not).
    pub received: u64,
    /// Of them, repeats of an event id already received (at-least-once delivery).
    pub repeats: u64,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Base URL of the server.
    pub server_url: String,
    /// Whether the load tool started the server.
    pub spawned: bool,
    /// `1.1` or `2`.
    pub http: String,
    /// The workload seed.
    pub seed: u64,
    /// Distinguishes runs on one database (the store's signal count at the start).
    pub run: u64,
    /// Submitting organisations.
    pub organisations: usize,
    /// Networks.
    pub networks: usize,
    /// Share of signals meant to match.
    pub match_share: f64,
    /// The phases in order.
    pub phases: Vec<Phase>,
    /// Time to alert.
    pub time_to_alert: AlertFigures,
    /// Signals sent in all phases and probes.
    pub submitted: u64,
    /// Signals accepted in all phases and probes.
    pub accepted: u64,
    /// New signals in all phases and probes.
    pub new: u64,
    /// Signals refused in all phases and probes.
    pub errors: u64,
    /// Signals in the store before the run.
    pub stored_before: u64,
    /// Signals in the store after the run.
    pub stored_after: u64,
    /// Matches formed during the run.
    pub matches_formed: u64,
    /// The store at the end.
    pub store: StoreFigures,
    /// Seconds the graceful stop of a spawned server took.
    pub server_stop_seconds: Option<f64>,
    /// The line of the server's stop watchdog, when it ended a stop that hung (every
    /// acknowledged write was on disk by then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_stop_hung: Option<String>,
}

fn mib(b: u64) -> String {
    let m = b as f64 / (1024.0 * 1024.0);
    if m < 100.0 {
        format!("{m:.1} MiB")
    } else {
        format!("{} MiB", thousands(m.round() as u64))
    }
}

/// `12345678` → `12,345,678`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn opt_pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0} %"))
        .unwrap_or_else(|| "n/a".into())
}

fn store_line(s: &StoreFigures) -> String {
    format!(
        "store: {} signals, {} matches; disk {} ({} bytes/signal)",
        thousands(s.signals),
        thousands(s.matches),
        mib(s.disk_bytes),
        s.disk_bytes_per_signal
            .map(|b| format!("{b:.0}"))
            .unwrap_or_else(|| "n/a".into()),
    )
}

impl Report {
    /// The human-readable report.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "samenloop load: {} ({}), HTTP/{}, seed {}, {} organisations in {} networks, match share {}",
            self.server_url,
            if self.spawned {
                "started by the load tool"
            } else {
                "external"
            },
            self.http,
            self.seed,
            self.organisations,
            self.networks,
            self.match_share
        );
        for p in &self.phases {
            let how = match p.target_rate {
                Some(r) => format!("open loop at {r} req/s"),
                None => "closed loop".to_string(),
            };
            let _ = writeln!(
                o,
                "\n{}: {} mode, {} signal(s) per request, {} in flight, {}",
                p.name, p.mode, p.batch_size, p.concurrency, how
            );
            let errors = if p.errors.is_empty() {
                "0".to_string()
            } else {
                p.errors
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", thousands(*v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                o,
                "  {} signals in {} requests, {:.1} s: {} signals/s, {:.0} requests/s; accepted {} (new {}), errors {}",
                thousands(p.submitted),
                thousands(p.requests),
                p.seconds,
                thousands(p.signals_per_sec.round() as u64),
                p.requests_per_sec,
                thousands(p.accepted),
                thousands(p.new),
                errors
            );
            let l = &p.latency_ms;
            let _ = writeln!(
                o,
                "  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
                l.p50, l.p90, l.p99, l.p999, l.max
            );
            if p.timeline.len() > 2 {
                if let Some(w) = p
                    .timeline
                    .iter()
                    .max_by(|a, b| a.max_ms.total_cmp(&b.max_ms))
                {
                    // 20 ms: the single-signal p99 floor of the index issue.
                    let calm = if p.mode == "single" {
                        let n = p.timeline.iter().filter(|s| s.p99_ms <= 20.0).count();
                        format!("p99 <= 20 ms in {n} of {} s; ", p.timeline.len())
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        o,
                        "  per second: {calm}worst second {} (p99 {:.2} ms, max {:.2} ms)",
                        w.second, w.p99_ms, w.max_ms
                    );
                }
            }
            let _ = writeln!(
                o,
                "  server: CPU {} of one core, RSS {} (peak {}); load tool CPU {}",
                opt_pct(p.server.cpu_percent),
                p.server.rss_bytes.map(mib).unwrap_or_else(|| "n/a".into()),
                p.server
                    .peak_rss_bytes
                    .map(mib)
                    .unwrap_or_else(|| "n/a".into()),
                opt_pct(p.client_cpu_percent)
            );
            let _ = writeln!(
                o,
                "  {}; {} matches formed",
                store_line(&p.store),
                thousands(p.matches_formed)
            );
        }
        let a = &self.time_to_alert;
        let _ = writeln!(
            o,
            "\ntime to alert (answer to the matching signal -> match in the coordinator's list): \
             {} probes, {} seen; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            a.probes, a.seen, a.latency_ms.p50, a.latency_ms.p99, a.latency_ms.max
        );
        if let Some(w) = &a.webhook {
            let _ = writeln!(
                o,
                "time to webhook (answer to the matching signal -> signed webhook at the receiver): \
                 {} probes, {} arrived ({} before the answer); p50 {:.2} ms, p99 {:.2} ms, \
                 p99.9 {:.2} ms, max {:.2} ms; {} webhooks received in the run, {} repeats",
                a.probes,
                w.arrived,
                w.before_answer,
                w.latency_ms.p50,
                w.latency_ms.p99,
                w.latency_ms.p999,
                w.latency_ms.max,
                thousands(w.received),
                thousands(w.repeats)
            );
        }
        let _ = writeln!(
            o,
            "total: submitted {}, accepted {} (new {}), errors {}; store {} -> {} signals, {} matches formed",
            thousands(self.submitted),
            thousands(self.accepted),
            thousands(self.new),
            thousands(self.errors),
            thousands(self.stored_before),
            thousands(self.stored_after),
            thousands(self.matches_formed)
        );
        let _ = writeln!(
            o,
            "{}; server RSS per signal {} bytes",
            store_line(&self.store),
            self.store
                .rss_bytes_per_signal
                .map(|b| format!("{b:.0}"))
                .unwrap_or_else(|| "n/a".into())
        );
        if let Some(s) = self.server_stop_seconds {
            let _ = writeln!(o, "server stopped gracefully in {s:.1} s");
        }
        if let Some(line) = &self.server_stop_hung {
            let _ = writeln!(o, "server stop: {line}");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let p = Percentiles::of_micros((1..=1000).rev().map(|i| i * 1000).collect());
        assert_eq!(p.count, 1000);
        assert_eq!(p.p50, 500.0);
        assert_eq!(p.p90, 900.0);
        assert_eq!(p.p99, 990.0);
        assert_eq!(p.p999, 999.0);
        assert_eq!(p.max, 1000.0);
        let one = Percentiles::of_micros(vec![1500]);
        assert_eq!((one.p50, one.p999, one.max), (1.5, 1.5, 1.5));
        assert_eq!(Percentiles::of_micros(vec![]).count, 0);
    }

    #[test]
    fn timeline_groups_by_second() {
        let t = timeline(&[0, 0, 2, 0], &[1000, 3000, 5000, 2000]);
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].second, t[0].requests, t[0].p50_ms, t[0].max_ms),
            (0, 3, 2.0, 3.0)
        );
        assert_eq!((t[1].second, t[1].requests, t[1].p99_ms), (2, 1, 5.0));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }
}
