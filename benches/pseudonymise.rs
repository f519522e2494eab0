//! Benchmarks of pseudonymisation: normalise + derive per record, and the whole
//! `pseudonymise` pipeline on an in-memory CSV export.
//!
//! Run: `cargo bench --bench pseudonymise`.
//!
//! The same file generates a synthetic partner export for measuring the CLI:
//! `SAMENLOOP_GEN_CSV=/tmp/export.csv SAMENLOOP_GEN_ROWS=1000000 cargo bench --bench pseudonymise`
//! writes the CSV and exits without benchmarking. The data is made up and mimics a
//! Dutch export: mostly with BSN, some initials only, tussenvoegsels, double names,
//! diacritics, mixed date notations, addresses, a parent for a quarter of the rows and
//! about 1% of rows with a rejectable field.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use samenloop::export::{MappingSpec, Options, Quiet, Source};
use samenloop::pseudonym::{
    Date, DomainKey, KeyId, PersonFields, SubjectFields, derive_subject, normalise_subject,
    pseudonymise,
};
use std::hint::black_box;
use std::io::Write;

const TODAY: Date = Date {
    year: 2026,
    month: 1,
    day: 1,
};

fn key() -> DomainKey {
    DomainKey::new(KeyId::parse("bench").unwrap(), [9; 32])
}

fn person(bsn: &str, given: &str, initials: &str, family: &str, date: &str) -> PersonFields {
    PersonFields {
        bsn: bsn.into(),
        given_names: given.into(),
        initials: initials.into(),
        family_name: family.into(),
        birth_date: date.into(),
        ..PersonFields::default()
    }
}

/// Representative records.
fn records() -> Vec<(&'static str, SubjectFields)> {
    vec![
        (
            "full_bsn_address_parent",
            SubjectFields {
                reference: "D-2026-000123".into(),
                person: person(
                    "111222333",
                    "Marieke Johanna",
                    "",
                    "Jansen-de Vries",
                    "07-03-2012",
                ),
                postcode: "1234 AB".into(),
                house_number: "12".into(),
                house_number_addition: "A".into(),
                parents: vec![person("012345672", "Pieter", "", "Jansen", "1980-11-02")],
            },
        ),
        (
            "initials_only_no_bsn",
            SubjectFields {
                reference: "D-2026-000124".into(),
                person: person("", "", "M.J.", "de Boer", "1985-03-07"),
                ..SubjectFields::default()
            },
        ),
        (
            "diacritics_full_name",
            SubjectFields {
                reference: "D-2026-000125".into(),
                person: PersonFields {
                    full_name: "Çelik, Ayşe Daniëlle".into(),
                    birth_date: "7 mrt 1991".into(),
                    ..PersonFields::default()
                },
                postcode: "3511AB".into(),
                house_number: "5 bis".into(),
                ..SubjectFields::default()
            },
        ),
    ]
}

fn per_record(c: &mut Criterion) {
    let key = key();
    let mut g = c.benchmark_group("record");
    for (name, rec) in records() {
        g.bench_with_input(BenchmarkId::new("normalise+derive", name), &rec, |b, r| {
            b.iter(|| pseudonymise(&key, black_box(r), TODAY))
        });
        g.bench_with_input(BenchmarkId::new("normalise", name), &rec, |b, r| {
            b.iter(|| normalise_subject(black_box(r), TODAY))
        });
        if let Ok(n) = normalise_subject(&rec, TODAY) {
            g.bench_with_input(BenchmarkId::new("derive", name), &n, |b, n| {
                b.iter(|| derive_subject(&key, black_box(n)))
            });
        }
    }
    g.finish();
}

