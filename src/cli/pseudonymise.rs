//! `samenloop pseudonymise`: a partner export (CSV or JSON Lines) in, key sets
//! (JSON Lines, spec/pseudonymisation.md §7) out. The work is done by [`crate::export`].

use crate::export::reject::describe;
use crate::export::{Format, MappingSpec, Observer, Options, RowError, Source, Summary};
use crate::pseudonym::Date;
use crate::pseudonym::keyfile::read_key_file;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Rejected rows described one by one on stderr; the rest are only counted.
const SHOWN_REJECTS: u64 = 50;

/// More worker threads than this are not started, whatever --threads says.
const MAX_THREADS: usize = 256;

/// Arguments of `samenloop pseudonymise`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Canonical fields (FIELD in --map and in a mapping file's [columns] table):
  reference, bsn, v_number, given_names, initials, prefix, family_name, full_name,
  birth_date, postcode, house_number, house_number_addition, and for N = 1..4
  parentN.bsn, parentN.v_number, parentN.given_names, parentN.initials,
  parentN.prefix, parentN.family_name, parentN.full_name, parentN.birth_date.
A column (CSV header or JSON key) named like a field, ignoring case, feeds that field
unless the field or the column is mapped explicitly. Other columns are ignored.

Every input row ends up either in the output or among the rejects (described on
stderr, the first 50 of them, and all in the --rejects report). A row whose reference
an earlier row already had is rejected (duplicate_reference). Exit status: 0 all rows
pseudonymised, 3 some rows rejected, 1 fatal error, 2 usage error.")]
pub struct Args {
    /// Domain key file (K_domain), e.g. keys-example/domain-key.dev.toml.
    #[arg(long, value_name = "PATH")]
    pub key: PathBuf,
    /// The partner export; `-` reads standard input.
    #[arg(long, value_name = "PATH")]
    pub input: PathBuf,
    /// Input format [default: jsonl for *.jsonl and *.ndjson, else csv].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<InputFormat>,
    /// Where to write the key sets (JSON Lines); `-` is standard output.
    #[arg(long, value_name = "PATH", default_value = "-")]
    pub output: PathBuf,
    /// Write a reject report (JSON Lines: line, reference, field, code, message; never values).
    #[arg(long, value_name = "PATH")]
    pub rejects: Option<PathBuf>,
    /// Map a column to a canonical field, e.g. --map birth_date=Geboortedatum (repeatable;
    /// overrides the mapping file).
    #[arg(long = "map", value_name = "FIELD=COLUMN", value_parser = parse_map)]
    pub map: Vec<(String, String)>,
    /// Mapping file: TOML with a [columns] table of field = "Column header".
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// CSV field delimiter: one character, or `tab` [default: detected from the header
    /// line among , ; TAB |].
    #[arg(long, value_name = "CHAR", value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,
    /// Worker threads [default: available parallelism].
    #[arg(long, value_name = "N")]
    pub threads: Option<NonZeroUsize>,
    /// Processing date; later birth dates are rejected [default: today (UTC)].
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub today: Option<Date>,
}

/// Input formats.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Comma-separated values with a header row (RFC 4180).
    Csv,
    /// One JSON object per line.
    Jsonl,
}

pub(crate) fn parse_map(s: &str) -> Result<(String, String), String> {
    MappingSpec::parse_flag(s)
}

pub(crate) fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "tab" | "TAB" | "\\t" | "\t" => Ok(b'\t'),
        _ if s.len() == 1 && s != "\"" && s != "\n" && s != "\r" => Ok(s.as_bytes()[0]),
        _ => Err("expected one ASCII character other than a quote or newline, or `tab`".into()),
    }
}

