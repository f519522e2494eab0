//! The lifecycle of signals: an unjustified withdrawal erases everything of the signal
//! (checked by scanning every sled tree), and the match it alone made possible closes.

use crate::helpers::*;
use samenloop::pseudonym::{PersonFields, Pseudonym};
use serde_json::{Value, json};

const NOORD: &str = "zorgnetwerk-noord";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn an_unjustified_withdrawal_erases_the_signal_from_every_tree() {
    let app = spawn_app().await;
    let (w, p) = (app.partner("woonstad"), app.partner("politie"));
    // The signal to erase: a person at an address nobody else has, with a parent.
    let mut erased = with_address(
        person("ERASE-1", "Fenna", "Zwartjes", "2012-04-09"),
        "9999 ZZ",
        "77",
    );
    erased.parents = vec![PersonFields {
        given_names: "Gerrit".into(),
        family_name: "Zwartjes".into(),
        birth_date: "1980-01-30".into(),
        ..Default::default()
    }];
    let mut body = app.signal(NOORD, erased.clone());
    body["contact"] = json!({"name": "Team Uitwissen", "phone": "+31 6 1111 2222",
                             "email": "uitwissen@woonstad.example"});
    let resp = app.post("/v1/signals", &w, &body).await;
    assert_eq!(resp.status(), 201);
    let sig: Value = resp.json().await.unwrap();
    let id = sig["id"].as_str().unwrap().to_string();
    // The police signal the same child (no address, no parent): a person match.
    let other = app.signal(NOORD, person("P-ERASE", "Fenna", "Zwartjes", "2012-04-09"));
    assert_eq!(app.post("/v1/signals", &p, &other).await.status(), 201);
    let coord = app.coordinator(NOORD);
    let page: Value = app
        .get(&format!("/v1/networks/{NOORD}/matches"), &coord)
        .await
        .json()
        .await
        .unwrap();
    let handle = page["matches"][0]["handle"].as_str().unwrap().to_string();

    let resp = app
        .post(
            &format!("/v1/signals/{id}/withdraw"),
            &w,
            &json!({"reason": "unjustified"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let last: Value = resp.json().await.unwrap();
    assert_eq!(
        (&last["status"], &last["withdraw_reason"]),
        (&Value::from("withdrawn"), &Value::from("unjustified"))
    );
    // Gone for the partner: by id, by reference, and the reference is free again.
    expect_problem(
        app.get(&format!("/v1/signals/{id}"), &w).await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.get(
            &format!("/v1/signals?network={NOORD}&reference=ERASE-1"),
            &w,
        )
        .await,
        404,
        "not-found",
    )
    .await;
    // The match it alone made possible is closed; the coordinator sees no trace of it.
    let m: Value = app
        .get(&format!("/v1/matches/{handle}"), &coord)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        m["networks"][0]["follow_up"]["closed_reason"], "withdrawn",
        "{m}"
    );
    assert!(!m.to_string().contains("Uitwissen"), "{m}");

    // Every sled tree, scanned.
    let keys = app.keys(erased);
    let cfg = app.cfg.clone();
    let index_key = samenloop::http::startup::load_index_key(&cfg).unwrap();
    let mut own_p2 = Vec::new();
    for k in keys["household"].as_array().unwrap().iter().chain(
        keys["family"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f.as_array().unwrap()),
    ) {
        let p1 = Pseudonym::from_wire(k.as_str().unwrap()).unwrap();
        own_p2.push(index_key.rekey(&p1).p2);
    }
    assert!(!own_p2.is_empty());
    let dump = app.stop_and_dump().await;
    assert!(!dump.is_empty());
    for (k, v) in &dump {
        // The access log keeps the public id (ids only): its entries `L` and its
        // per-object index `O`.
        let log = matches!(k.first(), Some(b'L' | b'O' | b'U'));
        for (what, needle) in [
            ("reference", b"ERASE-1".as_slice()),
            ("contact name", b"Team Uitwissen"),
            ("contact phone", b"1111 2222"),
            ("contact e-mail", b"uitwissen@"),
        ] {
            assert!(
                !contains(k, needle) && !contains(v, needle),
                "the {what} survived in {:?}",
                String::from_utf8_lossy(k)
            );
        }
        if !log {
            assert!(
                !contains(k, id.as_bytes()) && !contains(v, id.as_bytes()),
                "the public id survived in {:?}",
                String::from_utf8_lossy(k)
            );
        }
        for p2 in &own_p2 {
            assert!(
                !contains(k, p2) && !contains(v, p2),
                "a key of the signal survived in {:?}",
                String::from_utf8_lossy(k)
            );
        }
    }
    // The access log still names it: the submission and the withdrawal.
    let named: Vec<&(Vec<u8>, Vec<u8>)> = dump
        .iter()
        .filter(|(k, v)| k.first() == Some(&b'L') && contains(v, id.as_bytes()))
        .collect();
    assert!(named.len() >= 2, "{}", named.len());
}
