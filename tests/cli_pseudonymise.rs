//! `samenloop pseudonymise` and `samenloop keys`, run as the real binary on temp files.

use samenloop::pseudonym::keyfile::read_key_file;
use samenloop::pseudonym::{
    Date, DomainKey, KeyKind, PersonFields, SubjectFields, SubjectKeys, pseudonymise,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const DEV_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/keys-example/domain-key.dev.toml"
);
const TODAY: Date = Date {
    year: 2026,
    month: 1,
    day: 1,
};

fn dev_key() -> DomainKey {
    read_key_file(Path::new(DEV_KEY)).unwrap()
}

/// Runs the binary with `args`, feeding `stdin` if given.
fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_samenloop"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    child.wait_with_output().unwrap()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    rejects: Vec<serde_json::Value>,
    rejects_text: String,
}

/// Pseudonymises `input` (written to a temp file named `name`) with the dev key.
fn pseudonymise_file(name: &str, input: &[u8], extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, input).unwrap();
    let rejects = dir.path().join("rejects.jsonl");
    let mut args = vec![
        "pseudonymise",
        "--key",
        DEV_KEY,
        "--input",
        path.to_str().unwrap(),
        "--rejects",
        rejects.to_str().unwrap(),
        "--today",
        "2026-01-01",
    ];
    args.extend_from_slice(extra);
    let out = run(&args, None);
    let rejects_text = std::fs::read_to_string(&rejects).unwrap_or_default();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        rejects: rejects_text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        rejects_text,
    }
}

fn key_sets(stdout: &str) -> Vec<SubjectKeys> {
    stdout
        .lines()
        .map(|l| SubjectKeys::from_json(l).unwrap())
        .collect()
}

fn person(bsn: &str, given: &str, initials: &str, family: &str, birth: &str) -> PersonFields {
    PersonFields {
        bsn: bsn.into(),
        given_names: given.into(),
        initials: initials.into(),
        family_name: family.into(),
        birth_date: birth.into(),
        ..PersonFields::default()
    }
}

/// The three good records used in several tests, as the library sees them.
fn good_records() -> Vec<SubjectFields> {
    vec![
        SubjectFields {
            reference: "D-1".into(),
            person: person(
                "111222333",
                "Marieke Johanna",
                "",
                "Jansen-de Vries",
                "07-03-2012",
            ),
            postcode: "1234 AB".into(),
            house_number: "12".into(),
            house_number_addition: "a".into(),
            parents: vec![person("", "Pieter", "", "Jansen", "1980-11-02")],
        },
        SubjectFields {
            reference: "D-2".into(),
            person: person("", "", "M.J.", "de Boer", "1985-03-07"),
            ..SubjectFields::default()
        },
        SubjectFields {
            reference: "D-3".into(),
            person: PersonFields {
                full_name: "Çelik, Ayşe".into(),
                birth_date: "7 mrt 1991".into(),
                ..PersonFields::default()
            },
            ..SubjectFields::default()
        },
    ]
}

/// What the library derives for the good records: one JSON line each.
fn expected_good_output() -> String {
    let key = dev_key();
    good_records()
        .iter()
        .map(|r| pseudonymise(&key, r, TODAY).unwrap().to_json() + "\n")
        .collect()
}

const GOOD_CSV: &str = "\
reference,bsn,given_names,initials,family_name,full_name,birth_date,postcode,house_number,house_number_addition,parent1.given_names,parent1.family_name,parent1.birth_date,notes
D-1,111222333,Marieke Johanna,,Jansen-de Vries,,07-03-2012,1234 AB,12,a,Pieter,Jansen,1980-11-02,\"free text, ignored\"
D-2,,,M.J.,de Boer,,1985-03-07,,,,,,,
D-3,,,,,\"Çelik, Ayşe\",7 mrt 1991,,,,,,,
";

/// The same export as a Dutch Excel user would save it: BOM, `;`, CRLF, Dutch headers.
const DUTCH_CSV: &str = "\u{feff}Dossier;BSN;Voornamen;Voorletters;Achternaam;Naam;Geboortedatum;Postcode;Huisnr;Toev;Voornaam moeder;Achternaam moeder;Geb. moeder\r\n\
D-1;111222333;Marieke Johanna;;Jansen-de Vries;;07-03-2012;1234 AB;12;a;Pieter;Jansen;1980-11-02\r\n\
D-2;;;M.J.;de Boer;;1985-03-07;;;;;;\r\n\
D-3;;;;;Çelik, Ayşe;7 mrt 1991;;;;;;\r\n";

