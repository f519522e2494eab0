//! Writes `spec/vectors/pseudonymisation-v1.json` from the reference implementation.
//!
//! The case inputs below are chosen by hand to exercise every normalisation rule,
//! every phonetic rule, every key kind and every rejection code of spec v1; the
//! expected outputs are computed by the library and reviewed before committing.
//! `tests/vectors.rs` checks the library against the committed file, so a change
//! of behaviour shows up as a diff of the vectors.
//!
//! Run: `cargo run --example gen_vectors > spec/vectors/pseudonymisation-v1.json`

use samenloop::pseudonym::ladder::{family_key_values, person_key_values};
use samenloop::pseudonym::{
    Date, DomainKey, KeyId, KeyKind, PersonFields, SubjectFields, address, date, derive_subject,
    name, normalise_subject, number, phonetic, same_person,
};
use serde_json::{Value, json};

fn err_or<T: serde::Serialize>(r: Result<T, samenloop::pseudonym::Reason>) -> Value {
    match r {
        Ok(v) => json!({ "output": v }),
        Err(e) => json!({ "error": e.code() }),
    }
}

fn person(given: &str, family: &str, birth: &str) -> PersonFields {
    PersonFields {
        given_names: given.into(),
        family_name: family.into(),
        birth_date: birth.into(),
        ..Default::default()
    }
}

fn subject(reference: &str, p: PersonFields) -> SubjectFields {
    SubjectFields {
        reference: reference.into(),
        person: p,
        ..Default::default()
    }
}

