//! Entry points of the fuzz targets (`fuzz/`, run with `cargo +nightly fuzz`) and of
//! their short run in CI (`tests/fuzz_short.rs`). Each takes arbitrary bytes, must never
//! panic, and checks an invariant where the code promises one; a broken invariant
//! panics, which both runners report as a failure with the input that caused it.

use crate::http::error::ApiError;
use crate::http::routes::signals::check_submission;
use crate::pseudonym::ladder::{PersonFields, SubjectFields, SubjectKeys, pseudonymise};
use crate::pseudonym::{Date, DomainKey, KeyId, address, date, name, number, phonetic};

/// The bytes as text, cut into at most `n` fields at `|`. Invalid UTF-8 becomes U+FFFD
/// so that every input reaches the normalisers (the CLI refuses such bytes earlier).
fn fields(data: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let mut v: Vec<String> = text.splitn(n, '|').map(str::to_string).collect();
    v.resize(n, String::new());
    v
}

/// The fixed "today" of the targets (2026-01-01), for reproducible runs.
fn today() -> Date {
    Date::from_days_since_epoch(20_454)
}

/// Every field normaliser of spec §3 on one input. A normalised BSN, V-nummer or
/// postcode is accepted again unchanged (normalisation is idempotent).
#[allow(clippy::panic)]
pub fn normalisers(data: &[u8]) {
    let f = fields(data, 4);
    let s = f[0].as_str();
    let _ = name::given_names(s, &f[1]);
    let _ = name::family_name(s);
    let _ = name::split_full_name(s);
    let _ = phonetic::encode(s);
    let _ = date::birth_date(s, today());
    let _ = address::house_number(s, &f[1]);
    for (what, norm) in [
        ("bsn", number::bsn as fn(&str) -> _),
        ("v_number", number::v_number),
        ("postcode", address::postcode),
    ] {
        if let Ok(n) = norm(s) {
            if norm(&n).as_deref() != Ok(n.as_str()) {
                panic!("{what}: normalising {n:?} again changes it");
            }
        }
    }
}

fn key() -> DomainKey {
    #[allow(clippy::unwrap_used)] // a constant that fits the pattern
    DomainKey::new(KeyId::parse("fuzz").unwrap(), [7; 32])
}

/// A whole record through the ladder (normalise and derive). A derived key set survives
/// the wire: encoded and decoded, it is the same.
#[allow(clippy::panic)]
pub fn subject(data: &[u8]) {
    let f = fields(data, 12);
    let person = |o: usize| PersonFields {
        bsn: f[o].clone(),
        v_number: f[o + 1].clone(),
        given_names: f[o + 2].clone(),
        initials: f[o + 3].clone(),
        prefix: String::new(),
        family_name: f[o + 4].clone(),
        full_name: f[o + 5].clone(),
        birth_date: f[o + 6].clone(),
    };
    let s = SubjectFields {
        reference: "fuzz-1".into(),
        person: person(0),
        postcode: f[7].clone(),
        house_number: f[8].clone(),
        house_number_addition: f[9].clone(),
        parents: if f[10].is_empty() {
            Vec::new()
        } else {
            vec![person(4)]
        },
    };
    if let Ok(keys) = pseudonymise(&key(), &s, today()) {
        match SubjectKeys::from_json(&keys.to_json()) {
            Ok(back) if back == keys => {}
            other => panic!("a derived key set does not survive the wire: {other:?}"),
        }
    }
}

/// The key-set decoder of spec §7. What it accepts, it writes back in a form it reads
/// as the same key set.
#[allow(clippy::panic)]
pub fn key_set(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(keys) = SubjectKeys::from_json(&text) {
        match SubjectKeys::from_json(&keys.to_json()) {
            Ok(back) if back == keys => {}
            other => panic!("an accepted key set does not survive re-encoding: {other:?}"),
        }
    }
}

/// The checks a submission body gets before it reaches the store (JSON shape, key set,
/// contact point). Problems never carry long input back: their detail stays short.
#[allow(clippy::panic)]
pub fn request_body(data: &[u8]) {
    if let Err(e) = check_submission(data) {
        let p = e.problem();
        if p.detail.as_ref().is_some_and(|d| d.chars().count() > 300) {
            panic!(
                "a problem detail of {} characters",
                p.detail.map_or(0, |d| d.len())
            );
        }
        if matches!(e, ApiError::Internal) {
            panic!("a body made the server fail internally");
        }
    }
}