const DUTCH_MAP: &[(&str, &str)] = &[
    ("reference", "Dossier"),
    ("given_names", "Voornamen"),
    ("initials", "Voorletters"),
    ("family_name", "Achternaam"),
    ("full_name", "Naam"),
    ("birth_date", "Geboortedatum"),
    ("house_number", "Huisnr"),
    ("house_number_addition", "Toev"),
    ("parent1.given_names", "Voornaam moeder"),
    ("parent1.family_name", "Achternaam moeder"),
    ("parent1.birth_date", "Geb. moeder"),
];

#[test]
fn good_csv_gives_the_library_key_sets_in_input_order() {
    let r = pseudonymise_file("export.csv", GOOD_CSV.as_bytes(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, expected_good_output());
    assert_eq!(r.stderr, "pseudonymised 3 rows, rejected 0 rows\n");
    assert_eq!(r.rejects_text, "");

    let sets = key_sets(&r.stdout);
    let refs: Vec<&str> = sets.iter().map(|s| s.reference.as_str()).collect();
    assert_eq!(refs, ["D-1", "D-2", "D-3"]);
    for s in &sets {
        assert_eq!(s.key_id, "dev-2026");
    }
    let kinds = |s: &SubjectKeys| s.person_kinds().collect::<Vec<_>>();
    // D-1: BSN, full names, an address and a parent (family keys).
    assert!(kinds(&sets[0]).contains(&KeyKind::Bsn));
    assert!(kinds(&sets[0]).contains(&KeyKind::NameDate));
    assert_eq!(sets[0].household.len(), 1);
    assert_eq!(sets[0].household[0].kind, KeyKind::Address);
    assert_eq!(sets[0].family.len(), 1);
    assert!(
        sets[0].family[0]
            .iter()
            .any(|p| p.kind == KeyKind::NameDate)
    );
    // D-2: initials only, no BSN, no address.
    assert!(!kinds(&sets[1]).contains(&KeyKind::Bsn));
    assert!(!kinds(&sets[1]).contains(&KeyKind::NameDate));
    assert!(kinds(&sets[1]).contains(&KeyKind::InitialDate));
    assert!(kinds(&sets[1]).contains(&KeyKind::AllInitials));
    assert!(sets[1].household.is_empty() && sets[1].family.is_empty());
    // D-3: a full name with diacritics.
    assert!(kinds(&sets[2]).contains(&KeyKind::NameDate));
}

#[test]
fn semicolons_bom_crlf_and_mapping_flags_give_the_same_keys() {
    let mut flags = Vec::new();
    let maps: Vec<String> = DUTCH_MAP.iter().map(|(f, c)| format!("{f}={c}")).collect();
    for m in &maps {
        flags.extend(["--map", m.as_str()]);
    }
    let r = pseudonymise_file("export.csv", DUTCH_CSV.as_bytes(), &flags);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, expected_good_output());
}

#[test]
fn mapping_file_gives_the_same_keys_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("mapping.toml");
    let mut toml = String::from("[columns]\n");
    for (f, c) in DUTCH_MAP {
        // A wrong column for the reference, corrected by --map below.
        let c = if *f == "reference" { "Achternaam" } else { c };
        toml.push_str(&format!("\"{f}\" = \"{c}\"\n"));
    }
    std::fs::write(&mapping, toml).unwrap();
    let r = pseudonymise_file(
        "export.csv",
        DUTCH_CSV.as_bytes(),
        &[
            "--mapping",
            mapping.to_str().unwrap(),
            "--map",
            "reference=Dossier",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, expected_good_output());
}