pub(crate) fn parse_date(s: &str) -> Result<Date, String> {
    Date::parse_iso(s).ok_or_else(|| "expected a date YYYY-MM-DD".to_string())
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    match run_inner(args) {
        Ok(summary) => {
            eprintln!(
                "pseudonymised {} rows, rejected {} rows",
                summary.accepted, summary.rejected
            );
            if summary.rejected > 0 {
                ExitCode::from(super::EXIT_REJECTS)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(Fatal(msg)) => super::fail(msg),
    }
}

/// A fatal error, already phrased for the user.
struct Fatal(String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(e: E) -> Fatal {
        Fatal(e.to_string())
    }
}

fn run_inner(args: Args) -> Result<Summary, Fatal> {
    let today = args.today.unwrap_or_else(Date::today_utc);
    let key = read_key_file(&args.key)?;

    let mut mapping = match &args.mapping {
        Some(path) => MappingSpec::read_file(path).map_err(Fatal)?,
        None => MappingSpec::new(),
    };
    for (field, column) in &args.map {
        mapping.set(field, column);
    }

    let stdin = args.input.as_os_str() == "-";
    let format = match args.format {
        Some(InputFormat::Csv) => Format::Csv,
        Some(InputFormat::Jsonl) => Format::Jsonl,
        None => format_from_extension(&args.input),
    };
    if format == Format::Jsonl && args.delimiter.is_some() {
        return Err(Fatal("--delimiter applies to CSV input only".into()));
    }
    let (input, input_len): (Box<dyn Read + Send>, Option<u64>) = if stdin {
        (Box::new(io::stdin()), None)
    } else {
        let file = File::open(&args.input)
            .map_err(|e| Fatal(format!("cannot read input {}: {e}", args.input.display())))?;
        let len = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        (Box::new(file), len)
    };
    let source = match format {
        Format::Csv => Source::csv(input, args.delimiter, &mapping),
        Format::Jsonl => Source::jsonl(input, &mapping),
    }
    .map_err(|e| Fatal(format!("{}: {e}", input_name(&args.input))))?;

    let to_stdout = args.output.as_os_str() == "-";
    if !stdin {
        for out in std::iter::once(&args.output)
            .filter(|_| !to_stdout)
            .chain(args.rejects.iter())
        {
            if same_file(out, &args.input) {
                return Err(Fatal(format!(
                    "{} is the input; refusing to overwrite it",
                    out.display()
                )));
            }
        }
    }
    if let Some(r) = &args.rejects {
        if !to_stdout && same_path(r, &args.output) {
            return Err(Fatal("--rejects and --output name the same file".into()));
        }
    }

    let mut out = if to_stdout {
        Output::Stdout(BufWriter::with_capacity(1 << 20, io::stdout()))
    } else {
        Output::file(&args.output)?
    };
    let mut rejects = match &args.rejects {
        Some(path) => match Output::file(path) {
            Ok(r) => Some(r),
            Err(e) => {
                out.discard();
                return Err(e);
            }
        },
        None => None,
    };

    let threads = args
        .threads
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get)
        .min(MAX_THREADS);
    let bar = input_len
        .filter(|_| io::stderr().is_terminal())
        .map(progress_bar);
    let mut report = Report {
        shown: 0,
        rejected: 0,
        bar,
    };
    let opts = Options {
        key,
        today,
        threads,
        batch_rows: crate::export::run::DEFAULT_BATCH_ROWS,
    };
    let result = crate::export::run(opts, source, &mut out, rejects.as_mut(), &mut report);
    if let Some(bar) = &report.bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(summary) => {
            if report.rejected > report.shown {
                eprintln!(
                    "... and {} more rejected rows",
                    report.rejected - report.shown
                );
            }
            let kept = out.keep();
            let kept_rejects = rejects.map(Output::keep).transpose();
            match (kept, kept_rejects) {
                (Ok(()), Ok(_)) => Ok(summary),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        Err(e) => {
            out.discard();
            if let Some(r) = rejects {
                r.discard();
            }
            Err(Fatal(e.to_string()))
        }
    }
}

/// `.jsonl` and `.ndjson` files are JSON Lines; everything else (and stdin) is CSV.
pub(crate) fn format_from_extension(path: &Path) -> Format {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("jsonl" | "ndjson") => Format::Jsonl,
        _ => Format::Csv,
    }
}

fn input_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "standard input".to_string()
    } else {
        path.display().to_string()
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    a == b || same_file(a, b)
}

fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Tells the user about rejected rows and progress on stderr. Row descriptions
/// hold line numbers, field names and codes only.
struct Report {
    shown: u64,
    rejected: u64,
    bar: Option<ProgressBar>,
}

impl Observer for Report {
    fn rejected(&mut self, line: u64, errors: &[RowError]) {
        self.rejected += 1;
        if self.shown < SHOWN_REJECTS {
            self.shown += 1;
            let text = describe(line, errors);
            match &self.bar {
                Some(bar) => bar.suspend(|| eprintln!("{text}")),
                None => eprintln!("{text}"),
            }
        }
    }

    fn progress(&mut self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
        }
    }
}

/// An output: standard output, or a file written under a temporary name next to
/// its destination and renamed into place only when the run completes, so that a
/// failed run never leaves a truncated file that looks complete. Special files
/// (`/dev/null`, pipes) are written directly.
enum Output {
    Stdout(BufWriter<io::Stdout>),
    File {
        writer: BufWriter<File>,
        partial: Option<PathBuf>,
        dest: PathBuf,
    },
}

impl Output {
    fn file(dest: &Path) -> Result<Output, Fatal> {
        let cannot = |e: io::Error| Fatal(format!("cannot write {}: {e}", dest.display()));
        let special = dest.metadata().is_ok_and(|m| !m.is_file());
        if special {
            let f = File::options().write(true).open(dest).map_err(cannot)?;
            return Ok(Output::File {
                writer: BufWriter::with_capacity(1 << 20, f),
                partial: None,
                dest: dest.to_path_buf(),
            });
        }
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        let partial = dest.with_file_name(format!(".{name}.{}.partial", std::process::id()));
        let mut opts = File::options();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            // Key sets are pseudonymous personal data: owner only.
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let f = opts.open(&partial).map_err(cannot)?;
        Ok(Output::File {
            writer: BufWriter::with_capacity(1 << 20, f),
            partial: Some(partial),
            dest: dest.to_path_buf(),
        })
    }

    /// Flushes and moves the file into place.
    fn keep(self) -> Result<(), Fatal> {
        match self {
            Output::Stdout(mut w) => w
                .flush()
                .map_err(|e| Fatal(format!("cannot write the output: {e}"))),
            Output::File {
                writer,
                partial,
                dest,
            } => {
                let cannot = |e: io::Error| Fatal(format!("cannot write {}: {e}", dest.display()));
                let file = writer.into_inner().map_err(|e| cannot(e.into_error()))?;
                if let Some(partial) = partial {
                    file.sync_all().map_err(cannot)?;
                    drop(file);
                    std::fs::rename(&partial, &dest).map_err(|e| {
                        let _ = std::fs::remove_file(&partial);
                        cannot(e)
                    })?;
                }
                Ok(())
            }
        }
    }

    /// Removes the partial file of a failed run.
    fn discard(self) {
        if let Output::File {
            writer,
            partial: Some(partial),
            ..
        } = self
        {
            drop(writer.into_parts());
            let _ = std::fs::remove_file(partial);
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::File { writer, .. } => writer.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.write_all(buf),
            Output::File { writer, .. } => writer.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::File { writer, .. } => writer.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_parsers() {
        assert_eq!(parse_delimiter(";"), Ok(b';'));
        assert_eq!(parse_delimiter("tab"), Ok(b'\t'));
        assert!(parse_delimiter("\"").is_err());
        assert!(parse_delimiter(";;").is_err());
        assert_eq!(
            parse_date("2026-01-01").map(|d| d.to_string()),
            Ok("2026-01-01".into())
        );
        assert!(parse_date("1-1-2026").is_err());
        assert_eq!(format_from_extension(Path::new("a.NDJSON")), Format::Jsonl);
        assert_eq!(format_from_extension(Path::new("a.jsonl")), Format::Jsonl);
        assert_eq!(format_from_extension(Path::new("a.csv")), Format::Csv);
        assert_eq!(format_from_extension(Path::new("-")), Format::Csv);
    }
}
