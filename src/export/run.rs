//! The batch pipeline: read → normalise and derive (in parallel) → write in input order.
//!
//! With one thread everything runs on the calling thread. With more, a reading
//! thread cuts batches of rows, worker threads each take whole batches, and a
//! writing thread writes the finished batches in input order; the stages overlap,
//! and batches (with their buffers) circulate between them so that steady state
//! allocates little.

use super::process::{Chunk, Ctx, process_rows};
use super::reject::{RowError, code, write_reject_json};
use super::source::{InputBatch, RowReader, Source};
use crate::pseudonym::{Date, DomainKey};
use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Write};
use std::sync::{Mutex, mpsc};

/// Rows per batch unless told otherwise: large enough that handing a batch from
/// thread to thread costs nothing, small enough to balance the workers.
pub const DEFAULT_BATCH_ROWS: usize = 2048;

/// Batches in flight per worker thread.
const IN_FLIGHT_PER_THREAD: usize = 4;

/// How to pseudonymise.
pub struct Options {
    /// The domain key.
    pub key: DomainKey,
    /// The processing date (birth dates after it are rejected).
    pub today: Date,
    /// Worker threads; 1 runs everything on the calling thread.
    pub threads: usize,
    /// Rows per batch.
    pub batch_rows: usize,
}

/// Counts of a completed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Rows written to the output.
    pub accepted: u64,
    /// Rows written to the reject report.
    pub rejected: u64,
}

/// A run that stopped before the end of the input.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The input could not be read.
    #[error("cannot read the input: {0}")]
    Read(io::Error),
    /// The output could not be written.
    #[error("cannot write the output: {0}")]
    Write(io::Error),
    /// The reject report could not be written.
    #[error("cannot write the reject report: {0}")]
    Rejects(io::Error),
    /// The worker threads could not be started or one of them failed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Told about rejected rows and progress, on the writing thread, in input order.
pub trait Observer: Send {
    /// A row was rejected. `errors` name fields and codes, never values.
    fn rejected(&mut self, line: u64, errors: &[RowError]);
    /// `bytes` of the input have been read and processed so far.
    fn progress(&mut self, _bytes: u64) {}
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {
    fn rejected(&mut self, _line: u64, _errors: &[RowError]) {}
}

/// Pseudonymises every row of `source`: one key-set line per accepted row to `out`,
/// one reject line per rejected row to `rejects`, both in input order.
///
/// Writers are flushed at the end; a fatal error stops the run with output written
/// so far left in the writers.
pub fn run<W, J, O>(
    opts: Options,
    source: Source,
    out: W,
    rejects: Option<J>,
    observer: &mut O,
) -> Result<Summary, RunError>
where
    W: Write + Send,
    J: Write + Send,
    O: Observer,
{
    let Source { mut reader, layout } = source;
    let ctx = Ctx {
        key: opts.key,
        today: opts.today,
        layout,
    };
    let rows = opts.batch_rows.max(1);
    let mut sink = Sink {
        out,
        rejects,
        observer,
        seen: HashSet::default(),
        summary: Summary::default(),
        line: String::new(),
    };
    if opts.threads <= 1 {
        let mut batch = InputBatch::default();
        let mut chunk = Chunk::default();
        loop {
            reader.fill(&mut batch, rows).map_err(RunError::Read)?;
            if batch.len() == 0 {
                break;
            }
            process_rows(&ctx, &batch, 0..batch.len(), &mut chunk);
            sink.write_chunk(&chunk)?;
            sink.observer.progress(batch.consumed);
        }
    } else {
        sink = run_parallel(&ctx, &mut reader, sink, opts.threads, rows)?;
    }
    sink.finish()
}

/// A unit of work: a batch of raw rows and the output made from it.
struct Unit {
    /// Position in the input, to write the units back in order.
    seq: u64,
    input: InputBatch,
    output: Chunk,
}

/// Reader → workers → writer, without a barrier between batches: each worker takes
/// the next unread batch as soon as it is free, and the writer puts the finished
/// batches back in input order. At most `IN_FLIGHT_PER_THREAD × threads + 2`
/// batches exist; they circulate back to the reader, so memory stays bounded.
fn run_parallel<'o, W, J, O>(
    ctx: &Ctx,
    reader: &mut RowReader,
    sink: Sink<'o, W, J, O>,
    threads: usize,
    rows: usize,
) -> Result<Sink<'o, W, J, O>, RunError>
where
    W: Write + Send,
    J: Write + Send,
    O: Observer,
{
    let units = IN_FLIGHT_PER_THREAD * threads + 2;
    let (free_tx, free_rx) = mpsc::channel::<Box<Unit>>();
    for _ in 0..units {
        let unit = Unit {
            seq: 0,
            input: InputBatch::default(),
            output: Chunk::default(),
        };
        // The receiver is alive: it is dropped only below.
        let _ = free_tx.send(Box::new(unit));
    }
    let (work_tx, work_rx) = mpsc::channel::<Box<Unit>>();
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::channel::<Box<Unit>>();
    let spawn_failed = |what: &str, e: std::io::Error| {
        RunError::Internal(format!("cannot start the {what} thread: {e}"))
    };

    std::thread::scope(|s| {
        let read = std::thread::Builder::new()
            .name("samenloop-reader".into())
            .spawn_scoped(s, move || -> io::Result<()> {
                // Stops at the end of the input, or when the writer hangs up (it failed).
                let mut seq = 0;
                while let Ok(mut unit) = free_rx.recv() {
                    reader.fill(&mut unit.input, rows)?;
                    if unit.input.len() == 0 {
                        break;
                    }
                    unit.seq = seq;
                    seq += 1;
                    if work_tx.send(unit).is_err() {
                        break;
                    }
                }
                Ok(())
            })
            .map_err(|e| spawn_failed("reader", e))?;
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let done_tx = done_tx.clone();
            let work_rx = &work_rx;
            let worker = std::thread::Builder::new()
                .name(format!("samenloop-worker-{i}"))
                .spawn_scoped(s, move || {
                    loop {
                        let next = match work_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(mut unit) = next else { return };
                        let Unit { input, output, .. } = &mut *unit;
                        process_rows(ctx, input, 0..input.len(), output);
                        if done_tx.send(unit).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| spawn_failed("worker", e))?;
            workers.push(worker);
        }
        drop(done_tx);
        let write = std::thread::Builder::new()
            .name("samenloop-writer".into())
            .spawn_scoped(s, move || -> Result<Sink<'o, W, J, O>, RunError> {
                let mut sink = sink;
                let mut next = 0u64;
                let mut waiting: BTreeMap<u64, Box<Unit>> = BTreeMap::new();
                for unit in done_rx {
                    waiting.insert(unit.seq, unit);
                    while let Some(unit) = waiting.remove(&next) {
                        sink.write_chunk(&unit.output)?;
                        sink.observer.progress(unit.input.consumed);
                        next += 1;
                        let _ = free_tx.send(unit);
                    }
                }
                if waiting.is_empty() {
                    Ok(sink)
                } else {
                    Err(RunError::Internal("a worker thread stopped early".into()))
                }
            })
            .map_err(|e| spawn_failed("writer", e))?;
        let read = read
            .join()
            .map_err(|_| RunError::Internal("the reader thread failed".into()))?;
        for w in workers {
            w.join()
                .map_err(|_| RunError::Internal("a worker thread failed".into()))?;
        }
        let sink = write
            .join()
            .map_err(|_| RunError::Internal("the writer thread failed".into()))?;
        // A read error explains a short output better than anything downstream.
        read.map_err(RunError::Read)?;
        sink
    })
}

