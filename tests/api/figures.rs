//! Network figures: exact signal counts through withdrawal, renewal and expiry, match
//! and follow-up counts, small cells withheld, access and bad periods.

use crate::helpers::*;
use samenloop::calendar::{local_day, local_midnight};
use samenloop::http::auth::Role;
use samenloop::pseudonym::Date;
use serde_json::{Value, json};

const NOORD: &str = "zorgnetwerk-noord";
const JEUGD: &str = "jeugd-0-12";
const DAY: i64 = 86_400;

fn date(day: i64) -> String {
    Date::from_days_since_epoch(day).to_string()
}

/// Sets the server's clock to local noon of today, so a test's signals all fall on one
/// local day; returns that day.
fn noon(app: &TestApp) -> i64 {
    let now = app.now();
    let day = local_day(now);
    app.advance(local_midnight(day) + 12 * 3600 - now);
    day
}

async fn figures(app: &TestApp, network: &str, token: &str, from: i64, to: i64) -> Value {
    let resp = app
        .get(
            &format!(
                "/v1/networks/{network}/figures?from={}&to={}",
                date(from),
                date(to)
            ),
            token,
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

async fn submit(app: &TestApp, org: &str, body: Value) -> String {
    let resp = app.post("/v1/signals", &app.partner(org), &body).await;
    assert_eq!(resp.status().as_u16(), 201);
    let v: Value = resp.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

fn withheld(f: &Value) -> Vec<String> {
    f["suppressed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["cell"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn figures_are_exact_and_withhold_small_cells() {
    let app = spawn_app_with(|cfg| cfg.figures.min_cell = 3).await;
    let d = noon(&app);
    let coord = app.coordinator(NOORD);

    // Noord: four people known to both the housing corporation and mental-health care.
    let people = [
        ("Anna", "Bakker", "1971-02-03"),
        ("Bram", "Visser", "1980-04-05"),
        ("Carla", "Smit", "1990-06-07"),
        ("Dirk", "Meijer", "1965-08-09"),
    ];
    for (i, (given, family, birth)) in people.iter().enumerate() {
        for org in ["woonstad", "ggz-noord"] {
            let s = app.signal(NOORD, person(&format!("{org}-{i}"), given, family, birth));
            submit(&app, org, s).await;
        }
    }
    // Three more that meet nothing: one valid for a day, one renewed from a day to
    // three, one withdrawn at once.
    let mut one_day = app.signal(NOORD, person("X", "Els", "de Boer", "1975-01-01"));
    one_day["valid_days"] = json!(1);
    submit(&app, "woonstad", one_day).await;
    let mut renewed = app.signal(NOORD, person("R", "Frank", "Mulder", "1976-01-01"));
    renewed["valid_days"] = json!(1);
    let r = submit(&app, "woonstad", renewed).await;
    let resp = app
        .post(
            &format!("/v1/signals/{r}/renew"),
            &app.partner("woonstad"),
            &json!({"valid_days": 3}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let w = submit(
        &app,
        "woonstad",
        app.signal(NOORD, person("W", "Gerda", "Bos", "1977-01-01")),
    )
    .await;
    let resp = app
        .post(
            &format!("/v1/signals/{w}/withdraw"),
            &app.partner("woonstad"),
            &json!({"reason": "concern_over"}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    // Jeugd: one child known to the police and the school.
    for org in ["politie", "school-de-linde"] {
        let s = app.signal(
            JEUGD,
            person(&format!("{org}-k"), "Hugo", "Kok", "2016-05-05"),
        );
        submit(&app, org, s).await;
    }

    // Only completed days can be asked for.
    app.advance(5 * DAY);
    let f = figures(&app, NOORD, &coord, d, d).await;
    assert_eq!(f["network"], NOORD);
    assert_eq!(f["from"], date(d));
    assert_eq!(f["min_cell"], 3);
    assert_eq!(f["signals"], json!({"submitted": 11, "active_at_end": 10}));
    assert_eq!(
        f["matches_formed"],
        json!({"person": 4, "household": null, "family": null, "total": 4})
    );
    let fu = &f["follow_up"];
    assert_eq!(fu["rounds_opened"], 4);
    assert_eq!(fu["not_acknowledged"], 4);
    assert_eq!(fu["undecided"], 4);
    assert_eq!(fu["acknowledged"], Value::Null);
    assert_eq!(
        fu["hours_to_acknowledgement"],
        json!({"median": null, "p90": null})
    );
    // Within the five working days to acknowledge: nothing overdue (0 is withheld).
    assert_eq!(fu["overdue_now"], Value::Null);
    assert_eq!(f["closed"]["total"], Value::Null);
    let cells = withheld(&f);
    for c in [
        "/matches_formed/household",
        "/matches_formed/family",
        "/follow_up/acknowledged",
        "/follow_up/hours_to_acknowledgement/median",
        "/follow_up/overdue_now",
        "/closed/total",
    ] {
        assert!(
            cells.contains(&c.to_string()),
            "{c} not listed in {cells:?}"
        );
    }
    assert!(!cells.contains(&"/signals/submitted".to_string()));
    // Counts only: no ids, handles, organisations or contact points.
    let text = f.to_string();
    for needle in ["sig_", "m_", "woonstad", "ggz", "Wijkteam", "+31"] {
        assert!(!text.contains(needle), "{needle} in {text}");
    }

    // Active at the end of a later day: the one-day signal has expired by the end of
    // d+1, the renewed one by the end of d+3; the withdrawn one never counts.
    let f = figures(&app, NOORD, &coord, d, d + 1).await;
    assert_eq!(f["signals"], json!({"submitted": 11, "active_at_end": 9}));
    let f = figures(&app, NOORD, &coord, d + 1, d + 3).await;
    assert_eq!(f["signals"], json!({"submitted": null, "active_at_end": 8}));
    assert_eq!(f["matches_formed"]["total"], Value::Null);
    let f = figures(&app, NOORD, &coord, d - 30, d - 1).await;
    assert_eq!(
        f["signals"],
        json!({"submitted": null, "active_at_end": null})
    );

    // The admin sees the same figures; the small network's are all withheld.
    let admin = app.token(Role::Admin, "beheer", &[]);
    let a = figures(&app, NOORD, &admin, d, d).await;
    assert_eq!(a["signals"], json!({"submitted": 11, "active_at_end": 10}));
    let j = figures(&app, JEUGD, &app.coordinator(JEUGD), d, d).await;
    assert_eq!(
        j["signals"],
        json!({"submitted": null, "active_at_end": null})
    );
    assert_eq!(
        j["matches_formed"],
        json!({"person": null, "household": null, "family": null, "total": null})
    );
    let cells = withheld(&j);
    assert!(cells.contains(&"/signals/submitted".to_string()));
    assert!(cells.contains(&"/matches_formed/total".to_string()));

    // Past the acknowledgement deadline (five working days), all four are overdue.
    app.advance(5 * DAY);
    let f = figures(&app, NOORD, &coord, d, d).await;
    assert_eq!(f["follow_up"]["overdue_now"], 4);
}

#[tokio::test]
async fn figures_are_for_the_networks_coordinator_and_the_admin_only() {
    let app = spawn_app().await;
    app.advance(DAY);
    let y = date(local_day(app.now()) - 1);
    let path = format!("/v1/networks/{NOORD}/figures?from={y}&to={y}");
    let ok = app.get(&path, &app.coordinator(NOORD)).await;
    assert_eq!(ok.status().as_u16(), 200);
    let ok = app.get(&path, &app.token(Role::Admin, "beheer", &[])).await;
    assert_eq!(ok.status().as_u16(), 200);
    // Another network's coordinator: as if the network did not exist.
    expect_problem(
        app.get(&path, &app.coordinator(JEUGD)).await,
        404,
        "not-found",
    )
    .await;
    let unknown = format!("/v1/networks/nergens/figures?from={y}&to={y}");
    expect_problem(
        app.get(&unknown, &app.coordinator(NOORD)).await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.get(&unknown, &app.token(Role::Admin, "beheer", &[]))
            .await,
        404,
        "not-found",
    )
    .await;
    // Partners and privacy officers may not use it at all.
    expect_problem(
        app.get(&path, &app.partner("woonstad")).await,
        403,
        "forbidden-role",
    )
    .await;
    let po = app.token(Role::PrivacyOfficer, "gemeente", &[NOORD]);
    expect_problem(app.get(&path, &po).await, 403, "forbidden-role").await;
    let anon = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    expect_problem(anon, 401, "unauthenticated").await;
}

#[tokio::test]
async fn bad_periods_are_refused_precisely() {
    let app = spawn_app().await;
    let coord = app.coordinator(NOORD);
    let today = local_day(app.now());
    let (y, t) = (date(today - 1), date(today));
    let cases = [
        (format!("from={y}"), "to"),
        (format!("to={y}"), "from"),
        (String::new(), "from"),
        (format!("from=2026-1-01&to={y}"), "from must be a date"),
        (format!("from={y}&to=2026-02-30"), "to must be a date"),
        (format!("from={y}&to=yesterday"), "to must be a date"),
        (
            format!("from={y}&to={}", date(today - 2)),
            "to must not be before from",
        ),
        (
            format!("from={}&to={y}", date(today - 367)),
            "at most 366 days",
        ),
        (format!("from={y}&to={t}"), "completed day"),
        (format!("from={y}&to={}", date(today + 40)), "completed day"),
        (format!("from={y}&to={y}&network={NOORD}"), "network"),
    ];
    for (query, detail) in cases {
        let resp = app
            .get(&format!("/v1/networks/{NOORD}/figures?{query}"), &coord)
            .await;
        let body = expect_problem(resp, 400, "invalid-query").await;
        let got = body["detail"].as_str().unwrap_or_default();
        assert!(got.contains(detail), "{query}: {got:?} lacks {detail:?}");
    }
    // The longest period is fine.
    let resp = app
        .get(
            &format!(
                "/v1/networks/{NOORD}/figures?from={}&to={y}",
                date(today - 366)
            ),
            &coord,
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
}