#[test]
fn explicit_delimiter_is_used() {
    // A header with more commas than pipes: detection alone would pick the comma.
    let piped = GOOD_CSV
        .replace(',', "|")
        .replace("\"free text| ignored\"", "x")
        .replace("\"Çelik| Ayşe\"", "Çelik, Ayşe")
        .replace(
            "|notes",
            "|notes, remarks, and, other, things, never, used, by, us, at, all, really, not, once, in, any, way, or, form",
        );
    let r = pseudonymise_file("export.txt", piped.as_bytes(), &["--delimiter", "|"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, expected_good_output());
    let r = pseudonymise_file("export.txt", piped.as_bytes(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
}

const GOOD_JSONL: &str = r#"{"reference":"D-1","bsn":111222333,"given_names":"Marieke Johanna","family_name":"Jansen-de Vries","birth_date":"07-03-2012","postcode":"1234 AB","house_number":12,"house_number_addition":"a","parent1.given_names":"Pieter","parent1.family_name":"Jansen","parent1.birth_date":"1980-11-02","notes":{"ignored":[1,2]}}

{"Reference":"D-2","bsn":null,"initials":"M.J.","family_name":"de Boer","birth_date":"1985-03-07"}
   
{"reference":"D-3","full_name":"Çelik, Ayşe","birth_date":"7 mrt 1991","extra":true}
"#;

#[test]
fn json_lines_give_the_same_keys() {
    let r = pseudonymise_file("export.jsonl", GOOD_JSONL.as_bytes(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, expected_good_output());
    // --format overrides the extension.
    let r = pseudonymise_file("export.txt", GOOD_JSONL.as_bytes(), &["--format", "jsonl"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, expected_good_output());
}

#[test]
fn stdin_to_stdout() {
    let out = run(
        &[
            "pseudonymise",
            "--key",
            DEV_KEY,
            "--input",
            "-",
            "--today",
            "2026-01-01",
        ],
        Some(GOOD_CSV.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        expected_good_output()
    );
}

fn reject_at(r: &Run, line: u64) -> &serde_json::Value {
    r.rejects
        .iter()
        .find(|v| v["line"] == line)
        .unwrap_or_else(|| panic!("no reject for line {line} in {}", r.rejects_text))
}

fn codes(v: &serde_json::Value) -> Vec<(String, String)> {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_string(),
                e["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pair(field: &str, code: &str) -> (String, String) {
    (field.to_string(), code.to_string())
}

#[test]
fn bad_csv_rows_are_rejected_with_code_and_line_and_the_rest_comes_out() {
    let long = "x".repeat(1001);
    let mut csv = Vec::new();
    csv.extend_from_slice(b"reference,bsn,given_names,family_name,birth_date,notes\n"); // 1
    csv.extend_from_slice(b"G-1,,Sanne,Bakker,1990-01-01,\n"); // 2
    csv.extend_from_slice(b"B-2,,Thijs,Visser,1990-01-01\n"); // 3 too few fields
    csv.extend_from_slice(b"B-3,,Fr\xe9d\xe9ric,Visser,1990-01-01,\n"); // 4 Latin-1 byte
    csv.extend_from_slice(b"B-4,,\"Anouk\"x,Visser,1990-01-01,\n"); // 5 text after quote
    csv.extend_from_slice(format!("B-5,,Bram,{long},1990-01-01,\n").as_bytes()); // 6
    csv.extend_from_slice(b"B-6,,Femke,Smit,30-02-1985,\n"); // 7
    csv.extend_from_slice(b"G-1,,Jeroen,Kok,1991-02-03,\n"); // 8 duplicate reference
    csv.extend_from_slice(b"G-7,,Lotte,Bos,1992-03-04,\"two\nlines\"\n"); // 9-10
    csv.extend_from_slice(b"B-8,111222334,Emma,Dekker,2030-01-01,\n"); // 11
    csv.extend_from_slice(b"111222333,,Noah,Peters,1993-01-01,\n"); // 12 reference is a BSN
    csv.extend_from_slice(b"B-9,,Julia,Mulder,1994-01-01,,extra\n"); // 13 too many fields
    csv.extend_from_slice(b"\n"); // 14 blank: skipped
    csv.extend_from_slice(b"G-10,,Lucas,Vos,1995-01-01,\n"); // 15
    let r = pseudonymise_file("export.csv", &csv, &["--threads", "2"]);
    assert_eq!(r.code, 3, "{}", r.stderr);

    let refs: Vec<String> = key_sets(&r.stdout)
        .into_iter()
        .map(|s| s.reference)
        .collect();
    assert_eq!(refs, ["G-1", "G-7", "G-10"]);

    assert_eq!(r.rejects.len(), 9, "{}", r.rejects_text);
    let lines: Vec<u64> = r
        .rejects
        .iter()
        .map(|v| v["line"].as_u64().unwrap())
        .collect();
    assert_eq!(
        lines,
        [3, 4, 5, 6, 7, 8, 11, 12, 13],
        "rejects in input order"
    );
    assert_eq!(codes(reject_at(&r, 3)), [pair("row", "csv_field_count")]);
    assert_eq!(codes(reject_at(&r, 4)), [pair("given_names", "not_utf8")]);
    assert_eq!(codes(reject_at(&r, 5)), [pair("row", "malformed_csv")]);
    assert_eq!(codes(reject_at(&r, 6)), [pair("family_name", "too_long")]);
    assert_eq!(
        codes(reject_at(&r, 7)),
        [pair("birth_date", "date_impossible")]
    );
    assert_eq!(
        codes(reject_at(&r, 8)),
        [pair("reference", "duplicate_reference")]
    );
    assert_eq!(
        codes(reject_at(&r, 11)),
        [
            pair("bsn", "bsn_checksum"),
            pair("birth_date", "date_out_of_range")
        ]
    );
    assert_eq!(
        codes(reject_at(&r, 12)),
        [pair("reference", "reference_looks_like_bsn")]
    );
    assert_eq!(codes(reject_at(&r, 13)), [pair("row", "csv_field_count")]);

    // The reference is given where it is well-formed and the row's columns are trustworthy.
    assert_eq!(reject_at(&r, 7)["reference"], "B-6");
    assert_eq!(reject_at(&r, 8)["reference"], "G-1");
    assert_eq!(reject_at(&r, 4)["reference"], "B-3");
    for line in [3, 5, 12, 13] {
        assert!(
            reject_at(&r, line).get("reference").is_none(),
            "line {line}"
        );
    }
    for v in &r.rejects {
        for e in v["errors"].as_array().unwrap() {
            assert!(!e["message"].as_str().unwrap().is_empty());
        }
    }

    assert!(
        r.stderr
            .contains("line 7: birth_date: no such day in the calendar (date_impossible)\n"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("line 3: row: "));
    assert!(
        r.stderr
            .ends_with("pseudonymised 3 rows, rejected 9 rows\n")
    );
    assert_eq!(
        r.stderr.lines().filter(|l| l.starts_with("line ")).count(),
        9
    );
}

#[test]
fn bad_json_lines_are_rejected_with_code_and_line() {
    let mut input = Vec::new();
    input.extend_from_slice(br#"{"reference":"G-1","given_names":"Sanne","family_name":"Bakker","birth_date":"1990-01-01"}"#);
    input.extend_from_slice(b"\n\n"); // 1, 2 blank
    input.extend_from_slice(b"{\"reference\": \"B-3\", \"given_names\": \n"); // 3 truncated
    input.extend_from_slice(b"[\"B-4\"]\n"); // 4 not an object
    input.extend_from_slice(br#"{"reference":"B-5","given_names":"Thijs","family_name":["Visser"],"birth_date":1.5,"notes":{"a":1}}"#);
    input.extend_from_slice(b"\n"); // 5 wrong types (notes is not mapped: ignored)
    input.extend_from_slice(b"{\"reference\":\"B-6\",\"given_names\":\"Fr\xe9d\",\"family_name\":\"Kok\",\"birth_date\":\"1990-01-01\"}\n"); // 6
    input.extend_from_slice(br#"{"reference":"B-7","given_names":"Femke","family_name":"Smit","birth_date":"1985-13-01"}"#);
    input.extend_from_slice(b"\n"); // 7
    input.extend_from_slice(br#"{"reference":"G-8","given_names":"Lotte","family_name":"Bos","birth_date":19920304,"bsn":true}"#);
    input.extend_from_slice(b"\n"); // 8 bsn wrong type
    input.extend_from_slice(
        br#"{"reference":"G-9","given_names":"Lucas","family_name":"Vos","birth_date":19950101}"#,
    ); // 9, no final newline
    let r = pseudonymise_file("export.ndjson", &input, &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let refs: Vec<String> = key_sets(&r.stdout)
        .into_iter()
        .map(|s| s.reference)
        .collect();
    assert_eq!(refs, ["G-1", "G-9"]);
    assert_eq!(codes(reject_at(&r, 3)), [pair("row", "malformed_json")]);
    assert_eq!(codes(reject_at(&r, 4)), [pair("row", "malformed_json")]);
    let mut five = codes(reject_at(&r, 5));
    five.sort();
    assert_eq!(
        five,
        [
            pair("birth_date", "wrong_type"),
            pair("family_name", "wrong_type")
        ]
    );
    assert_eq!(reject_at(&r, 5)["reference"], "B-5");
    assert_eq!(codes(reject_at(&r, 6)), [pair("row", "not_utf8")]);
    assert_eq!(
        codes(reject_at(&r, 7)),
        [pair("birth_date", "date_impossible")]
    );
    assert_eq!(codes(reject_at(&r, 8)), [pair("bsn", "wrong_type")]);
    assert_eq!(r.rejects.len(), 6);
    assert!(
        r.stderr
            .ends_with("pseudonymised 2 rows, rejected 6 rows\n")
    );
}

#[test]
fn outputs_never_contain_input_values() {
    // Distinctive values, in good and in rejected rows.
    let csv = "\
reference,bsn,given_names,family_name,birth_date,postcode,house_number,parent1.bsn,parent1.given_names,parent1.family_name,parent1.birth_date
R-1,111222333,Willemijn,Vermeulen,1984-06-15,9876 ZX,321,012345672,Cornelis,Vermeulen,1950-09-09
R-2,111222334,Hendrika,Brouwersma,1977-31-12,9876 ZX,,,,,
R-3,,Zeynep,Yılmazoğlu,30-02-1999,,,,,,
R-4,,Kwabena,Okonkwo,1966-06-06,1234 SS,7,,,,
";
    let r = pseudonymise_file("export.csv", csv.as_bytes(), &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(r.rejects.len(), 3);
    let everything = format!("{}\n{}\n{}", r.stdout, r.rejects_text, r.stderr);
    for value in [
        "111222333",
        "111222334",
        "012345672",
        "Willemijn",
        "willemijn",
        "Vermeulen",
        "vermeulen",
        "1984-06-15",
        "1950-09-09",
        "Cornelis",
        "9876",
        "ZX",
        "Hendrika",
        "Brouwersma",
        "1977-31-12",
        "Zeynep",
        "Yılmaz",
        "30-02-1999",
        "Kwabena",
        "Okonkwo",
        "1966-06-06",
        "1234 SS",
    ] {
        assert!(!everything.contains(value), "{value} leaked:\n{everything}");
    }
}

#[test]
fn more_than_fifty_rejects_are_summarised_on_stderr() {
    let mut csv = String::from("reference,family_name\n");
    for i in 0..60 {
        csv.push_str(&format!("R-{i},Jansen\n"));
    }
    let r = pseudonymise_file("export.csv", csv.as_bytes(), &[]);
    assert_eq!(r.code, 3);
    assert_eq!(r.rejects.len(), 60);
    assert_eq!(
        codes(&r.rejects[0]),
        [pair("person", "insufficient_identifiers")]
    );
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 52, "{}", r.stderr);
    assert_eq!(
        lines[0],
        "line 2: person: needs a BSN, a V-nummer, or family name with given name or initials and birth date (insufficient_identifiers)"
    );
    assert_eq!(lines[50], "... and 10 more rejected rows");
    assert_eq!(lines[51], "pseudonymised 0 rows, rejected 60 rows");
}

fn one_error_line(stderr: &[u8]) -> String {
    let s = String::from_utf8(stderr.to_vec()).unwrap();
    assert_eq!(s.lines().count(), 1, "{s}");
    assert!(s.starts_with("samenloop: error: "), "{s}");
    s
}

#[test]
fn fatal_errors_exit_1_before_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("export.csv");
    std::fs::write(&input, "Dossier,Naam\nD-1,Jan\n").unwrap();
    let out = dir.path().join("out.jsonl");
    let base = |key: &str| -> Vec<String> {
        vec![
            "pseudonymise".into(),
            "--key".into(),
            key.into(),
            "--input".into(),
            input.to_str().unwrap().into(),
            "--output".into(),
            out.to_str().unwrap().into(),
        ]
    };
    let go = |args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&a, None)
    };

    // A mapped column that is not in the header; an unknown field; no reference.
    let mut args = base(DEV_KEY);
    args.extend([
        "--map".into(),
        "birth_date=Geboortedatum".into(),
        "--map".into(),
        "voornaam=Naam".into(),
    ]);
    let o = go(args);
    assert_eq!(o.status.code(), Some(1));
    let e = one_error_line(&o.stderr);
    assert!(
        e.contains("\"Geboortedatum\" (for birth_date) is not in the header"),
        "{e}"
    );
    assert!(e.contains("unknown field \"voornaam\""), "{e}");
    assert!(e.contains("no column for reference"), "{e}");
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no partial files"
    );

    // A file without a header row: its first line is never echoed.
    let headless = dir.path().join("headless.csv");
    std::fs::write(&headless, "D-1,111222333,Willemijn,Vermeulen,1984-06-15\n").unwrap();
    let mut args = base(DEV_KEY);
    args[4] = headless.to_str().unwrap().into();
    let o = go(args);
    assert_eq!(o.status.code(), Some(1));
    let e = one_error_line(&o.stderr);
    assert!(
        e.contains("no column for reference") && e.contains("5 columns"),
        "{e}"
    );
    for value in ["D-1", "111222333", "Willemijn", "Vermeulen", "1984-06-15"] {
        assert!(!e.contains(value), "{e}");
    }
    assert!(!out.exists());

    // Missing key file.
    let missing = dir.path().join("nope.toml");
    let o = go(base(missing.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(1));
    assert!(one_error_line(&o.stderr).contains("nope.toml"));

    // Malformed key file: the error must not show the secret.
    let secret = "ab".repeat(31) + "zz";
    let bad_key = dir.path().join("bad.toml");
    std::fs::write(
        &bad_key,
        format!("format = \"samenloop-domain-key/1\"\nkey_id = \"k\"\nsecret = \"{secret}\"\n"),
    )
    .unwrap();
    let o = go(base(bad_key.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(1));
    let e = one_error_line(&o.stderr);
    assert!(!e.contains("abab"), "{e}");
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, format!("secret = \"{}\n", "cd".repeat(32))).unwrap();
    let o = go(base(broken.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(1));
    assert!(!one_error_line(&o.stderr).contains("cdcd"));
    assert!(!out.exists());

    // Missing input.
    let mut args = base(DEV_KEY);
    args[4] = dir.path().join("absent.csv").to_str().unwrap().into();
    let o = go(args);
    assert_eq!(o.status.code(), Some(1));
    assert!(one_error_line(&o.stderr).contains("absent.csv"));

    // Output into a directory that does not exist.
    let mut args = base(DEV_KEY);
    args.extend(["--map".into(), "reference=Dossier".into()]);
    args[6] = dir
        .path()
        .join("no/such/dir.jsonl")
        .to_str()
        .unwrap()
        .into();
    let o = go(args);
    assert_eq!(o.status.code(), Some(1));
    one_error_line(&o.stderr);

    // Usage error: exit 2.
    let o = run(&["pseudonymise", "--key", DEV_KEY], None);
    assert_eq!(o.status.code(), Some(2));
    let o = run(
        &[
            "pseudonymise",
            "--key",
            DEV_KEY,
            "--input",
            "-",
            "--today",
            "1-1-2026",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
}

/// A larger export: several batches, rejects and duplicates in different batches.
fn big_export(rows: usize) -> String {
    let given = [
        "Sanne", "Daan", "Emma", "Noah", "Julia", "Lucas", "Sophie", "Bram",
    ];
    let family = ["Jansen", "de Vries", "van Dijk", "Bakker", "Visser", "Smit"];
    let mut s =
        String::from("reference;given_names;family_name;birth_date;postcode;house_number\n");
    for i in 0..rows {
        let reference = if i % 997 == 500 {
            format!("R-{}", i - 400)
        } else {
            format!("R-{i}")
        };
        let birth = if i % 1009 == 3 {
            "31-02-1980".to_string()
        } else {
            format!(
                "{:02}-{:02}-{}",
                1 + i % 28,
                1 + (i / 28) % 12,
                1940 + i % 80
            )
        };
        s.push_str(&format!(
            "{reference};{};{};{birth};{} AB;{}\n",
            given[i % given.len()],
            family[(i / 7) % family.len()],
            1000 + i % 9000,
            1 + i % 200,
        ));
    }
    s
}

#[test]
fn output_is_deterministic_and_independent_of_threads() {
    let csv = big_export(10_000);
    let one = pseudonymise_file("export.csv", csv.as_bytes(), &["--threads", "1"]);
    let two = pseudonymise_file("export.csv", csv.as_bytes(), &["--threads", "2"]);
    let again = pseudonymise_file("export.csv", csv.as_bytes(), &["--threads", "2"]);
    assert_eq!(one.code, 3, "{}", one.stderr);
    assert!(one.rejects.len() >= 10, "{}", one.rejects.len());
    assert!(
        one.rejects
            .iter()
            .any(|v| codes(v) == [pair("reference", "duplicate_reference")])
    );
    assert!(
        one.rejects
            .iter()
            .any(|v| codes(v) == [pair("birth_date", "date_impossible")])
    );
    assert_eq!(one.stdout.lines().count() + one.rejects.len(), 10_000);
    assert_eq!(one.stdout, two.stdout);
    assert_eq!(one.rejects_text, two.rejects_text);
    assert_eq!(one.stderr, two.stderr);
    assert_eq!(two.stdout, again.stdout);
}

fn secret_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text.lines().find(|l| l.starts_with("secret")).unwrap();
    line.split('"').nth(1).unwrap().to_string()
}

fn fingerprint_line(stdout: &[u8]) -> String {
    String::from_utf8(stdout.to_vec())
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: "))
        .unwrap()
        .to_string()
}

#[test]
fn keys_generate_and_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("regio.toml");
    let p = path.to_str().unwrap();
    let o = run(
        &[
            "keys",
            "generate",
            "--id",
            "regio-2026",
            "--out",
            p,
            "--comment",
            "test",
        ],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8(o.stdout.clone()).unwrap();
    let secret = secret_of(&path);
    assert_eq!(secret.len(), 64);
    assert!(!stdout.contains(&secret));
    assert!(!stdout.contains(&secret[..16]));
    assert!(stdout.contains(p));
    assert!(stdout.contains("key_id: regio-2026"));
    let fp = fingerprint_line(&o.stdout);
    assert_eq!(fp.len(), 16);
    assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The same key gives the same fingerprint; another key another one.
    let o = run(&["keys", "fingerprint", p], None);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(fingerprint_line(&o.stdout), fp);
    assert!(
        String::from_utf8(o.stdout)
            .unwrap()
            .contains("key_id: regio-2026")
    );
    let o = run(&["keys", "fingerprint", DEV_KEY], None);
    let dev_fp = fingerprint_line(&o.stdout);
    assert_ne!(dev_fp, fp);
    assert_eq!(dev_fp, samenloop::cli::keys::fingerprint(&dev_key()));

    // Never overwrites.
    let before = std::fs::read(&path).unwrap();
    let o = run(&["keys", "generate", "--id", "other", "--out", p], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(one_error_line(&o.stderr).contains("already exists"));
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // The new key works for pseudonymisation and is named in the key sets.
    let o = run(
        &[
            "pseudonymise",
            "--key",
            p,
            "--input",
            "-",
            "--today",
            "2026-01-01",
        ],
        Some(GOOD_CSV.as_bytes()),
    );
    assert_eq!(o.status.code(), Some(0));
    let sets = key_sets(&String::from_utf8(o.stdout).unwrap());
    assert_eq!(sets.len(), 3);
    assert!(sets.iter().all(|s| s.key_id == "regio-2026"));
    assert_ne!(
        sets[0].to_json() + "\n",
        expected_good_output().lines().next().unwrap().to_string() + "\n"
    );

    // Bad key files: one line, no secret, exit 1.
    let o = run(
        &[
            "keys",
            "fingerprint",
            dir.path().join("x").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    one_error_line(&o.stderr);
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "format = \"samenloop-domain-key/1\"\nkey_id = \"k\"\nsecret = \"{}\"\nsecret2 = 1\n",
            secret
        ),
    )
    .unwrap();
    let o = run(&["keys", "fingerprint", bad.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(!one_error_line(&o.stderr).contains(&secret[..16]));

    // An invalid key id is a usage error.
    let o = run(
        &[
            "keys",
            "generate",
            "--id",
            "Bad Id",
            "--out",
            dir.path().join("y").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(!dir.path().join("y").exists());
}
