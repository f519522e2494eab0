//! The rotation of the index key `K_index` in place (spec/index-key-rotation.md).
//!
//! A stored P2 cannot be derived again from P1 (P1 is never stored), so a rotation to
//! epoch `k + 1` lifts every stored value `x` to `lift_{k+1}(x)` ([`IndexKey::lift`]).
//! The switch (new ring, posting lists in the new epoch, `E` keys moved) is made in one
//! transaction on the writer ([`crate::store::Writer::start_rotation`]); from then on
//! every record is lifted when it is loaded, and [`rekey_chunk`] re-writes the records
//! that are still in the old epoch, in signal-id order, a chunk per transaction, with its
//! cursor in the same transaction, so a crash resumes after the last chunk written.

use super::IndexKey;
use super::engine::{EngineError, Kv, KvRead, move_archive_keys, signal_key};
use super::model::SignalRecord;
use serde::{Deserialize, Serialize};

/// Key of the ring's record: key ids and file names, never secrets.
pub const RING_KEY: &[u8] = b"Rindex_ring";

/// One epoch of the ring as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingEpoch {
    /// The key id in the key file.
    pub key_id: String,
    /// The key file's name, in the directory of `domain.index_key_file`; `None` for
    /// epoch 0, which is `domain.index_key_file` itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// State of the last rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationPhase {
    /// Records are being re-written.
    Running,
    /// Every record is in the new epoch.
    Done,
}

/// The last (or running) rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationState {
    /// Running or done.
    pub state: RotationPhase,
    /// The key id rotated from.
    pub from_key_id: String,
    /// The key id rotated to.
    pub to_key_id: String,
    /// The epoch rotated to.
    pub target_epoch: u32,
    /// The last signal id handled (0: none yet).
    pub cursor: u64,
    /// Signal records re-written.
    pub signals_rekeyed: u64,
    /// Stored keys (P2s) re-keyed in them, archive key index entries included.
    pub keys_rekeyed: u64,
    /// Signal records at the start.
    pub signals_total: u64,
    /// Excluded-address (`E`) keys moved at the switch.
    pub excluded_moved: u64,
    /// Started (unix seconds).
    pub started_at: i64,
    /// Finished (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
}

/// The ring's record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingState {
    /// The epochs, 0 first.
    pub epochs: Vec<RingEpoch>,
    /// The last rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationState>,
}

impl RingState {
    /// The state of a store that was never rotated, with the ring it uses.
    pub fn initial(ring: &IndexKey) -> RingState {
        RingState {
            epochs: vec![RingEpoch {
                key_id: ring
                    .ids()
                    .first()
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                file: None,
            }],
            rotation: None,
        }
    }

    /// Whether a rotation is running.
    pub fn running(&self) -> bool {
        self.rotation
            .as_ref()
            .is_some_and(|r| r.state == RotationPhase::Running)
    }
}

/// Reads the ring's record (`None`: never rotated).
pub fn load(kv: &dyn KvRead) -> Result<Option<RingState>, EngineError> {
    match kv.get(RING_KEY)? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(&v)
            .map(Some)
            .map_err(|_| EngineError::Corrupt('R')),
    }
}

/// Writes the ring's record.
pub fn save(kv: &mut dyn Kv, state: &RingState) {
    // Serialising our own plain record cannot fail.
    kv.put(
        RING_KEY.to_vec(),
        serde_json::to_vec(state).unwrap_or_default(),
    );
}

/// Moves every excluded-address key (`E` + P2, [`crate::directory::excluded_key`]) to
/// `E` + lift(P2) (the values stay); returns how many.
pub fn move_excluded_keys(
    kv: &mut dyn Kv,
    ring: &IndexKey,
    epoch: u32,
) -> Result<u64, EngineError> {
    let mut n = 0;
    for (k, v) in kv.scan_prefix(&[crate::directory::EXCLUDED_PREFIX])? {
        let Some(p2) = k.get(1..).and_then(|b| <[u8; 32]>::try_from(b).ok()) else {
            continue;
        };
        kv.remove(k);
        kv.put(crate::directory::excluded_key(&ring.lift(epoch, &p2)), v);
        n += 1;
    }
    Ok(n)
}

/// What one chunk did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// No rotation is running.
    Idle,
    /// A chunk was written; the state after it (done when the last record was reached).
    Written(RotationState),
}

/// Re-writes up to `max` records after the cursor in the ring's current epoch, with
/// their archive key index entries, and moves the cursor, in the caller's transaction.
/// `ring` is the store's ring (whose epoch is the rotation's target).
pub fn rekey_chunk(
    kv: &mut dyn Kv,
    ring: &IndexKey,
    max: usize,
    now: i64,
) -> Result<Chunk, EngineError> {
    let Some(mut state) = load(kv)? else {
        return Ok(Chunk::Idle);
    };
    let Some(rot) = state
        .rotation
        .as_mut()
        .filter(|r| r.state == RotationPhase::Running)
    else {
        return Ok(Chunk::Idle);
    };
    if ring.epoch() != rot.target_epoch {
        return Err(EngineError::Store(format!(
            "the key ring is at epoch {} but the rotation targets epoch {}",
            ring.epoch(),
            rot.target_epoch
        )));
    }
    let start = signal_key(rot.cursor.saturating_add(1));
    let rows = kv.range(&start, b"t", max.max(1))?;
    for (k, v) in &rows {
        let Some(stored) = SignalRecord::decode(v) else {
            return Err(EngineError::Corrupt('s'));
        };
        rot.cursor = stored.id;
        if stored.epoch >= rot.target_epoch {
            continue;
        }
        let mut lifted = stored.clone();
        ring.lift_record(&mut lifted);
        let keys = lifted.all_keys().count() as u64;
        let archived = move_archive_keys(kv, &stored, &lifted)?;
        rot.keys_rekeyed += if archived { 2 * keys } else { keys };
        kv.put(k.clone(), lifted.encode());
        rot.signals_rekeyed += 1;
    }
    if rows.len() < max.max(1) {
        rot.state = RotationPhase::Done;
        rot.finished_at = Some(now);
    }
    let out = rot.clone();
    save(kv, &state);
    Ok(Chunk::Written(out))
}
