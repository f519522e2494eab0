//! Reading a partner's export (CSV or JSON Lines) and turning each row into a key set:
//! the library behind `samenloop pseudonymise`.
//!
//! ```text
//! Source::csv / Source::jsonl   header, delimiter, column mapping   (mapping, source)
//!         │ batches of raw rows
//!         ▼
//! process (parallel)            fields → normalise → derive → JSON  (process)
//!         │ chunks in input order
//!         ▼
//! run's sink                    duplicate references, output, rejects (run, reject)
//! ```
//!
//! Every row ends up either in the output or in the reject report. Rejects name the
//! row's line, fields and reason codes, never a value.

pub mod field;
pub mod mapping;
pub(crate) mod process;
pub mod reject;
pub mod run;
pub mod source;

pub use field::{Field, PersonField};
pub use mapping::{MappingError, MappingSpec};
pub use reject::RowError;
pub use run::{Observer, Options, Quiet, RunError, Summary, run};
pub use source::{Format, OpenError, Source};

/// Longest accepted raw value of any input field, in bytes; longer is `too_long`.
pub const MAX_FIELD_BYTES: usize = 1000;
