//! Runs the language-neutral test vectors of `spec/vectors/` against the library.

use samenloop::pseudonym::ladder::person_key_values;
use samenloop::pseudonym::phonetic::RULES;
use samenloop::pseudonym::{
    Date, DomainKey, KeyId, KeyKind, Reason, SubjectFields, address, date, derive_subject, name,
    normalise_subject, number, phonetic, same_person,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const ALL_REASONS: [Reason; 24] = [
    Reason::TooLong,
    Reason::DigitInName,
    Reason::UnsupportedCharacter,
    Reason::EmptyName,
    Reason::CommaInFamilyName,
    Reason::FullNameWithoutGivenName,
    Reason::DateFormat,
    Reason::DateTwoDigitYear,
    Reason::DateIncomplete,
    Reason::DateImpossible,
    Reason::DateOutOfRange,
    Reason::BsnNotDigits,
    Reason::BsnLength,
    Reason::BsnChecksum,
    Reason::VNumberFormat,
    Reason::PostcodeFormat,
    Reason::HouseNumberFormat,
    Reason::HouseNumberRange,
    Reason::AdditionFormat,
    Reason::AdditionLength,
    Reason::AddressIncomplete,
    Reason::InsufficientIdentifiers,
    Reason::ReferenceFormat,
    Reason::ReferenceLooksLikeBsn,
];

fn vectors() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/spec/vectors/pseudonymisation-v1.json"
    ))
    .expect("vectors file");
    serde_json::from_str(&text).expect("vectors are JSON")
}

fn key(v: &Value) -> DomainKey {
    let hex = v["key"]["secret_hex"].as_str().unwrap();
    let secret: [u8; 32] =
        std::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap());
    DomainKey::new(
        KeyId::parse(v["key"]["key_id"].as_str().unwrap()).unwrap(),
        secret,
    )
}

fn today(v: &Value) -> Date {
    Date::parse_iso(v["today"].as_str().unwrap()).unwrap()
}

fn expect<T: serde::Serialize>(case: &Value, got: Result<T, Reason>, codes: &mut BTreeSet<String>) {
    match (case.get("output"), case.get("error")) {
        (Some(want), None) => assert_eq!(&json!(got.as_ref().ok()), want, "case {case}"),
        (None, Some(code)) => {
            let got = got.err().map(|r| r.code().to_string());
            assert_eq!(got.as_deref(), code.as_str(), "case {case}");
            codes.insert(code.as_str().unwrap().to_string());
        }
        _ => panic!("vector without output or error: {case}"),
    }
}

fn cases<'a>(v: &'a Value, field: &str) -> &'a Vec<Value> {
    let c = v["fields"][field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} vectors"));
    assert!(!c.is_empty());
    c
}

#[test]
fn field_vectors() {
    let v = vectors();
    let today = today(&v);
    let mut codes = BTreeSet::new();
    for c in cases(&v, "family_name") {
        expect(
            c,
            name::family_name(c["input"].as_str().unwrap()),
            &mut codes,
        );
    }
    for c in cases(&v, "given_names") {
        let got = name::given_names(
            c["input"]["given_names"].as_str().unwrap(),
            c["input"]["initials"].as_str().unwrap(),
        )
        .map(|g| json!({ "given_name": g.first, "initials": g.initials }))
        .map_err(|(_, r)| r);
        expect(c, got, &mut codes);
    }
    for c in cases(&v, "full_name") {
        let got = name::split_full_name(c["input"].as_str().unwrap())
            .map(|(g, f)| json!({ "given_names": g, "family_name": f }));
        expect(c, got, &mut codes);
    }
    for c in cases(&v, "birth_date") {
        expect(
            c,
            date::birth_date(c["input"].as_str().unwrap(), today).map(|d| d.to_string()),
            &mut codes,
        );
    }
    for c in cases(&v, "bsn") {
        expect(c, number::bsn(c["input"].as_str().unwrap()), &mut codes);
    }
    for c in cases(&v, "v_number") {
        expect(
            c,
            number::v_number(c["input"].as_str().unwrap()),
            &mut codes,
        );
    }
    for c in cases(&v, "postcode") {
        expect(
            c,
            address::postcode(c["input"].as_str().unwrap()),
            &mut codes,
        );
    }
    for c in cases(&v, "house_number") {
        let got = address::house_number(
            c["input"]["house_number"].as_str().unwrap(),
            c["input"]["house_number_addition"].as_str().unwrap(),
        )
        .map(|(n, a)| json!({ "number": n, "addition": a }));
        expect(c, got, &mut codes);
    }
    let mut inputs = Vec::new();
    for c in cases(&v, "phonetic") {
        let input = c["input"].as_str().unwrap();
        assert_eq!(
            phonetic::encode(input),
            c["output"].as_str().unwrap(),
            "phonetic {input}"
        );
        inputs.push(input.to_string());
    }
    for (pattern, _, _) in RULES {
        assert!(
            inputs.iter().any(|i| i.contains(pattern)),
            "no phonetic vector exercises the rule '{pattern}'"
        );
    }
}

