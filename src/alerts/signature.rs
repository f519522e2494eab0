//! Webhook signatures (`spec/webhooks.md`): HMAC-SHA256 with the network's shared
//! secret over `"{timestamp}.{body}"`, sent as `Samenloop-Signature: t=<unix>,v1=<hex>`.
//!
//! The secret file has the shape of the other key files (`keys-example/`):
//!
//! ```toml
//! format = "samenloop-webhook-secret/1"
//! key_id = "noord-2026-1"
//! secret = "64 hexadecimal digits"
//! ```
//!
//! The HMAC key is the 32 bytes the hex digits encode.

use crate::pseudonym::keyfile::{KeyFileError, read_secret_file};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;
use zeroize::Zeroizing;

/// The `format` of a webhook secret file.
pub const WEBHOOK_SECRET_FORMAT: &str = "samenloop-webhook-secret/1";

/// Header with the timestamp and signature.
pub const SIGNATURE_HEADER: &str = "Samenloop-Signature";
/// Header with the event id (stable across attempts: de-duplicate on it).
pub const EVENT_ID_HEADER: &str = "Samenloop-Event-Id";
/// Header with the event type (`match.formed`, ...).
pub const EVENT_TYPE_HEADER: &str = "Samenloop-Event-Type";

/// How old a signature's timestamp may be before a receiver refuses it (spec: 5 minutes).
pub const TOLERANCE_SECS: i64 = 300;

/// A network's shared webhook secret. Never printed.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// A secret from its 32 bytes.
    pub fn from_bytes(key: [u8; 32]) -> WebhookSecret {
        WebhookSecret {
            key: Zeroizing::new(key),
        }
    }

    /// Reads a secret file (`format = "samenloop-webhook-secret/1"`).
    pub fn read(path: &Path) -> Result<WebhookSecret, KeyFileError> {
        let (_, key) = read_secret_file(path, WEBHOOK_SECRET_FORMAT)?;
        Ok(WebhookSecret { key })
    }

    fn mac(&self, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&*self.key).expect("any key length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The hex HMAC-SHA256 of `"{timestamp}.{body}"`.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(timestamp, body).finalize().into_bytes();
        tag.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The value of the `Samenloop-Signature` header.
    pub fn header(&self, timestamp: i64, body: &[u8]) -> String {
        format!("t={timestamp},v1={}", self.sign(timestamp, body))
    }

    /// Verifies a `Samenloop-Signature` header over `body` at time `now` (unix seconds):
    /// the timestamp must be at most [`TOLERANCE_SECS`] old (or ahead), and one `v1`
    /// value must be the HMAC (compared in constant time).
    pub fn verify(&self, header: &str, body: &[u8], now: i64) -> Result<i64, VerifyError> {
        let mut t = None;
        let mut sigs = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", v)) => t = v.parse::<i64>().ok(),
                Some(("v1", v)) => sigs.push(v),
                _ => {}
            }
        }
        let t = t.ok_or(VerifyError::Malformed)?;
        if sigs.is_empty() {
            return Err(VerifyError::Malformed);
        }
        if (now - t).abs() > TOLERANCE_SECS {
            return Err(VerifyError::Stale);
        }
        for s in sigs {
            let Some(tag) = decode_hex(s) else { continue };
            // `verify_slice` compares in constant time.
            if self.mac(t, body).verify_slice(&tag).is_ok() {
                return Ok(t);
            }
        }
        Err(VerifyError::Mismatch)
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The header is missing `t=` or `v1=`.
    #[error("the signature header is malformed")]
    Malformed,
    /// The timestamp is more than 5 minutes away from now.
    #[error("the signature's timestamp is too old (or in the future)")]
    Stale,
    /// No `v1` value matches.
    #[error("the signature does not match")]
    Mismatch,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The test vector of `spec/webhooks.md`.
    #[test]
    fn spec_vector() {
        let spec =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/webhooks.md"))
                .unwrap();
        let field = |name: &str| {
            let line = spec
                .lines()
                .find(|l| l.starts_with(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("{name} in the spec"));
            line[name.len() + 2..].trim().trim_matches('`').to_string()
        };
        let secret_hex = field("secret");
        let mut key = [0u8; 32];
        key.copy_from_slice(&decode_hex(&secret_hex).unwrap());
        let s = WebhookSecret::from_bytes(key);
        let t: i64 = field("timestamp").parse().unwrap();
        let body = field("body");
        let sig = field("signature");
        assert_eq!(s.sign(t, body.as_bytes()), sig);
        assert_eq!(
            field("header"),
            format!("t={t},v1={sig}"),
            "the header line agrees"
        );
        assert_eq!(s.verify(&field("header"), body.as_bytes(), t + 10), Ok(t));
    }

    #[test]
    fn verification_refuses_what_it_must() {
        let s = WebhookSecret::from_bytes([7; 32]);
        let other = WebhookSecret::from_bytes([8; 32]);
        let body = br#"{"event_id":"evt_1"}"#;
        let h = s.header(1_000_000, body);
        assert_eq!(s.verify(&h, body, 1_000_000), Ok(1_000_000));
        assert_eq!(
            other.verify(&h, body, 1_000_000),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            s.verify(&h, b"{\"event_id\":\"evt_2\"}", 1_000_000),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(s.verify(&h, body, 1_000_301), Err(VerifyError::Stale));
        assert_eq!(s.verify("v1=00", body, 1), Err(VerifyError::Malformed));
        assert_eq!(s.verify("t=1", body, 1), Err(VerifyError::Malformed));
        assert_eq!(
            s.verify("t=1000000,v1=zz", body, 1_000_000),
            Err(VerifyError::Mismatch)
        );
        // Another signature beside the right one (a receiver during secret rotation).
        let both = format!(
            "t=1000000,v1={},v1={}",
            "ab".repeat(32),
            s.sign(1_000_000, body)
        );
        assert_eq!(s.verify(&both, body, 1_000_000), Ok(1_000_000));
    }

    #[test]
    fn the_dev_secret_file_loads() {
        let p = crate::config::development_config_path()
            .parent()
            .unwrap()
            .join("webhook-secret.dev.toml");
        WebhookSecret::read(&p).unwrap();
    }
}
