//! The short run of the fuzz targets, on stable, in CI: every target of `fuzz/` over
//! hand-made seeds and a fixed number of deterministic mutations of them (byte flips,
//! insertions, deletions, splices and tokens that matter to the parsers). The long run
//! is `cargo +nightly fuzz run <target>` (docs/evidence.md). A target that panics fails
//! the test, which names the target and prints the input in hex.

use samenloop::pseudonym::ladder::{PersonFields, SubjectFields, pseudonymise};
use samenloop::pseudonym::{Date, DomainKey, KeyId};

/// Mutations per seed and target.
const ROUNDS: usize = 20_000;

/// xorshift64*: deterministic, so a failure is reproducible from the test alone.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b":",
    b",",
    b"|",
    b"null",
    b"1e999",
    b"-0",
    b"0",
    b"9",
    b"-",
    b"'",
    b" ",
    b".",
    b"/",
    b"ij",
    b"IJ",
    b"\xc3\x9f",
    b"\xc3\xa9",
    b"\xef\xac\x81",
    b"\xff",
    b"\x00",
    b"van der ",
    b"mrt",
    b"0000",
    b"AB",
    b"\"person\"",
    b"\"household\"",
    b"\"family\"",
    b"\"bsn\"",
    b"\"subject\"",
    b"\"signals\"",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 if at < v.len() => {
                let end = (at + 1 + rng.below(8)).min(v.len());
                v.drain(at..end);
            }
            3 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let to = (from + rng.below(64)).min(other.len());
                v.splice(at..at, other[from..to].iter().copied());
            }
            4 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            _ => {
                // Repeat a piece: long fields, deep nesting.
                let end = (at + 1 + rng.below(16)).min(v.len());
                let piece = v[at.min(end)..end].to_vec();
                for _ in 0..rng.below(50) {
                    v.splice(at..at, piece.iter().copied());
                }
            }
        }
    }
    v
}

fn run(name: &str, target: fn(&[u8]), seeds: Vec<Vec<u8>>, seed: u64) {
    let mut rng = Rng(seed);
    let mut inputs = 0usize;
    let mut check = |input: &[u8]| {
        inputs += 1;
        if std::panic::catch_unwind(|| target(input)).is_err() {
            let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
            panic!("fuzz target {name} failed on input (hex) {hex}");
        }
    };
    for s in &seeds {
        check(s);
    }
    for s in &seeds {
        for _ in 0..ROUNDS {
            let m = mutate(&mut rng, &seeds, s);
            check(&m);
        }
    }
    eprintln!("{name}: {inputs} inputs");
    if let Ok(dir) = std::env::var("SAMENLOOP_FUZZ_SEEDS_OUT") {
        let dir = std::path::Path::new(&dir).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), s).unwrap();
        }
    }
}

fn record(bsn: &str, given: &str, family: &str, birth: &str) -> SubjectFields {
    SubjectFields {
        reference: "R-1".into(),
        person: PersonFields {
            bsn: bsn.into(),
            given_names: given.into(),
            family_name: family.into(),
            birth_date: birth.into(),
            ..PersonFields::default()
        },
        postcode: "1234 ab".into(),
        house_number: "12-A".into(),
        ..SubjectFields::default()
    }
}

/// A real key set on the wire, for the decoders' seeds.
fn key_set_json(with_parent: bool) -> String {
    let key = DomainKey::new(KeyId::parse("fuzz").unwrap(), [7; 32]);
    let mut s = record(
        "123456782",
        "Marieke",
        "van der Berg-de Vries",
        "07-03-1985",
    );
    if with_parent {
        s.parents = vec![record("", "Jan", "Berg", "1960-01-02").person];
    }
    pseudonymise(&key, &s, Date::parse_iso("2026-01-01").unwrap())
        .unwrap()
        .to_json()
}

fn strings(v: &[&str]) -> Vec<Vec<u8>> {
    v.iter().map(|s| s.as_bytes().to_vec()).collect()
}

#[test]
fn normalisers() {
    let seeds = strings(&[
        "123456782",
        "0123.45.672",
        "12345678",
        "1234567890",
        "Marieke Johanna|M.J.",
        "van der Berg-de Vries",
        "Vries, de|J.",
        "DE VRIES, Jan",
        "Berg, T.",
        "Ĳsbrand|Ĳ.",
        "Çelik-Öztürk",
        "O'Brien",
        "07-03-1985",
        "19850307",
        "7 mrt 1985",
        "31/02/2001",
        "1234 ab",
        "1234AB",
        "12|bis",
        "12-A",
        "V1234567890",
        "",
    ]);
    run("normalisers", samenloop::fuzz::normalisers, seeds, 1);
}

#[test]
fn subject() {
    let seeds = strings(&[
        "123456782||Marieke|M.J.|van der Berg|||07-03-1985|1234 ab|12|A||",
        "|V1234567890|Jan||Smit|||1970-01-01|||||",
        "||||||DE VRIES, Jan|7 mrt 1985|9999zz|1 bis||parent",
        "000000012|||T.|Berg|||2001-12-31|1234AB|12-3|||",
    ]);
    run("subject", samenloop::fuzz::subject, seeds, 2);
}

#[test]
fn key_set() {
    let seeds = vec![
        key_set_json(false).into_bytes(),
        key_set_json(true).into_bytes(),
        b"{}".to_vec(),
        b"[]".to_vec(),
    ];
    run("key_set", samenloop::fuzz::key_set, seeds, 3);
}

#[test]
fn request_body() {
    let subject = key_set_json(true);
    let one = format!(
        r#"{{"network":"zorgnetwerk-noord","subject":{subject},"category":"overlast","contact":{{"name":"Wijkteam","phone":"+31 20 123 4567","email":"team@example.nl"}},"valid_days":30}}"#
    );
    let batch = format!(r#"{{"signals":[{one},{one},{{"network":5}}]}}"#);
    let seeds = vec![
        one.into_bytes(),
        batch.into_bytes(),
        b"{\"signals\":[]}".to_vec(),
    ];
    run("request_body", samenloop::fuzz::request_body, seeds, 4);
}
