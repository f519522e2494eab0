//! The rotation of `K_index` inside `serve` (spec/index-key-rotation.md): the key file
//! an admin names, the status answer, and the background worker that re-writes the
//! records still in the old epoch, chunk by chunk, until none is left. The worker also
//! resumes a rotation that a stop or crash interrupted: it starts with the server.

use super::State;
use super::error::ApiError;
use crate::index::IndexKey;
use crate::index::rotation::{RingState, RotationPhase};
use crate::pseudonym::keyfile::{INDEX_KEY_FILE_FORMAT, KeyFileError, read_secret_file};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use zeroize::Zeroizing;

/// A key file an admin named, read and checked.
pub struct NamedKey {
    /// Its file name in the index key directory (what the database records).
    pub file: String,
    /// Its key id.
    pub key_id: String,
    /// Its secret.
    pub secret: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedKey")
            .field("file", &self.file)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::InvalidKeyFile(format!("key_file: {}", detail.into()))
}

/// Resolves `name` in `dir` (the directory of `domain.index_key_file`) and reads it as
/// an index key file. `name` is a plain file name, or an absolute path to a file in
/// that directory; anything that leads elsewhere (`..`, other directories, a symbolic
/// link out of it) is refused, and so is a file that is not an index key file.
pub fn read_named_key(dir: &Path, name: &str) -> Result<NamedKey, ApiError> {
    let candidate = Path::new(name);
    let file = if candidate.is_absolute() {
        let parent = candidate.parent().unwrap_or(Path::new("/"));
        let same = match (parent.canonicalize(), dir.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !same {
            return Err(bad(
                "an absolute path must name a file in the directory of domain.index_key_file",
            ));
        }
        candidate
            .file_name()
            .and_then(|f| f.to_str())
            .ok_or_else(|| bad("no file name"))?
            .to_string()
    } else {
        name.to_string()
    };
    if file.is_empty()
        || file.len() > 255
        || file == "."
        || file == ".."
        || file.contains(['/', '\\', '\0'])
    {
        return Err(bad(
            "a plain file name in the directory of domain.index_key_file (no '/', no '..')",
        ));
    }
    let path: PathBuf = dir.join(&file);
    // A symbolic link may not lead out of the directory either.
    match (path.canonicalize(), dir.canonicalize()) {
        (Ok(real), Ok(d)) if real.parent() == Some(d.as_path()) => {}
        (Err(_), _) => {
            return Err(bad(
                "no such file in the directory of domain.index_key_file",
            ));
        }
        _ => {
            return Err(bad(
                "the file leads out of the directory of domain.index_key_file",
            ));
        }
    }
    let (id, secret) = read_secret_file(&path, INDEX_KEY_FILE_FORMAT).map_err(|e| match e {
        KeyFileError::Io { source, .. } => bad(format!("cannot read the file ({})", source.kind())),
        KeyFileError::Malformed { detail, .. } => {
            bad(format!("not a samenloop index key file: {detail}"))
        }
        KeyFileError::Random(_) => ApiError::Internal,
    })?;
    Ok(NamedKey {
        file,
        key_id: id.to_string(),
        secret,
    })
}

/// The answer of `GET /v1/admin/index-key/rotation` (and of a start).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RotationStatus {
    /// `idle` (never rotated), `running` or `done`.
    pub state: String,
    /// The current index epoch (0 before any rotation).
    pub epoch: u32,
    /// The key ids of the ring, epoch 0 first.
    pub key_ids: Vec<String>,
    /// The key id of the last rotation's old key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_key_id: Option<String>,
    /// The key id of the last rotation's new key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_key_id: Option<String>,
    /// Signal records re-written.
    pub signals_rekeyed: u64,
    /// Stored keys re-keyed (archive key index entries included).
    pub keys_rekeyed: u64,
    /// Signal records when the rotation started.
    pub signals_total: u64,
    /// Excluded-address keys moved at the switch.
    pub excluded_moved: u64,
    /// Started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

impl RotationStatus {
    /// The status a ring's record (none: never rotated) and the ring in force give.
    pub fn of(state: Option<&RingState>, ring: &IndexKey) -> RotationStatus {
        let rot = state.and_then(|s| s.rotation.as_ref());
        RotationStatus {
            state: match rot.map(|r| r.state) {
                None => "idle",
                Some(RotationPhase::Running) => "running",
                Some(RotationPhase::Done) => "done",
            }
            .into(),
            epoch: ring.epoch(),
            key_ids: ring.ids().into_iter().map(String::from).collect(),
            from_key_id: rot.map(|r| r.from_key_id.clone()),
            to_key_id: rot.map(|r| r.to_key_id.clone()),
            signals_rekeyed: rot.map_or(0, |r| r.signals_rekeyed),
            keys_rekeyed: rot.map_or(0, |r| r.keys_rekeyed),
            signals_total: rot.map_or(0, |r| r.signals_total),
            excluded_moved: rot.map_or(0, |r| r.excluded_moved),
            started_at: rot.map(|r| super::rfc3339(r.started_at)),
            finished_at: rot.and_then(|r| r.finished_at).map(super::rfc3339),
        }
    }
}

/// Starts the worker: while a rotation runs, one chunk per transaction
/// (`limits.rotation_chunk_signals`), `limits.rotation_pause_ms` apart; otherwise it
/// looks every 250 ms whether one was started.
pub fn spawn(state: State) {
    actix_web::rt::spawn(async move {
        let chunk = state.cfg.limits.rotation_chunk_signals.max(1);
        let pause = std::time::Duration::from_millis(state.cfg.limits.rotation_pause_ms);
        let idle = std::time::Duration::from_millis(250);
        let mut stop = state.shutdown.subscribe();
        loop {
            if *stop.borrow() {
                break;
            }
            let running = state
                .store
                .rotation_progress()
                .running
                .load(Ordering::Relaxed);
            let wait = if running {
                match crate::store::rotation::rekey_chunk(
                    &state.writer,
                    &state.store,
                    chunk,
                    state.now(),
                )
                .await
                {
                    Ok(Some(r)) if r.state == RotationPhase::Done => {
                        eprintln!(
                            "samenloop: rotation of the index key to {:?} done: {} signals, {} keys re-keyed",
                            r.to_key_id, r.signals_rekeyed, r.keys_rekeyed
                        );
                        idle
                    }
                    Ok(Some(_)) => pause,
                    Ok(None) => {
                        state
                            .store
                            .rotation_progress()
                            .running
                            .store(false, Ordering::Relaxed);
                        idle
                    }
                    Err(e) => {
                        eprintln!(
                            "samenloop: rotation of the index key: a chunk failed: {e}; retrying"
                        );
                        std::time::Duration::from_secs(1)
                    }
                }
            } else {
                idle
            };
            if wait.is_zero() {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
    });
}
