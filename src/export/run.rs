//! The batch pipeline: read → normalise and derive (in parallel) → write in input order.
//!
//! With one thread everything runs on the calling thread. With more, a reading
//! thread cuts batches of rows, a pool of workers processes each batch in chunks,
//! and a writing thread writes the chunks in order; the three stages overlap, and
//! batches (with their buffers) circulate between them so that steady state
//! allocates little.

use super::process::{Chunk, Ctx, process_rows};
use super::reject::{RowError, code, write_reject_json};
use super::source::{InputBatch, RowReader, Source};
use crate::pseudonym::{Date, DomainKey};
use rayon::prelude::*;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Write};
use std::sync::mpsc;

/// Rows per batch unless told otherwise.
pub const DEFAULT_BATCH_ROWS: usize = 8192;

/// Batches in flight between the stages.
const IN_FLIGHT: usize = 4;

/// Chunks per worker thread in a batch (load balancing within a batch).
const CHUNKS_PER_THREAD: usize = 4;

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

/// One batch with its input and the output of each of its chunks.
struct Batch {
    input: InputBatch,
    chunks: Vec<Chunk>,
}

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
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("samenloop-worker-{i}"))
        .build()
        .map_err(|e| RunError::Internal(format!("cannot start worker threads: {e}")))?;
    let (free_tx, free_rx) = mpsc::channel::<Box<Batch>>();
    for _ in 0..IN_FLIGHT {
        let batch = Batch {
            input: InputBatch::default(),
            chunks: (0..threads * CHUNKS_PER_THREAD)
                .map(|_| Chunk::default())
                .collect(),
        };
        // The receiver is alive: it is dropped only below.
        let _ = free_tx.send(Box::new(batch));
    }
    let (full_tx, full_rx) = mpsc::sync_channel::<Box<Batch>>(IN_FLIGHT);
    let (done_tx, done_rx) = mpsc::sync_channel::<Box<Batch>>(IN_FLIGHT);

    std::thread::scope(|s| {
        let read = std::thread::Builder::new()
            .name("samenloop-reader".into())
            .spawn_scoped(s, move || -> io::Result<()> {
                // Stops when a batch comes back empty (end of input) or when the
                // later stages hang up (they failed).
                while let Ok(mut b) = free_rx.recv() {
                    reader.fill(&mut b.input, rows)?;
                    if b.input.len() == 0 || full_tx.send(b).is_err() {
                        break;
                    }
                }
                Ok(())
            })
            .map_err(|e| RunError::Internal(format!("cannot start the reader: {e}")))?;
        let write = std::thread::Builder::new()
            .name("samenloop-writer".into())
            .spawn_scoped(s, move || -> Result<Sink<'o, W, J, O>, RunError> {
                let mut sink = sink;
                for b in done_rx {
                    for chunk in &b.chunks {
                        sink.write_chunk(chunk)?;
                    }
                    sink.observer.progress(b.input.consumed);
                    let _ = free_tx.send(b);
                }
                Ok(sink)
            })
            .map_err(|e| RunError::Internal(format!("cannot start the writer: {e}")))?;
        pool.install(|| {
            for mut b in full_rx {
                let Batch { input, chunks } = &mut *b;
                let len = input.len();
                let per = len.div_ceil(chunks.len()).max(1);
                chunks.par_iter_mut().enumerate().for_each(|(k, chunk)| {
                    let range = (k * per).min(len)..((k + 1) * per).min(len);
                    process_rows(ctx, input, range, chunk);
                });
                if done_tx.send(b).is_err() {
                    break;
                }
            }
            drop(done_tx);
        });
        let read = read
            .join()
            .map_err(|_| RunError::Internal("the reader thread failed".into()))?;
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
