//! Prometheus text-format metrics. Labels are routes, statuses, problem codes and
//! network ids: never pseudonyms, references, tokens or contact details.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency histogram buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Upper bounds of the webhook delivery-time buckets, seconds.
const DELIVERY_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// All metrics of the server.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(String, String), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    delivery: Mutex<BTreeMap<String, Histogram>>,
    /// Signals stored.
    pub signals_created: AtomicU64,
    /// Matches formed.
    pub matches_formed: AtomicU64,
    /// Alerts written to the outbox.
    pub alerts_written: AtomicU64,
    /// Keys too common to link.
    pub saturated_keys: AtomicU64,
    /// Merges refused by the component guard.
    pub refused_merges: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    /// Adds `n` to a counter with a label set like `route="/v1/signals",status="201"`.
    pub fn inc(&self, name: &str, labels: String, n: u64) {
        *lock(&self.counters)
            .entry((name.to_string(), labels))
            .or_default() += n;
    }

    /// Records one request.
    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.inc(
            "samenloop_http_requests_total",
            format!("route=\"{route}\",method=\"{method}\",status=\"{status}\""),
            1,
        );
        let mut l = lock(&self.latency);
        let h = l
            .entry(format!("route=\"{route}\",method=\"{method}\""))
            .or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// Records a webhook delivery (2xx) `seconds` after its alert (see `alerts::webhook`).
    pub fn delivered(&self, network: &str, seconds: f64) {
        let mut l = lock(&self.delivery);
        let h = l.entry(format!("network=\"{network}\"")).or_default();
        for (i, b) in DELIVERY_BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// Records a problem answered to a client.
    pub fn problem(&self, code: &str) {
        self.inc("samenloop_problems_total", format!("type=\"{code}\""), 1);
    }

    /// Renders all metrics in the Prometheus text format.
    pub fn render(&self, extra: &[(&str, &str, u64)]) -> String {
        let mut out = String::new();
        let mut last = String::new();
        for ((name, labels), v) in lock(&self.counters).iter() {
            if *name != last {
                out.push_str(&format!("# TYPE {name} counter\n"));
                last = name.clone();
            }
            out.push_str(&format!("{name}{{{labels}}} {v}\n"));
        }
        out.push_str("# TYPE samenloop_http_request_duration_seconds histogram\n");
        for (labels, h) in lock(&self.latency).iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                out.push_str(&format!(
                    "samenloop_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}\n",
                    h.counts[i]
                ));
            }
            out.push_str(&format!(
                "samenloop_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n",
                h.count
            ));
            out.push_str(&format!(
                "samenloop_http_request_duration_seconds_sum{{{labels}}} {}\n",
                h.sum
            ));
            out.push_str(&format!(
                "samenloop_http_request_duration_seconds_count{{{labels}}} {}\n",
                h.count
            ));
        }
        let delivery = lock(&self.delivery);
        if !delivery.is_empty() {
            let name = "samenloop_webhook_delivery_seconds";
            out.push_str(&format!(
                "# HELP {name} Time from an alert to its webhook's 2xx\n# TYPE {name} histogram\n"
            ));
            for (labels, h) in delivery.iter() {
                for (i, b) in DELIVERY_BUCKETS.iter().enumerate() {
                    out.push_str(&format!(
                        "{name}_bucket{{{labels},le=\"{b}\"}} {}\n",
                        h.counts[i]
                    ));
                }
                out.push_str(&format!(
                    "{name}_bucket{{{labels},le=\"+Inf\"}} {}\n{name}_sum{{{labels}}} {}\n{name}_count{{{labels}}} {}\n",
                    h.count, h.sum, h.count
                ));
            }
        }
        drop(delivery);
        let plain = [
            (
                "samenloop_signals_created_total",
                "Signals stored",
                self.signals_created.load(Ordering::Relaxed),
            ),
            (
                "samenloop_matches_formed_total",
                "Matches formed",
                self.matches_formed.load(Ordering::Relaxed),
            ),
            (
                "samenloop_alerts_written_total",
                "Alerts written to the outbox",
                self.alerts_written.load(Ordering::Relaxed),
            ),
            (
                "samenloop_saturated_keys_total",
                "Key lookups skipped because the key is too common to link",
                self.saturated_keys.load(Ordering::Relaxed),
            ),
            (
                "samenloop_refused_merges_total",
                "Merges refused by the component-size guard",
                self.refused_merges.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, v) in plain {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            ));
        }
        for (name, help, v) in extra {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
            ));
        }
        out
    }
}
