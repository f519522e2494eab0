//! Person, household and family matches; threshold; visibility; no oracle.

use crate::helpers::*;
use samenloop::pseudonym::PersonFields;
use serde_json::{Value, json};

const NOORD: &str = "zorgnetwerk-noord";
const JEUGD: &str = "jeugd-0-12";

async fn matches(app: &TestApp, network: &str) -> Vec<Value> {
    let resp = app
        .get(
            &format!("/v1/networks/{network}/matches"),
            &app.coordinator(network),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let page: Value = resp.json().await.unwrap();
    page["matches"].as_array().unwrap().clone()
}

fn shape(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn person_match_of_two_organisations_without_oracle() {
    let app = spawn_app().await;
    let first = app
        .post(
            "/v1/signals",
            &app.partner("woonstad"),
            &app.signal(
                NOORD,
                person("W-1", "Marieke", "Jansen-de Vries", "1985-03-07"),
            ),
        )
        .await;
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().await.unwrap();
    assert!(matches(&app, NOORD).await.is_empty());

    // The police record the same woman differently: initials and the other name order
    // are not enough alone, but the second initial and the phonetic family name are.
    let police = app.signal(
        NOORD,
        person("P-77", "Marieke Johanna", "de Vries", "07-03-1985"),
    );
    let second = app
        .post("/v1/signals", &app.partner("politie"), &police)
        .await;
    assert_eq!(
        second.status().as_u16(),
        201,
        "same status whether or not it matched"
    );
    let second: Value = second.json().await.unwrap();
    assert_eq!(
        shape(&first),
        shape(&second),
        "same shape whether or not it matched"
    );

    let found = matches(&app, NOORD).await;
    assert_eq!(found.len(), 1);
    let m = &found[0];
    assert_eq!(m["kind"], "person");
    assert_eq!(m["organisations"], 2);
    let orgs: Vec<&str> = m["networks"][0]["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["organisation"].as_str().unwrap())
        .collect();
    assert_eq!(orgs.len(), 2);
    assert!(orgs.contains(&"woonstad") && orgs.contains(&"politie"));
    // No pseudonyms, references or ids of signals in what the coordinator sees.
    let text = m.to_string();
    for key in police["subject"]["person"].as_array().unwrap() {
        let b64 = key.as_str().unwrap().split(':').nth(1).unwrap();
        assert!(!text.contains(b64));
    }
    assert!(!text.contains("P-77") && !text.contains("W-1") && !text.contains("sig_"));
    // The single match reads back by handle.
    let handle = m["handle"].as_str().unwrap();
    let one: Value = app
        .get(&format!("/v1/matches/{handle}"), &app.coordinator(NOORD))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(&one, m);
    // Another network's coordinator, and partners, do not see it.
    expect_problem(
        app.get(&format!("/v1/matches/{handle}"), &app.coordinator(JEUGD))
            .await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.get(&format!("/v1/matches/{handle}"), &app.partner("woonstad"))
            .await,
        403,
        "forbidden-role",
    )
    .await;
    expect_problem(
        app.get(
            &format!("/v1/networks/{NOORD}/matches"),
            &app.coordinator(JEUGD),
        )
        .await,
        404,
        "not-found",
    )
    .await;

    // A third signal of an organisation already in it changes nothing; a new one joins.
    app.post(
        "/v1/signals",
        &app.partner("politie"),
        &app.signal(NOORD, person("P-78", "Marieke", "Jansen", "1985-03-07")),
    )
    .await;
    app.post(
        "/v1/signals",
        &app.partner("ggz-noord"),
        &app.signal(
            NOORD,
            person("G-1", "Marieke", "de Vries-Jansen", "1985-03-07"),
        ),
    )
    .await;
    let found = matches(&app, NOORD).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["organisations"], 3);
}

#[tokio::test]
async fn threshold_n_is_respected() {
    let app = spawn_app_with(|cfg| cfg.networks[0].match_threshold = 3).await;
    let p = |r: &str| person(r, "Johannes", "Visser", "1962-09-09");
    app.post(
        "/v1/signals",
        &app.partner("woonstad"),
        &app.signal(NOORD, p("a")),
    )
    .await;
    app.post(
        "/v1/signals",
        &app.partner("politie"),
        &app.signal(NOORD, p("b")),
    )
    .await;
    assert!(
        matches(&app, NOORD).await.is_empty(),
        "two organisations are below N = 3"
    );
    app.post(
        "/v1/signals",
        &app.partner("ggz-noord"),
        &app.signal(NOORD, p("c")),
    )
    .await;
    assert_eq!(matches(&app, NOORD).await.len(), 1);
}

#[tokio::test]
async fn household_and_family_matches() {
    let app = spawn_app().await;
    // Two different people at one address, two organisations: a household match.
    let a = with_address(
        person("H-1", "Kees", "Bakker", "1960-01-01"),
        "1234 AB",
        "12",
    );
    let b = with_address(
        person("H-2", "Ans", "Bakker-Smit", "1962-02-02"),
        "1234AB",
        "12",
    );
    app.post(
        "/v1/signals",
        &app.partner("woonstad"),
        &app.signal(NOORD, a),
    )
    .await;
    app.post(
        "/v1/signals",
        &app.partner("ggz-noord"),
        &app.signal(NOORD, b),
    )
    .await;
    let found = matches(&app, NOORD).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["kind"], "household");

    // A child's signal carrying its mother's keys meets the mother's own signal: family.
    let mother = PersonFields {
        given_names: "Fatima".into(),
        family_name: "El Amrani".into(),
        birth_date: "1988-06-01".into(),
        ..Default::default()
    };
    let mut child = person("S-1", "Noah", "El Amrani", "2016-09-01");
    child.parents = vec![mother.clone()];
    app.post(
        "/v1/signals",
        &app.partner("school-de-linde"),
        &app.signal(JEUGD, child),
    )
    .await;
    let mut own = person("P-9", "", "", "");
    own.person = mother;
    app.post(
        "/v1/signals",
        &app.partner("politie"),
        &app.signal(JEUGD, own),
    )
    .await;
    let found = matches(&app, JEUGD).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["kind"], "family");
}

