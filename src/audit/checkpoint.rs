//! Checkpoints of the access log: the chain head and sequence at a moment, signed with
//! the index's checkpoint key (Ed25519, a JWS), kept in the store, written to the
//! configured checkpoint file and served to privacy officers. A verifier that holds a
//! checkpoint from elsewhere can prove that the log up to it was neither changed nor
//! shortened, even by someone who rewrote the store and recomputed the chain.

use super::{Head, hex};
use crate::index::engine::{EngineError, Kv};
use crate::store::{Store, StoreError};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The `aud` of a checkpoint signature: it can never be taken for an API token.
pub const AUDIENCE: &str = "samenloop-audit-checkpoint";
/// The `iss` of a checkpoint signature.
pub const ISSUER: &str = "samenloop";
/// The JWS `typ` of a checkpoint signature.
pub const TYP: &str = "samenloop-checkpoint+jwt";

/// One checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Sequence of the last entry covered (the number of entries appended so far).
    pub seq: u64,
    /// Its chain hash (64 lowercase hex).
    pub chain: String,
    /// When it was made (RFC 3339 UTC).
    pub at: String,
    /// The pseudonymisation domain (region) of the index.
    pub domain: String,
    /// A compact JWS (EdDSA) over the same values, absent when no signing key is
    /// configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    seq: u64,
    chain: String,
    at: String,
}

/// Signs checkpoints.
pub struct Signer {
    key: EncodingKey,
    kid: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer from an Ed25519 private key in PEM (PKCS#8).
    pub fn from_pem(pem: &[u8], kid: &str) -> Result<Signer, String> {
        let key = EncodingKey::from_ed_pem(pem)
            .map_err(|e| format!("not an Ed25519 private key: {e}"))?;
        Ok(Signer {
            key,
            kid: kid.to_string(),
        })
    }

    /// The signature of a checkpoint's values.
    pub fn sign(&self, cp: &Checkpoint) -> Result<String, String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        header.typ = Some(TYP.into());
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: cp.domain.clone(),
            seq: cp.seq,
            chain: cp.chain.clone(),
            at: cp.at.clone(),
        };
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| e.to_string())
    }
}

/// Verifies checkpoint signatures.
pub struct Verifier {
    key: DecodingKey,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier from an Ed25519 public key in PEM.
    pub fn from_pem(pem: &[u8]) -> Result<Verifier, String> {
        let key =
            DecodingKey::from_ed_pem(pem).map_err(|e| format!("not an Ed25519 public key: {e}"))?;
        Ok(Verifier { key })
    }

    /// Whether the checkpoint carries a valid signature over exactly its values.
    pub fn verify(&self, cp: &Checkpoint) -> Result<(), String> {
        let sig = cp
            .signature
            .as_deref()
            .ok_or("the checkpoint is not signed")?;
        let header = jsonwebtoken::decode_header(sig).map_err(|_| "malformed signature")?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(TYP) {
            return Err("the signature is not a checkpoint signature".into());
        }
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_audience(&[AUDIENCE]);
        v.set_issuer(&[ISSUER]);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        let c = jsonwebtoken::decode::<Claims>(sig, &self.key, &v)
            .map_err(|_| "the signature does not verify with the checkpoint key")?
            .claims;
        if c.seq != cp.seq || c.chain != cp.chain || c.at != cp.at || c.sub != cp.domain {
            return Err("the signed values differ from the checkpoint's".into());
        }
        Ok(())
    }
}

/// Key of a stored checkpoint.
pub fn checkpoint_key(seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(b'K');
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The checkpoint of a head.
pub fn of_head(
    h: &Head,
    domain: &str,
    at_secs: i64,
    signer: Option<&Signer>,
) -> Result<Checkpoint, String> {
    let mut cp = Checkpoint {
        seq: h.seq,
        chain: hex(&h.chain),
        at: crate::http::rfc3339(at_secs),
        domain: domain.to_string(),
        signature: None,
    };
    if let Some(s) = signer {
        cp.signature = Some(s.sign(&cp)?);
    }
    Ok(cp)
}

/// Makes a checkpoint of the current head in the caller's transaction, unless the
/// newest checkpoint already covers it (then that one is returned, and `false`).
pub fn make(
    kv: &mut dyn Kv,
    domain: &str,
    at_secs: i64,
    signer: Option<&Signer>,
) -> Result<Option<(Checkpoint, bool)>, EngineError> {
    let h = super::head(kv)?;
    if h.seq == 0 {
        return Ok(None);
    }
    if let Some(v) = kv.get(&checkpoint_key(h.seq))? {
        let cp = serde_json::from_slice(&v).map_err(|_| EngineError::Corrupt('K'))?;
        return Ok(Some((cp, false)));
    }
    let cp = of_head(&h, domain, at_secs, signer).map_err(EngineError::Store)?;
    let v = serde_json::to_vec(&cp).map_err(|e| EngineError::Store(e.to_string()))?;
    kv.put_log(checkpoint_key(h.seq), v);
    Ok(Some((cp, true)))
}

/// Stored checkpoints, newest first, below sequence `before` (exclusive).
pub fn list(
    store: &Store,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<Checkpoint>, StoreError> {
    let end = checkpoint_key(before.unwrap_or(u64::MAX));
    let mut out = Vec::new();
    for r in store.range(checkpoint_key(0), end, true).take(limit) {
        let (_, v) = r?;
        out.push(
            serde_json::from_slice(&v).map_err(|_| StoreError::from(EngineError::Corrupt('K')))?,
        );
    }
    Ok(out)
}

/// Appends a checkpoint as one JSON line to `path` and syncs it to disk.
pub fn append_to_file(path: &std::path::Path, cp: &Checkpoint) -> std::io::Result<()> {
    use std::io::Write;
    let mut line = serde_json::to_vec(cp).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(&line)?;
    f.sync_data()
}

/// Reads a file of checkpoints (JSON Lines; empty lines ignored).
pub fn read_file(path: &std::path::Path) -> Result<Vec<Checkpoint>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|_| format!("{} line {}: not a checkpoint", path.display(), i + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (Signer, Verifier) {
        let dir = crate::config::development_config_path();
        let dir = dir.parent().unwrap();
        let sk = std::fs::read(dir.join("audit-checkpoint.dev.key.pem")).unwrap();
        let pk = std::fs::read(dir.join("audit-checkpoint.dev.pub.pem")).unwrap();
        (
            Signer::from_pem(&sk, "audit-dev").unwrap(),
            Verifier::from_pem(&pk).unwrap(),
        )
    }

    #[test]
    fn a_signed_checkpoint_verifies_and_any_change_is_caught() {
        let (s, v) = keys();
        let h = Head {
            seq: 42,
            chain: [7; 32],
            at_ms: 0,
        };
        let cp = of_head(&h, "regio-dev", 1_764_000_000, Some(&s)).unwrap();
        v.verify(&cp).unwrap();
        let mut moved = cp.clone();
        moved.seq = 41;
        assert!(v.verify(&moved).is_err());
        let mut other = cp.clone();
        other.chain = hex(&[8; 32]);
        assert!(v.verify(&other).is_err());
        let mut unsigned = cp;
        unsigned.signature = None;
        assert!(v.verify(&unsigned).is_err());
    }
}