/// A hasher for values that are already uniformly distributed (SHA-256 bits).
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, i: u128) {
        self.0 = i as u64;
    }
}

/// The writing stage: duplicate references, output, reject report, counts.
struct Sink<'o, W, J, O> {
    out: W,
    rejects: Option<J>,
    observer: &'o mut O,
    seen: HashSet<u128, BuildHasherDefault<PassThrough>>,
    summary: Summary,
    line: String,
}

impl<W: Write, J: Write, O: Observer> Sink<'_, W, J, O> {
    fn write_chunk(&mut self, chunk: &Chunk) -> Result<(), RunError> {
        // Accepted rows are contiguous in `chunk.out`; write them in runs, broken
        // only where a row turns out to repeat an earlier reference.
        let mut run: Option<(usize, usize)> = None;
        for row in &chunk.rows {
            let duplicate = match &row.reference {
                Some((hash, _)) => !self.seen.insert(*hash),
                None => false,
            };
            match (&row.result, duplicate) {
                (Ok(range), false) => {
                    self.summary.accepted += 1;
                    run = Some(match run {
                        Some((start, _)) => (start, range.end),
                        None => (range.start, range.end),
                    });
                }
                (result, _) => {
                    if let Some((start, end)) = run.take() {
                        self.write_out(&chunk.out[start..end])?;
                    }
                    let mut errors = match result {
                        Ok(_) => Vec::with_capacity(1),
                        Err(e) => e.clone(),
                    };
                    if duplicate {
                        errors.push(RowError::new(
                            "reference",
                            code::DUPLICATE_REFERENCE,
                            "an earlier row of this file has the same reference",
                        ));
                    }
                    let reference = row.reference.as_ref().map(|(_, r)| &chunk.refs[r.clone()]);
                    self.reject(row.line, reference, &errors)?;
                }
            }
        }
        if let Some((start, end)) = run {
            self.write_out(&chunk.out[start..end])?;
        }
        Ok(())
    }

    fn write_out(&mut self, text: &str) -> Result<(), RunError> {
        self.out.write_all(text.as_bytes()).map_err(RunError::Write)
    }

    fn reject(
        &mut self,
        line: u64,
        reference: Option<&str>,
        errors: &[RowError],
    ) -> Result<(), RunError> {
        self.summary.rejected += 1;
        if let Some(r) = &mut self.rejects {
            self.line.clear();
            write_reject_json(&mut self.line, line, reference, errors);
            self.line.push('\n');
            r.write_all(self.line.as_bytes())
                .map_err(RunError::Rejects)?;
        }
        self.observer.rejected(line, errors);
        Ok(())
    }

    fn finish(mut self) -> Result<Summary, RunError> {
        self.out.flush().map_err(RunError::Write)?;
        if let Some(r) = &mut self.rejects {
            r.flush().map_err(RunError::Rejects)?;
        }
        Ok(self.summary)
    }
}