fn main() {
    let today = Date::new(2026, 1, 1).unwrap_or_else(|| unreachable!());
    let secret: [u8; 32] = std::array::from_fn(|i| i as u8);
    let key = DomainKey::new(
        KeyId::parse("vectors").unwrap_or_else(|| unreachable!()),
        secret,
    );

    let mut f = serde_json::Map::new();
    let family: Vec<Value> = [
        "de Vries",
        "Vries, de",
        "DE VRIES",
        "Vries",
        "Jansen-de Vries",
        "de Vries-Jansen",
        "Jansen de Vries",
        "van der Berg",
        "Van den Berg-van Dijk",
        "van 't Hof",
        "d'Ancona",
        "O'Brien",
        "Van",
        "ter Horst",
        "Çelik",
        "Öztürk",
        "Yılmaz",
        "Ærøskøbing",
        "Meißner",
        "Łukasz-Wójcik",
        "El Amrani",
        "Jansen-Jansen",
        "A-B-C-D",
        "Müller\u{2013}Lüdenscheidt",
        "Jansen, M.",
        "Jansen2",
        "Ivanov\u{0418}",
        "--",
        &"a".repeat(201),
    ]
    .iter()
    .map(|i| {
        let mut v = err_or(name::family_name(i));
        v["input"] = json!(i);
        v
    })
    .collect();
    f.insert("family_name".into(), Value::Array(family));

    let given: Vec<Value> = [
        ("Marieke Johanna", ""),
        ("M.J.", ""),
        ("", "M. J."),
        ("Marieke", "M.J.A."),
        ("Jan-Willem", ""),
        ("Daniël", ""),
        ("CHLOË", ""),
        ("Ayşe Nur", ""),
        ("...", ""),
        ("Jan3", ""),
        ("Jan", "-"),
    ]
    .iter()
    .map(|(g, i)| {
        let mut v = match name::given_names(g, i) {
            Ok(n) => json!({ "output": { "given_name": n.first, "initials": n.initials } }),
            Err((_, e)) => json!({ "error": e.code() }),
        };
        v["input"] = json!({ "given_names": g, "initials": i });
        v
    })
    .collect();
    f.insert("given_names".into(), Value::Array(given));

    let full: Vec<Value> = [
        "Jansen-de Vries, Marieke",
        "M. de Vries-Jansen",
        "Marieke Johanna van der Berg",
        "Jan Peter Smit",
        "Smit",
        "Vries, de",
        "Berg, van der",
        "Berg, T.",
        "JANSEN, D.S.",
        "Hof, v. de",
        "Jansen,",
    ]
    .iter()
    .map(|i| {
        let mut v = match name::split_full_name(i) {
            Ok((g, fam)) => json!({ "output": { "given_names": g, "family_name": fam } }),
            Err(e) => json!({ "error": e.code() }),
        };
        v["input"] = json!(i);
        v
    })
    .collect();
    f.insert("full_name".into(), Value::Array(full));

    let dates: Vec<Value> = [
        "1985-03-07",
        "1985-3-7",
        "1985/03/07",
        "19850307",
        "07-03-1985",
        "7-3-1985",
        "07/03/1985",
        "07.03.1985",
        "7 maart 1985",
        "07-mrt-1985",
        "7 Mar 1985",
        "7 October 1985",
        "1985-03-07T00:00:00",
        "1985-03-07 00:00:00",
        "2000-02-29",
        "07-03-85",
        "1985-00-00",
        "00-03-1985",
        "1985-02-30",
        "1900-02-29",
        "03/27/1985",
        "1889-12-31",
        "2026-01-02",
        "gisteren",
        "1985-03-07x",
        "1985–03–07",
    ]
    .iter()
    .map(|i| {
        let mut v = err_or(date::birth_date(i, today).map(|d| d.to_string()));
        v["input"] = json!(i);
        v
    })
    .collect();
    f.insert("birth_date".into(), Value::Array(dates));

    let bsns: Vec<Value> = [
        "111222333",
        "1112.22.333",
        " 111 222 333 ",
        "12345672",
        "012345672",
        "1234560",
        "12.34.560",
        "1234561",
        "123456",
        "111222334",
        "000000000",
        "12345",
        "11122233a",
        &"1".repeat(41),
    ]
    .iter()
    .map(|i| {
        let mut v = err_or(number::bsn(i));
        v["input"] = json!(i);
        v
    })
    .collect();
    f.insert("bsn".into(), Value::Array(bsns));

    let vnrs: Vec<Value> = [
        "1234567890",
        "12345-67890",
        "123456789",
        "0000000000",
        "12345678ab",
    ]
    .iter()
    .map(|i| {
        let mut v = err_or(number::v_number(i));
        v["input"] = json!(i);
        v
    })
    .collect();
    f.insert("v_number".into(), Value::Array(vnrs));

    let pcs: Vec<Value> = [
        "1234 ab", " 1234AB ", "9999zz", "0123AB", "1234 SS", "1234SA", "1234SD", "1234A",
        "1234 ÄB",
    ]
    .iter()
    .map(|i| {
        let mut v = err_or(address::postcode(i));
        v["input"] = json!(i);
        v
    })
    .collect();
    f.insert("postcode".into(), Value::Array(pcs));

    let hns: Vec<Value> = [
        ("12", ""),
        ("12-A", ""),
        ("12 a", ""),
        ("12A", ""),
        ("12", "bis"),
        ("12 bis", ""),
        ("012", "-1"),
        ("12/2", ""),
        ("12", "hs"),
        ("A12", ""),
        ("0", ""),
        ("100000", ""),
        ("12", "abcdefg"),
        ("12", "a+b"),
    ]
    .iter()
    .map(|(n, a)| {
        let mut v = match address::house_number(n, a) {
            Ok((num, add)) => json!({ "output": { "number": num, "addition": add } }),
            Err(e) => json!({ "error": e.code() }),
        };
        v["input"] = json!({ "house_number": n, "house_number_addition": a });
        v
    })
    .collect();
    f.insert("house_number".into(), Value::Array(hns));

    let ph: Vec<Value> = [
        "bosch",
        "schouten",
        "meijer",
        "meyer",
        "meier",
        "dijkstra",
        "dykstra",
        "bouwman",
        "bauman",
        "oudshoorn",
        "paauw",
        "hoekstra",
        "peulen",
        "huisman",
        "claassen",
        "klaasen",
        "cecilia",
        "hendrickx",
        "hendriks",
        "jacques",
        "quint",
        "xander",
        "philips",
        "vries",
        "fries",
        "thijs",
        "tijs",
        "smidt",
        "smit",
        "ruud",
        "rud",
        "zwart",
        "gerrits",
        "cherrits",
        "van",
        "mohammed",
        "mohamed",
        "eeuwes",
        "sem",
        "sam",
        "anne",
        "anna",
        "jansen",
        "janssen",
        "janszen",
        "ghijsen",
        "kuiper",
        "nooij",
        "pauw",
        "lauwers",
        "qasim",
    ]
    .iter()
    .map(|i| json!({ "input": i, "output": phonetic::encode(i) }))
    .collect();
    f.insert("phonetic".into(), Value::Array(ph));

    // Derivation: the raw HMAC for one value of every kind.
    let derivation: Vec<Value> = [
        (KeyKind::Bsn, "111222333"),
        (KeyKind::VNumber, "1234567890"),
        (KeyKind::NameDate, "marieke|vries|1985-03-07"),
        (KeyKind::PhoneticDate, "marike|fris|1985-03-07"),
        (KeyKind::FamilyStart, "marieke|vri|1985-03-07"),
        (KeyKind::FamilyEnd, "marieke|ies|1985-03-07"),
        (KeyKind::GivenStart, "mar|vries|1985-03-07"),
        (KeyKind::GivenEnd, "eke|vries|1985-03-07"),
        (KeyKind::InitialDate, "m|fris|1985-03-07"),
        (KeyKind::AllInitials, "mj|fris|1985-03-07"),
        (KeyKind::Address, "1234AB|12|A"),
        (KeyKind::InitialBirthDate, "m|1985-03-07"),
        (KeyKind::PhoneticYear, "marike|fris|1985"),
        (KeyKind::PhoneticMonthDay, "marike|fris|03-07"),
    ]
    .iter()
    .map(|(k, v)| {
        let p = key.derive(*k, v);
        let hex: String = p.bytes.iter().map(|b| format!("{b:02x}")).collect();
        json!({ "kind": k.code(), "value": v, "hmac_hex": hex, "wire": p.to_wire() })
    })
    .collect();

    // Whole subjects: normalised fields, key values, wire keys, or the field errors.
    let mut subjects: Vec<(String, SubjectFields)> = vec![
        (
            "full person with BSN, address and two parents".into(),
            SubjectFields {
                reference: "DOS-2026-0001".into(),
                person: PersonFields {
                    bsn: "111222333".into(),
                    given_names: "Marieke Johanna".into(),
                    family_name: "Jansen-de Vries".into(),
                    birth_date: "07-03-1985".into(),
                    ..Default::default()
                },
                postcode: "1234 ab".into(),
                house_number: "12-a".into(),
                parents: vec![
                    PersonFields {
                        bsn: "012345672".into(),
                        ..person("Pieter", "de Vries", "1950-01-31")
                    },
                    person("Anna", "Jansen", "12/05/1952"),
                ],
                ..Default::default()
            },
        ),
        (
            "initials only, tussenvoegsel in its own column, no BSN".into(),
            subject(
                "R-2",
                PersonFields {
                    initials: "M.J.".into(),
                    prefix: "de".into(),
                    ..person("", "Vries-Jansen", "19850307")
                },
            ),
        ),
        (
            "full name field, family first".into(),
            subject(
                "R-3",
                PersonFields {
                    full_name: "Jansen-de Vries, Marieke".into(),
                    birth_date: "1985-03-07".into(),
                    ..Default::default()
                },
            ),
        ),
        (
            "full name field, given first with initial".into(),
            subject(
                "R-4",
                PersonFields {
                    full_name: "M. de Vries-Jansen".into(),
                    birth_date: "7 mrt 1985".into(),
                    ..Default::default()
                },
            ),
        ),
        (
            "full name with an initial that is also a tussenvoegsel; BSN that lost two zeros"
                .into(),
            SubjectFields {
                reference: "R-4b".into(),
                person: PersonFields {
                    bsn: "1234560".into(),
                    full_name: "Berg, T.".into(),
                    birth_date: "1 jan 1970".into(),
                    ..Default::default()
                },
                ..Default::default()
            },
        ),
        (
            "V-nummer only".into(),
            subject(
                "R-5",
                PersonFields {
                    v_number: "1234567890".into(),
                    ..Default::default()
                },
            ),
        ),
        (
            "BSN only".into(),
            subject(
                "R-6",
                PersonFields {
                    bsn: "111222333".into(),
                    ..Default::default()
                },
            ),
        ),
        (
            "short names: no affix keys".into(),
            subject("R-7", person("Bo", "Li", "2001-12-31")),
        ),
        (
            "diacritics and Turkish letters".into(),
            subject("R-8", person("Ayşe Nur", "Öztürk", "1990-06-15")),
        ),
        (
            "bad BSN and impossible date: all errors reported".into(),
            subject(
                "R-9",
                PersonFields {
                    bsn: "111222334".into(),
                    ..person("Jan", "Smit", "1985-02-30")
                },
            ),
        ),
        (
            "no birth date and no number".into(),
            subject("R-10", person("Jan", "Smit", "")),
        ),
        (
            "reference that is a BSN".into(),
            subject("111222333", person("Jan", "Smit", "1985-01-01")),
        ),
        (
            "reference with a space".into(),
            subject("DOS 1", person("Jan", "Smit", "1985-01-01")),
        ),
        (
            "empty reference".into(),
            subject("", person("Jan", "Smit", "1985-01-01")),
        ),
        (
            "postcode without house number".into(),
            SubjectFields {
                postcode: "1234AB".into(),
                ..subject("R-14", person("Jan", "Smit", "1985-01-01"))
            },
        ),
        (
            "bad addition in its own column".into(),
            SubjectFields {
                postcode: "1234AB".into(),
                house_number: "5".into(),
                house_number_addition: "a+b".into(),
                ..subject("R-15", person("Jan", "Smit", "1985-01-01"))
            },
        ),
        (
            "bad parent field".into(),
            SubjectFields {
                parents: vec![person("Piet", "Smit", "1850-01-01")],
                ..subject("R-16", person("Jan", "Smit", "1985-01-01"))
            },
        ),
        (
            "full name without given name".into(),
            subject(
                "R-17",
                PersonFields {
                    full_name: "Smit".into(),
                    birth_date: "1985-01-01".into(),
                    ..Default::default()
                },
            ),
        ),
        (
            "unsupported script".into(),
            subject("R-18", person("Иван", "Smit", "1985-01-01")),
        ),
    ];
    // Variants of one person that must meet, and near neighbours that must not.
    let pairs: Vec<(&str, PersonFields, PersonFields, bool)> = vec![
        (
            "swapped double name",
            person("Marieke", "Jansen-de Vries", "1985-03-07"),
            person("Marieke", "de Vries-Jansen", "07-03-1985"),
            true,
        ),
        (
            "birth name vs double name",
            person("Marieke", "Jansen", "1985-03-07"),
            person("Marieke", "de Vries-Jansen", "1985-03-07"),
            true,
        ),
        (
            "dropped tussenvoegsel",
            person("Pieter", "van den Berg", "1970-11-02"),
            person("Pieter", "Berg", "1970-11-02"),
            true,
        ),
        (
            "ij/y spelling",
            person("Thijs", "Meijer", "2004-08-21"),
            person("Tys", "Meyer", "2004-08-21"),
            true,
        ),
        (
            "typo in the middle of the family name (fs and fe)",
            person("Sanne", "Verhoeven", "1999-04-30"),
            person("Sanne", "Verhueven", "1999-04-30"),
            true,
        ),
        (
            "typo at the end of the family name, nothing else shared (fs alone)",
            person("Sanne", "Bakker", "1999-04-30"),
            person("Sanne", "Bakkre", "1999-04-30"),
            false,
        ),
        (
            "typo in given name",
            person("Johannes", "Visser", "1962-09-09"),
            person("Johannse", "Visser", "1962-09-09"),
            true,
        ),
        (
            "diacritics dropped",
            person("Daniël", "Çelik", "2010-02-14"),
            person("Daniel", "Celik", "2010-02-14"),
            true,
        ),
        (
            "initials with two letters",
            person("Marieke Johanna", "de Vries", "1985-03-07"),
            PersonFields {
                initials: "M.J.".into(),
                ..person("", "Vries", "1985-03-07")
            },
            true,
        ),
        (
            "single initial alone is not enough",
            person("Marieke", "de Vries", "1985-03-07"),
            person("M.", "de Vries", "1985-03-07"),
            false,
        ),
        (
            "twins Sem and Sam",
            person("Sem", "de Jong", "2015-05-05"),
            person("Sam", "de Jong", "2015-05-05"),
            false,
        ),
        (
            "twins Lisa and Lotte",
            person("Lisa", "Bos", "2012-01-20"),
            person("Lotte", "Bos", "2012-01-20"),
            false,
        ),
        (
            "same name, other birth date",
            person("Jan", "Jansen", "1980-01-01"),
            person("Jan", "Jansen", "1980-01-02"),
            false,
        ),
        (
            "different BSNs, same name and birth date (veto)",
            PersonFields {
                bsn: "111222333".into(),
                ..person("Jan", "Smit", "1985-01-01")
            },
            PersonFields {
                bsn: "123456782".into(),
                ..person("Jan", "Smit", "1985-01-01")
            },
            false,
        ),
        (
            "one BSN, same name and birth date",
            PersonFields {
                bsn: "111222333".into(),
                ..person("Jan", "Smit", "1985-01-01")
            },
            person("Jan", "Smit", "01-01-1985"),
            true,
        ),
        (
            "parent and child with the same name",
            person("Jan", "Smit", "1960-03-03"),
            person("Jan", "Smit", "1990-03-03"),
            false,
        ),
    ];
    let mut links = Vec::new();
    for (i, (desc, a, b, want)) in pairs.into_iter().enumerate() {
        let sa = subject(&format!("L{i}-a"), a);
        let sb = subject(&format!("L{i}-b"), b);
        let ka = derive_subject(
            &key,
            &normalise_subject(&sa, today).unwrap_or_else(|e| panic!("{desc}: {e:?}")),
        );
        let kb = derive_subject(
            &key,
            &normalise_subject(&sb, today).unwrap_or_else(|e| panic!("{desc}: {e:?}")),
        );
        let got = same_person(&ka.person, &ka.household, &kb.person, &kb.household);
        assert_eq!(got, want, "link vector '{desc}' does not hold");
        links.push(json!({ "description": desc, "a": format!("subjects[{}]", subjects.len()), "b": format!("subjects[{}]", subjects.len() + 1), "same_person": want }));
        subjects.push((format!("link vector: {desc} (a)"), sa));
        subjects.push((format!("link vector: {desc} (b)"), sb));
    }
    // The partner's family name only: first initial and birth date meet (`id`), which
    // links with the same address and not without it.
    {
        let addr = |s: SubjectFields| SubjectFields {
            postcode: "3011 AB".into(),
            house_number: "4".into(),
            ..s
        };
        let born = person("Marieke", "Jansen", "1985-03-07");
        let partner_name = PersonFields {
            initials: "M.".into(),
            ..person("", "de Vries", "07-03-1985")
        };
        for (desc, a, b, want) in [
            (
                "day and month swapped, the same address (py + adr)",
                addr(subject("LS-a", person("Marieke", "Jansen", "1985-03-07"))),
                addr(subject("LS-b", person("Marieke", "Jansen", "1985-07-03"))),
                true,
            ),
            (
                "year off by one, the same address (pm + adr)",
                addr(subject("LY-a", person("Marieke", "Jansen", "1985-03-07"))),
                addr(subject("LY-b", person("Marieke", "Jansen", "1986-03-07"))),
                true,
            ),
            (
                "day and month swapped, no address (py alone)",
                subject("LT-a", person("Marieke", "Jansen", "1985-03-07")),
                subject("LT-b", person("Marieke", "Jansen", "1985-07-03")),
                false,
            ),
            (
                "partner's name only, the same address (id + adr)",
                addr(subject("LP-a", born.clone())),
                addr(subject("LP-b", partner_name.clone())),
                true,
            ),
            (
                "partner's name only, no address (id alone)",
                subject("LQ-a", born),
                subject("LQ-b", partner_name),
                false,
            ),
        ] {
            let k = |s: &SubjectFields| {
                derive_subject(
                    &key,
                    &normalise_subject(s, today).unwrap_or_else(|e| panic!("{desc}: {e:?}")),
                )
            };
            let (ka, kb) = (k(&a), k(&b));
            let got = same_person(&ka.person, &ka.household, &kb.person, &kb.household);
            assert_eq!(got, want, "link vector '{desc}' does not hold");
            links.push(json!({ "description": desc, "a": format!("subjects[{}]", subjects.len()), "b": format!("subjects[{}]", subjects.len() + 1), "same_person": want }));
            subjects.push((format!("link vector: {desc} (a)"), a));
            subjects.push((format!("link vector: {desc} (b)"), b));
        }
    }
    // An initials-only record links through a shared address (weak key + household key).
    {
        let addr = |s: SubjectFields| SubjectFields {
            postcode: "2511 CV".into(),
            house_number: "7".into(),
            ..s
        };
        let sa = addr(subject("LA-a", person("Marieke", "de Vries", "1985-03-07")));
        let sb = addr(subject("LA-b", person("M.", "Vries", "1985-03-07")));
        links.push(json!({ "description": "single initial plus the same address", "a": format!("subjects[{}]", subjects.len()), "b": format!("subjects[{}]", subjects.len() + 1), "same_person": true }));
        subjects.push((
            "link vector: single initial plus the same address (a)".into(),
            sa,
        ));
        subjects.push((
            "link vector: single initial plus the same address (b)".into(),
            sb,
        ));
    }

    let subject_vectors: Vec<Value> = subjects
        .iter()
        .map(|(desc, s)| {
            let mut v = json!({ "description": desc, "input": s });
            match normalise_subject(s, today) {
                Ok(n) => {
                    let k = derive_subject(&key, &n);
                    let values = |list: Vec<(KeyKind, String)>| -> Vec<Value> {
                        list.iter().map(|(kind, val)| json!({ "kind": kind.code(), "value": val, "wire": key.derive(*kind, val).to_wire() })).collect()
                    };
                    v["normalised"] = serde_json::to_value(&n).unwrap_or(Value::Null);
                    v["person_keys"] = Value::Array(values(person_key_values(&n.person)));
                    v["household_keys"] = json!(k.household.iter().map(|p| p.to_wire()).collect::<Vec<_>>());
                    v["family_keys"] = json!(n.parents.iter().map(|p| Value::Array(values(family_key_values(p)))).collect::<Vec<_>>());
                    v["wire"] = serde_json::from_str(&k.to_json()).unwrap_or(Value::Null);
                }
                Err(errors) => {
                    v["errors"] = json!(errors.iter().map(|e| json!({ "field": e.field, "code": e.reason.code() })).collect::<Vec<_>>());
                }
            }
            v
        })
        .collect();

    let out = json!({
        "spec": "samenloop pseudonymisation v1",
        "about": "Test vectors for spec/pseudonymisation.md. 'today' is the processing date for birth-date checks. Field vectors give {input, output} or {input, error}; subjects give normalised fields, key values, wire keys or errors; links give whether two subjects are the same person under the link rule of section 5.2.",
        "key": { "key_id": "vectors", "secret_hex": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "fingerprint": key.fingerprint() },
        "today": today.to_string(),
        "fields": Value::Object(f),
        "derivation": derivation,
        "subjects": subject_vectors,
        "links": links,
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
}