#[test]
fn derivation_vectors_cover_every_kind() {
    let v = vectors();
    let key = key(&v);
    let mut kinds = BTreeSet::new();
    for c in v["derivation"].as_array().unwrap() {
        let kind: KeyKind = c["kind"].as_str().unwrap().parse().unwrap();
        let p = key.derive(kind, c["value"].as_str().unwrap());
        let hex: String = p.bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, c["hmac_hex"].as_str().unwrap());
        assert_eq!(p.to_wire(), c["wire"].as_str().unwrap());
        kinds.insert(kind);
    }
    assert_eq!(
        kinds.len(),
        KeyKind::ALL.len(),
        "every key kind has a derivation vector"
    );
}

#[test]
fn subject_and_link_vectors() {
    let v = vectors();
    let (key, today) = (key(&v), today(&v));
    let mut codes = BTreeSet::new();
    let mut derived = Vec::new();
    for c in v["subjects"].as_array().unwrap() {
        let input: SubjectFields = serde_json::from_value(c["input"].clone()).unwrap();
        match normalise_subject(&input, today) {
            Ok(n) => {
                assert!(
                    c.get("errors").is_none(),
                    "expected errors for {}",
                    c["description"]
                );
                assert_eq!(
                    serde_json::to_value(&n).unwrap(),
                    c["normalised"],
                    "{}",
                    c["description"]
                );
                let values: Vec<Value> = person_key_values(&n.person)
                    .iter()
                    .map(|(k, val)| json!({ "kind": k.code(), "value": val, "wire": key.derive(*k, val).to_wire() }))
                    .collect();
                assert_eq!(
                    Value::Array(values),
                    c["person_keys"],
                    "{}",
                    c["description"]
                );
                let keys = derive_subject(&key, &n);
                assert_eq!(
                    serde_json::from_str::<Value>(&keys.to_json()).unwrap(),
                    c["wire"],
                    "{}",
                    c["description"]
                );
                derived.push(Some(keys));
            }
            Err(errors) => {
                let got: Vec<Value> = errors
                    .iter()
                    .map(|e| json!({ "field": e.field, "code": e.reason.code() }))
                    .collect();
                assert_eq!(Value::Array(got), c["errors"], "{}", c["description"]);
                codes.extend(errors.iter().map(|e| e.reason.code().to_string()));
                derived.push(None);
            }
        }
    }
    for l in v["links"].as_array().unwrap() {
        let idx = |s: &str| -> usize {
            s.trim_start_matches("subjects[")
                .trim_end_matches(']')
                .parse()
                .unwrap()
        };
        let a = derived[idx(l["a"].as_str().unwrap())].as_ref().unwrap();
        let b = derived[idx(l["b"].as_str().unwrap())].as_ref().unwrap();
        let got = same_person(&a.person, &a.household, &b.person, &b.household);
        assert_eq!(
            got,
            l["same_person"].as_bool().unwrap(),
            "{}",
            l["description"]
        );
    }
    // Every rejection code of the spec appears in some vector.
    let mut all_codes = codes;
    let mut field_codes = BTreeSet::new();
    for (_, list) in v["fields"].as_object().unwrap() {
        for c in list.as_array().unwrap() {
            if let Some(e) = c.get("error") {
                field_codes.insert(e.as_str().unwrap().to_string());
            }
        }
    }
    all_codes.extend(field_codes);
    for r in ALL_REASONS {
        assert!(
            all_codes.contains(r.code()),
            "no vector rejects with {}",
            r.code()
        );
    }
}