fn pipeline(c: &mut Criterion) {
    const ROWS: usize = 20_000;
    let mut csv = Vec::new();
    write_export(&mut csv, ROWS, 1).unwrap();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(20);
    for threads in [1, 2] {
        g.bench_function(
            BenchmarkId::new("csv_rows", format!("{threads}_threads")),
            |b| {
                b.iter(|| {
                    let source = Source::csv(
                        Box::new(std::io::Cursor::new(csv.clone())),
                        None,
                        &MappingSpec::new(),
                    )
                    .unwrap();
                    let opts = Options {
                        key: key(),
                        today: TODAY,
                        threads,
                        batch_rows: samenloop::export::run::DEFAULT_BATCH_ROWS,
                    };
                    samenloop::export::run(
                        opts,
                        source,
                        std::io::sink(),
                        None::<std::io::Sink>,
                        &mut Quiet,
                    )
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, per_record, pipeline);

fn main() {
    if let Some(path) = std::env::var_os("SAMENLOOP_GEN_CSV") {
        let rows = std::env::var("SAMENLOOP_GEN_ROWS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000_000);
        let file = std::fs::File::create(&path).unwrap_or_else(|e| {
            eprintln!("cannot create {}: {e}", path.to_string_lossy());
            std::process::exit(1)
        });
        let mut w = std::io::BufWriter::new(file);
        if let Err(e) = write_export(&mut w, rows, 1).and_then(|()| w.flush()) {
            eprintln!("cannot write {}: {e}", path.to_string_lossy());
            std::process::exit(1);
        }
        eprintln!("wrote {rows} rows to {}", path.to_string_lossy());
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

// ---- synthetic export -------------------------------------------------------

/// splitmix64: small, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const GIVEN: &[&str] = &[
    "Jan",
    "Pieter",
    "Marieke",
    "Sanne",
    "Daan",
    "Emma",
    "Noah",
    "Julia",
    "Lucas",
    "Sophie",
    "Mohammed",
    "Fatima",
    "Thijs",
    "Anouk",
    "Bram",
    "Femke",
    "Jeroen",
    "Lotte",
    "Sem",
    "Tess",
    "Daniël",
    "Chloë",
    "Ayşe",
    "Willemijn",
    "Johannes",
    "Hendrik",
    "Cornelis",
    "Maria",
    "Johanna",
    "Wilhelmina",
    "Kees",
    "Ruud",
    "Joost",
    "Mila",
    "Yusuf",
    "Zeynep",
];
const FAMILY: &[&str] = &[
    "Jansen",
    "de Vries",
    "van den Berg",
    "van Dijk",
    "Bakker",
    "Janssen",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
    "de Wit",
    "Dijkstra",
    "Smits",
    "de Graaf",
    "van der Meer",
    "van der Linden",
    "Kok",
    "Jacobs",
    "de Haan",
    "Vermeulen",
    "van den Heuvel",
    "Yılmaz",
    "Çelik",
    "El Amrani",
    "Bouzid",
    "Schouten",
    "van 't Hof",
    "d'Ancona",
];

fn bsn(rng: &mut Rng) -> String {
    loop {
        let mut d = [0u64; 9];
        d[0] = 1 + rng.below(6);
        for x in d.iter_mut().take(8).skip(1) {
            *x = rng.below(10);
        }
        let sum: u64 = (0..8).map(|i| (9 - i as u64) * d[i]).sum();
        let last = sum % 11;
        if last < 10 {
            d[8] = last;
            return d.iter().map(|x| char::from(b'0' + *x as u8)).collect();
        }
    }
}

fn date(rng: &mut Rng, from_year: u64, span: u64) -> String {
    let (y, m, d) = (
        from_year + rng.below(span),
        1 + rng.below(12),
        1 + rng.below(28),
    );
    match rng.below(10) {
        0..=4 => format!("{y:04}-{m:02}-{d:02}"),
        5..=8 => format!("{d:02}-{m:02}-{y:04}"),
        _ => format!("{d}/{m}/{y}"),
    }
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes a synthetic CSV export of `rows` rows.
fn write_export(w: &mut impl Write, rows: usize, seed: u64) -> std::io::Result<()> {
    let mut rng = Rng(seed);
    writeln!(
        w,
        "reference,bsn,given_names,initials,family_name,birth_date,postcode,house_number,\
         house_number_addition,parent1.bsn,parent1.given_names,parent1.family_name,parent1.birth_date,notes"
    )?;
    for i in 0..rows {
        let with_bsn = rng.chance(70);
        let initials_only = rng.chance(15);
        let given = if initials_only {
            String::new()
        } else if rng.chance(40) {
            format!("{} {}", rng.pick(GIVEN), rng.pick(GIVEN))
        } else {
            rng.pick(GIVEN).to_string()
        };
        let initials = if initials_only {
            format!("{}.{}.", &rng.pick(GIVEN)[..1], &rng.pick(GIVEN)[..1])
        } else {
            String::new()
        };
        let family = if rng.chance(15) {
            format!("{}-{}", rng.pick(FAMILY), rng.pick(FAMILY))
        } else {
            rng.pick(FAMILY).to_string()
        };
        let child = rng.chance(25);
        let mut birth = if child {
            date(&mut rng, 2008, 17)
        } else {
            date(&mut rng, 1940, 65)
        };
        let mut b = if with_bsn {
            bsn(&mut rng)
        } else {
            String::new()
        };
        // About 1% of rows carry a rejectable value.
        match rng.below(200) {
            0 => birth = "30-02-1985".into(),
            1 if with_bsn => b.replace_range(8..9, if b.ends_with('0') { "1" } else { "0" }),
            _ => {}
        }
        let (postcode, number, addition) = if rng.chance(80) {
            (
                // Letters A-R first: never the unissued SA, SD, SS.
                format!(
                    "{}{:03} {}{}",
                    1 + rng.below(9),
                    rng.below(1000),
                    char::from(b'A' + rng.below(18) as u8),
                    char::from(b'A' + rng.below(26) as u8),
                ),
                (1 + rng.below(300)).to_string(),
                if rng.chance(10) {
                    "A".to_string()
                } else {
                    String::new()
                },
            )
        } else {
            Default::default()
        };
        let parent = if child {
            [
                if rng.chance(70) {
                    bsn(&mut rng)
                } else {
                    String::new()
                },
                rng.pick(GIVEN).to_string(),
                family.split('-').next().unwrap_or_default().to_string(),
                date(&mut rng, 1965, 25),
            ]
        } else {
            Default::default()
        };
        writeln!(
            w,
            "D-{i:07},{b},{},{},{},{birth},{postcode},{number},{addition},{},{},{},{},{}",
            quote(&given),
            quote(&initials),
            quote(&family),
            parent[0],
            quote(&parent[1]),
            quote(&parent[2]),
            parent[3],
            if rng.chance(5) {
                "\"zie dossier, bel eerst\""
            } else {
                ""
            },
        )?;
    }
    Ok(())
}