#[tokio::test]
async fn cross_network_visibility() {
    let app = spawn_app().await;
    // The police signal in the youth network, the housing corporation in the adult network.
    app.post(
        "/v1/signals",
        &app.partner("politie"),
        &app.signal(JEUGD, person("J-1", "Daan", "de Boer", "2014-05-05")),
    )
    .await;
    app.post(
        "/v1/signals",
        &app.partner("woonstad"),
        &app.signal(NOORD, person("N-1", "Daan", "Boer", "2014-05-05")),
    )
    .await;
    let noord = matches(&app, NOORD).await;
    let jeugd = matches(&app, JEUGD).await;
    assert_eq!(noord.len(), 1);
    assert_eq!(jeugd.len(), 1);
    assert_eq!(noord[0]["handle"], jeugd[0]["handle"]);
    // Each coordinator sees its own network's signals in full, the other only as a network.
    let parts = noord[0]["networks"].as_array().unwrap();
    assert_eq!(parts[0]["network"], NOORD);
    assert_eq!(parts[0]["signals"][0]["organisation"], "woonstad");
    assert_eq!(parts[1]["network"], JEUGD);
    assert!(parts[1].get("signals").is_none());
    assert_eq!(
        parts[1]["coordinator_contact"],
        "jeugdregie@gemeente.example"
    );
    assert!(!noord[0].to_string().contains("politie"));
}

#[tokio::test]
async fn withdrawn_signals_stop_matching_and_matches_survive_restart() {
    let mut app = spawn_app().await;
    let w = app
        .post(
            "/v1/signals",
            &app.partner("woonstad"),
            &app.signal(NOORD, person("X-1", "Bram", "Kok", "1990-10-10")),
        )
        .await;
    let w: Value = w.json().await.unwrap();
    app.post(
        &format!("/v1/signals/{}/withdraw", w["id"].as_str().unwrap()),
        &app.partner("woonstad"),
        &json!({"reason": "unjustified"}),
    )
    .await;
    app.post(
        "/v1/signals",
        &app.partner("politie"),
        &app.signal(NOORD, person("X-2", "Bram", "Kok", "1990-10-10")),
    )
    .await;
    assert!(
        matches(&app, NOORD).await.is_empty(),
        "a withdrawn signal does not match"
    );

    app.post(
        "/v1/signals",
        &app.partner("ggz-noord"),
        &app.signal(NOORD, person("X-3", "Bram", "Kok", "1990-10-10")),
    )
    .await;
    let before = matches(&app, NOORD).await;
    assert_eq!(before.len(), 1);
    app.restart().await;
    let after = matches(&app, NOORD).await;
    assert_eq!(after, before);
}

#[tokio::test]
async fn signals_stored_before_a_restart_match_after_it_and_withdrawn_ones_stay_out() {
    let mut app = spawn_app().await;
    let kept = app
        .post(
            "/v1/signals",
            &app.partner("woonstad"),
            &app.signal(NOORD, person("R-1", "Sanne", "de Wit", "1985-03-04")),
        )
        .await
        .status();
    assert_eq!(kept, 201);
    let gone: Value = app
        .post(
            "/v1/signals",
            &app.partner("woonstad"),
            &app.signal(NOORD, person("R-2", "Kees", "Mol", "1970-01-02")),
        )
        .await
        .json()
        .await
        .unwrap();
    let withdrawn = app
        .post(
            &format!("/v1/signals/{}/withdraw", gone["id"].as_str().unwrap()),
            &app.partner("woonstad"),
            &json!({"reason": "concern_over"}),
        )
        .await
        .status();
    assert_eq!(withdrawn, 200);

    app.restart().await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("samenloop_postings_rebuilt_from_signals 2\n"),
        "both records were read back at start"
    );

    for (reference, given, family, born) in [
        ("R-3", "Sanne", "de Wit", "1985-03-04"),
        ("R-4", "Kees", "Mol", "1970-01-02"),
    ] {
        let r = app
            .post(
                "/v1/signals",
                &app.partner("politie"),
                &app.signal(NOORD, person(reference, given, family, born)),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
    let after = matches(&app, NOORD).await;
    assert_eq!(
        after.len(),
        1,
        "the kept signal matches after the restart, the withdrawn one does not"
    );
    assert_eq!(after[0]["kind"], "person");
}

#[tokio::test]
async fn a_query_value_of_the_wrong_type_is_named_not_echoed() {
    let app = spawn_app().await;
    let c = app.coordinator("zorgnetwerk-noord");
    for (path, name) in [
        (
            "/v1/networks/zorgnetwerk-noord/matches?status=open&limit=Jansen",
            "limit",
        ),
        ("/v1/networks/zorgnetwerk-noord/events?after=-1", "after"),
        (
            "/v1/networks/zorgnetwerk-noord/deliveries?limit=1e3",
            "limit",
        ),
    ] {
        let body = expect_problem(app.get(path, &c).await, 400, "invalid-query").await;
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("{name}:")), "{path}: {detail}");
        assert!(
            !detail.contains("Jansen") && !detail.contains("1e3"),
            "{detail}"
        );
    }
}
