//! `samenloop crash` end to end: it starts the real server, kills it with SIGKILL under
//! load, restarts it and checks what survived. A short run with a tiny volume: this
//! checks that the harness kills, counts and verifies, not how fast the machine is.

use serde_json::Value;
use std::process::{Command, Output};

fn crash(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_samenloop"))
        .arg("crash")
        .args(["--quiet", "--organisations", "5"])
        .args(args)
        .output()
        .unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

const SHORT: [&str; 10] = [
    "--min-delay",
    "150",
    "--max-delay",
    "400",
    "--concurrency",
    "3",
    "--max-batch",
    "10",
    "--recheck",
    "200",
];

#[test]
fn killed_servers_lose_nothing_acknowledged_and_half_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let out = crash(
        &[
            &[
                "--json",
                "--iterations",
                "3",
                "--seed",
                "7",
                "--keep-data",
                db,
            ][..],
            &SHORT,
        ]
        .concat(),
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: exit {:?}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(u(&r["violations"]), 0, "{r}");
    assert!(out.status.success(), "{r}");
    assert_eq!(r["failures"], serde_json::json!([]), "{r}");
    assert_eq!(u(&r["iterations"]), 3, "{r}");
    assert_eq!(u(&r["kills"]), 3, "{r}");
    // With 3 requests in flight back to back, a kill finds at least one of them open.
    assert!(u(&r["kills_with_requests_in_flight"]) >= 1, "{r}");
    assert!(u(&r["acknowledged"]) > 0, "{r}");
    // Every signal sent is accounted for, and is in the store exactly once at the end.
    assert_eq!(
        u(&r["acknowledged"]) + u(&r["unacknowledged"]),
        u(&r["signals_sent"]),
        "{r}"
    );
    assert_eq!(
        u(&r["unacknowledged_present"]) + u(&r["unacknowledged_absent"]),
        u(&r["unacknowledged"]),
        "{r}"
    );
    assert_eq!(u(&r["stored_before"]), 0, "{r}");
    assert_eq!(u(&r["stored_signals_at_end"]), u(&r["signals_sent"]), "{r}");
    assert_eq!(u(&r["final_pass_signals"]), u(&r["signals_sent"]), "{r}");
    assert!(u(&r["signal_checks"]) > u(&r["signals_sent"]), "{r}");
    // The workload's matching share formed matches, and they were checked.
    assert!(u(&r["matches_at_end"]) > 0, "{r}");
    assert!(u(&r["match_pairs_checked"]) > 0, "{r}");
    assert!(u(&r["match_groups_checked"]) > 0, "{r}");
    // The access log verified whole after every restart and holds the acknowledged signals.
    assert_eq!(u(&r["access_log_verifications"]), 3, "{r}");
    assert!(u(&r["access_log_signals_checked"]) > 0, "{r}");
    assert!(u(&r["access_log_entries_at_end"]) > 0, "{r}");
    // Every match reached the harness's webhook receiver (a missing one is a violation).
    assert!(u(&r["webhook_matches_checked"]) > 0, "{r}");
    assert!(
        u(&r["webhook_alerts_received"]) >= u(&r["webhook_matches_checked"]),
        "{r}"
    );
    // The last stop was SIGTERM: graceful, or named by the server's stop watchdog.
    let stop = r["final_stop"].as_str().unwrap();
    assert!(
        stop.starts_with("graceful, ") || stop.starts_with("the stop hung while"),
        "{r}"
    );
    let rounds = r["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 3);
    for it in rounds {
        assert!(u(&it["kill_after_ms"]) >= 150, "{it}");
        assert_eq!(u(&it["violations"]), 0, "{it}");
    }
    let in_flight: u64 = rounds
        .iter()
        .map(|it| u(&it["requests_in_flight_at_kill"]))
        .sum();
    assert!(in_flight > 0, "{r}");

    // The kept database is reused: a second run starts from what the first left.
    let again = crash(
        &[
            &[
                "--json",
                "--iterations",
                "1",
                "--seed",
                "8",
                "--keep-data",
                db,
            ][..],
            &SHORT,
        ]
        .concat(),
    );
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let r2: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(r2["stored_before"], r["stored_signals_at_end"], "{r2}");
    assert_eq!(
        u(&r2["stored_signals_at_end"]),
        u(&r2["stored_before"]) + u(&r2["signals_sent"]),
        "{r2}"
    );
    assert_eq!(u(&r2["violations"]), 0, "{r2}");
}

#[test]
fn the_text_report_names_what_was_checked_and_no_secret() {
    let out = crash(&[&["--iterations", "1"][..], &SHORT].concat());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for needle in [
        "crash run: 1 iterations",
        "kills (SIGKILL)",
        "acknowledged:",
        "unacknowledged:",
        "match checks:",
        "violations:                 0",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let all = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains("eyJ"), "{all}");
    // No key set: no wire-format pseudonym (`kind:` + 43 base64url characters).
    assert!(!all.contains("bsn:") && !all.contains("subject"), "{all}");
    let base64_run = all
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .any(|w| w.len() >= 40);
    assert!(!base64_run, "{all}");
}

#[test]
fn bad_flags_are_usage_errors() {
    for (args, needle) in [
        (vec!["--iterations", "0"], "--iterations"),
        (vec!["--match-share", "2"], "--match-share"),
        (vec!["--max-batch", "1"], "--max-batch"),
        (vec!["--concurrency", "0"], "--concurrency"),
        (
            vec!["--min-delay", "900", "--max-delay", "100"],
            "--min-delay",
        ),
        (vec!["--kill-signal", "TERM"], "--kill-signal"),
    ] {
        let out = crash(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn a_server_that_cannot_start_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // sled cannot open a database whose `conf` is a directory.
    std::fs::create_dir_all(dir.path().join("db/conf")).unwrap();
    let out = crash(&["--keep-data", dir.path().join("db").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the server did not start"), "{err}");
    assert!(out.stdout.is_empty());
}
