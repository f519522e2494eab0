//! `samenloop load` end to end: it starts the real server, drives it over HTTPS and
//! reports what it measured. Tiny workloads and no timing thresholds: this checks
//! that the tool counts correctly, not how fast the machine is.

use serde_json::Value;
use std::process::{Command, Output};

fn load(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_samenloop"))
        .arg("load")
        .args(["--json", "--quiet", "--organisations", "6"])
        .args(args)
        .output()
        .unwrap()
}

fn report(args: &[&str]) -> Value {
    let out = load(args);
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn check_latency(l: &Value) {
    let f = |k: &str| {
        l[k].as_f64()
            .unwrap_or_else(|| panic!("latency {k} missing: {l}"))
    };
    assert!(u(&l["count"]) > 0, "{l}");
    assert!(f("p50") > 0.0, "{l}");
    assert!(f("p50") <= f("p90"), "{l}");
    assert!(f("p90") <= f("p99"), "{l}");
    assert!(f("p99") <= f("p999"), "{l}");
    assert!(f("p999") <= f("max"), "{l}");
}

/// Every signal sent is accounted for: accepted as new, nothing refused, and the
/// store grew by exactly that many.
fn check_totals(r: &Value) {
    assert_eq!(u(&r["errors"]), 0, "{r}");
    assert_eq!(r["submitted"], r["accepted"], "{r}");
    assert_eq!(r["accepted"], r["new"], "{r}");
    assert_eq!(
        u(&r["stored_after"]) - u(&r["stored_before"]),
        u(&r["new"]),
        "{r}"
    );
    assert_eq!(r["store"]["signals"], r["stored_after"], "{r}");
    assert!(u(&r["store"]["disk_bytes"]) > 0, "{r}");
    assert!(r["store"]["disk_bytes_per_signal"].as_f64().unwrap() > 0.0);
    for p in r["phases"].as_array().unwrap() {
        assert_eq!(p["errors"], serde_json::json!({}), "{p}");
        assert_eq!(p["submitted"], p["accepted"], "{p}");
        assert!(u(&p["server"]["rss_bytes"]) > 0, "{p}");
        check_latency(&p["latency_ms"]);
        let timeline = p["timeline"].as_array().unwrap();
        let per_second: u64 = timeline.iter().map(|s| u(&s["requests"])).sum();
        assert_eq!(per_second, u(&p["requests"]), "{p}");
    }
}

#[test]
fn batch_run_stores_everything_and_forms_matches() {
    let r = report(&[
        "--preload",
        "200",
        "--signals",
        "200",
        "--mode",
        "batch",
        "--batch-size",
        "50",
        "--match-share",
        "0.3",
        "--probes",
        "0",
    ]);
    check_totals(&r);
    let phases = r["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2);
    assert_eq!(phases[0]["name"], "preload");
    for p in phases {
        assert_eq!(u(&p["submitted"]), 200);
        assert_eq!(u(&p["requests"]), 4);
        assert_eq!(p["mode"], "batch");
    }
    assert_eq!(u(&r["submitted"]), 400);
    assert_eq!(u(&r["stored_after"]), 400);
    // Without probes, every match comes from the workload's matching share.
    assert!(u(&phases[1]["matching_signals"]) > 0, "{r}");
    assert!(u(&r["matches_formed"]) > 0, "{r}");
    assert_eq!(r["time_to_alert"]["probes"], 0);
    assert_eq!(r["spawned"], true);
    // The stop was graceful, or ended by the server's stop watchdog, which names the stage.
    assert!(
        r["server_stop_seconds"].is_number()
            || r["server_stop_hung"]
                .as_str()
                .is_some_and(|l| l.starts_with("the stop hung while")),
        "{r}"
    );
}

#[test]
fn single_run_at_a_target_rate_with_time_to_alert() {
    let r = report(&[
        "--signals",
        "150",
        "--mode",
        "single",
        "--rate",
        "300",
        "--concurrency",
        "8",
        "--probes",
        "3",
        "--warmup",
        "0.2",
    ]);
    check_totals(&r);
    // The warm-up runs the same workload for 0.2 s at the same rate, reported apart.
    let w = &r["phases"][0];
    assert_eq!(w["name"], "warm-up");
    assert_eq!(u(&w["requests"]), 60);
    let p = &r["phases"][1];
    assert_eq!(p["name"], "measure at 300 req/s");
    assert_eq!(p["mode"], "single");
    assert_eq!(p["target_rate"], 300.0);
    assert_eq!(u(&p["requests"]), 150);
    // Each probe is two signals of two organisations on one new person: a match.
    assert_eq!(u(&r["submitted"]), 60 + 150 + 2 * 3);
    let a = &r["time_to_alert"];
    assert_eq!(u(&a["probes"]), 3);
    assert_eq!(u(&a["seen"]), 3, "{a}");
    assert!(u(&r["matches_formed"]) >= 3);
    assert!(a["latency_ms"]["p50"].as_f64().unwrap() <= a["latency_ms"]["max"].as_f64().unwrap());
}

#[test]
fn no_matching_share_forms_no_matches_and_a_kept_database_grows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let args = [
        "--keep-data",
        db,
        "--signals",
        "100",
        "--batch-size",
        "25",
        "--match-share",
        "0",
        "--probes",
        "0",
    ];
    let first = report(&args);
    check_totals(&first);
    assert_eq!(u(&first["matches_formed"]), 0, "{first}");
    assert_eq!(u(&first["stored_after"]), 100);
    // The same command again on the kept database adds other persons and references:
    // all new, nothing "already stored", still no matches.
    let second = report(&args);
    check_totals(&second);
    assert_eq!(u(&second["stored_before"]), 100);
    assert_eq!(u(&second["stored_after"]), 200);
    assert_eq!(u(&second["matches_formed"]), 0, "{second}");
    assert_ne!(first["run"], second["run"]);
}

#[test]
fn the_text_report_names_the_figures() {
    let out = Command::new(env!("CARGO_BIN_EXE_samenloop"))
        .args([
            "load",
            "--quiet",
            "--signals",
            "20",
            "--batch-size",
            "10",
            "--probes",
            "1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "measure: batch mode",
        "latency ms: p50",
        "p99.9",
        "server: CPU",
        "bytes/signal",
        "time to alert",
        "server stopped gracefully",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in\n{text}");
    }
    // No tokens (JWTs start with eyJ) and no pseudonyms (kind:base64url) in the output.
    let all = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains("eyJ"), "{all}");
    assert!(!all.contains("bsn:") && !all.contains("nd:"), "{all}");
}

#[test]
fn bad_flags_are_usage_errors() {
    for (args, needle) in [
        (vec!["--match-share", "1.5"], "--match-share"),
        (vec!["--rate", "0"], "--rate"),
        (vec!["--batch-size", "5000"], "--batch-size"),
        (vec!["--mode", "stream"], "--mode"),
        (vec!["--signals", "5", "--duration", "3"], "--duration"),
        (vec!["--server-pid", "1"], "--server"),
    ] {
        let out = load(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn a_server_that_cannot_start_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // sled cannot open a database whose `conf` is a directory.
    std::fs::create_dir_all(dir.path().join("db/conf")).unwrap();
    let out = load(&["--keep-data", dir.path().join("db").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the server did not start"), "{err}");
    assert!(err.contains("cannot open the database"), "{err}");
    assert!(!err.contains("WARNING: DEVELOPMENT"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn webhook_mode_times_every_probe_to_its_signed_webhook() {
    let r = report(&["--webhook", "--signals", "300", "--probes", "4"]);
    check_totals(&r);
    let a = &r["time_to_alert"];
    assert_eq!(u(&a["probes"]), 4, "{a}");
    let w = &a["webhook"];
    assert_eq!(
        u(&w["arrived"]),
        4,
        "every probe's webhook arrived, verified: {w}"
    );
    assert_eq!(u(&w["latency_ms"]["count"]), 4, "{w}");
    // Alerts of the other matches arrive too (the run may end before the last ones).
    assert!(u(&w["received"]) >= 4, "{r}");
    assert_eq!(u(&w["repeats"]), 0, "{w}");
    // Without --webhook there is no such section.
    let plain = report(&["--signals", "100", "--probes", "1"]);
    assert!(plain["time_to_alert"].get("webhook").is_none());
    // A running server's webhooks are its own configuration's business.
    let out = load(&["--webhook", "--server", "https://localhost:1"]);
    assert_eq!(out.status.code(), Some(2));
}
