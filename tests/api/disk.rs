//! The disk filling up: the server refuses writes with a clear status, keeps serving
//! reads, and takes writes again when space returns, losing nothing acknowledged.

use crate::helpers::*;
use fs4::FileExt;
use serde_json::Value;

const NOORD: &str = "zorgnetwerk-noord";

fn signals_stored(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("samenloop_store_signals "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_full_disk_refuses_writes_keeps_reads_and_recovers() {
    // The reserve is set 256 MiB below what the temp file system has free; a 512 MiB
    // file then takes the free space below it, as another process filling the disk would.
    let tmp = std::env::temp_dir();
    let free_mib = samenloop::store::free_bytes(&tmp).unwrap() >> 20;
    assert!(
        free_mib > 1024,
        "this test needs 1 GiB free in {}",
        tmp.display()
    );
    let app = spawn_app_with(|c| c.limits.min_free_disk_mib = free_mib - 256).await;
    let token = app.partner("woonstad");

    let first = app.signal(NOORD, person("DISK-1", "Marieke", "de Vries", "1985-03-07"));
    let resp = app.post("/v1/signals", &token, &first).await;
    assert_eq!(resp.status(), 201);
    let first_id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(app.metrics().await.contains("samenloop_store_disk_low 0\n"));

    let filler_dir = tempfile::tempdir_in(&tmp).unwrap();
    let filler = std::fs::File::create(filler_dir.path().join("filler")).unwrap();
    filler.allocate(512 << 20).unwrap();
    // The writer looks at the free space at most every 100 ms.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;

    // Writes: refused with 507 and a problem body, nothing stored.
    let second = app.signal(NOORD, person("DISK-2", "Jan", "Smit", "1970-01-01"));
    let resp = app.post("/v1/signals", &token, &second).await;
    assert_eq!(resp.headers()["retry-after"], "60");
    let mut refused = vec![request_id(&resp)];
    expect_problem(resp, 507, "insufficient-storage").await;
    let batch = serde_json::json!({ "signals": [second.clone()] });
    let resp = app.post("/v1/signals/batch", &token, &batch).await;
    refused.push(request_id(&resp));
    expect_problem(resp, 507, "insufficient-storage").await;
    let resp = app
        .post(
            &format!("/v1/signals/{first_id}/renew"),
            &token,
            &serde_json::json!({ "valid_days": 30 }),
        )
        .await;
    refused.push(request_id(&resp));
    expect_problem(resp, 507, "insufficient-storage").await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("samenloop_store_disk_low 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("samenloop_problems_total{type=\"insufficient-storage\"} 3"),
        "{metrics}"
    );
    assert_eq!(signals_stored(&metrics), 1);

    // Reads go on, and a resubmission that writes nothing still answers.
    let read = app.get(&format!("/v1/signals/{first_id}"), &token).await;
    assert_eq!(read.status(), 200);
    let mut reads = vec![request_id(&read)];
    let again = app.post("/v1/signals", &token, &first).await;
    assert_eq!(again.status(), 200);
    reads.push(request_id(&again));
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first_id);
    let lookup = app
        .get(
            &format!("/v1/signals?network={NOORD}&reference=DISK-2"),
            &token,
        )
        .await;
    assert_eq!(lookup.status(), 404, "the refused signal was not stored");
    reads.push(request_id(&lookup));

    // All of them are in the access log, which the privacy officer reads meanwhile.
    let fg = app.privacy_officer("fg-noord", &[NOORD]);
    let log = app.audit_entries(&fg, "actor=woonstad-user").await;
    let of = |id: &str| {
        log.iter()
            .find(|e| e["request_id"] == id)
            .unwrap_or_else(|| panic!("{id} is not logged: {log:#?}"))
    };
    for (id, action) in refused.iter().zip(["create", "create", "update"]) {
        let e = of(id);
        assert_eq!(
            (&e["status"], &e["outcome"], &e["action"]),
            (
                &serde_json::json!(507),
                &serde_json::json!("error"),
                &serde_json::json!(action)
            ),
            "{e}"
        );
    }
    assert_eq!(of(&reads[0])["action"], "read");
    assert_eq!(of(&reads[1])["status"], 200);
    assert_eq!(of(&reads[1])["object_id"], first_id);
    assert_eq!(of(&reads[2])["outcome"], "not_found");
    assert_eq!(
        log.len(),
        7,
        "the first submission and the six above: {log:#?}"
    );

    // Space returns: writes resume.
    drop(filler);
    drop(filler_dir);
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let resp = app.post("/v1/signals", &token, &second).await;
    assert_eq!(resp.status(), 201);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("samenloop_store_disk_low 0\n"),
        "{metrics}"
    );
    assert_eq!(signals_stored(&metrics), 2);
    // The privacy officer's read while the disk was low was logged too, and the chain
    // holds.
    let own = app.audit_entries(&fg, "actor=fg-noord").await;
    assert_eq!(own.len(), 1, "{own:#?}");
    assert_eq!(own[0]["operation"], "GET /v1/audit/entries");
    let resp = app.get("/v1/audit/verify", &fg).await;
    assert_eq!(resp.json::<Value>().await.unwrap()["ok"], true);
}

fn request_id(resp: &reqwest::Response) -> String {
    resp.headers()["x-request-id"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn below_half_the_reserve_reads_are_refused_too_since_they_cannot_be_logged() {
    // A reserve of more than twice the free space: from the start the disk is below half
    // of it, where not even an access-log entry is written.
    let tmp = std::env::temp_dir();
    let free_mib = samenloop::store::free_bytes(&tmp).unwrap() >> 20;
    let app = spawn_app_with(|c| c.limits.min_free_disk_mib = free_mib * 2 + 1024).await;
    let coord = app.coordinator(NOORD);
    let resp = app
        .get(&format!("/v1/networks/{NOORD}/matches"), &coord)
        .await;
    assert_eq!(resp.headers()["retry-after"], "60");
    let body = expect_problem(resp, 507, "insufficient-storage").await;
    assert!(body.get("detail").is_none(), "{body}");
    // A refused token cannot be logged either: refused the same way.
    expect_problem(
        app.get(&format!("/v1/networks/{NOORD}/matches"), "nope")
            .await,
        507,
        "insufficient-storage",
    )
    .await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("samenloop_store_disk_critical 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("samenloop_audit_entries 0\n"), "{metrics}");
}
