//! Key derivation `HMAC-SHA256(K_domain, "samenloop/v1/" || kind || 0x00 || value)` (spec §6).

use super::kind::KeyKind;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

/// The fixed prefix of every derivation input in spec version 1.
pub const DERIVATION_PREFIX: &[u8] = b"samenloop/v1/";

/// The input of the key fingerprint; `fingerprint` is reserved and never a key kind.
pub const FINGERPRINT_INPUT: &[u8] = b"samenloop/v1/fingerprint\x00";

/// Length of a pseudonym in bytes.
pub const PSEUDONYM_LEN: usize = 32;

/// A domain key identifier (epoch): `[a-z0-9][a-z0-9._-]{0,63}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Parses a key id; `None` if it does not fit the pattern.
    pub fn parse(s: &str) -> Option<KeyId> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 64
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
            });
        ok.then(|| KeyId(s.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One partner-side pseudonym (P1): the kind and 32 bytes of HMAC output.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pseudonym {
    /// Which rung of the ladder it came from.
    pub kind: KeyKind,
    /// The HMAC-SHA256 output.
    pub bytes: [u8; PSEUDONYM_LEN],
}

impl fmt::Debug for Pseudonym {
    // Deliberately opaque: pseudonyms are personal data and must not end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pseudonym({}:…)", self.kind.code())
    }
}

impl Pseudonym {
    /// The wire form `kind:base64url` (spec §7.1), appended to `out`.
    pub fn write_wire(&self, out: &mut String) {
        out.push_str(self.kind.code());
        out.push(':');
        let mut buf = [0u8; 43];
        match URL_SAFE_NO_PAD.encode_slice(self.bytes, &mut buf) {
            Ok(43) => out.push_str(std::str::from_utf8(&buf).unwrap_or_default()),
            _ => URL_SAFE_NO_PAD.encode_string(self.bytes, out),
        }
    }

    /// The wire form as a new string.
    pub fn to_wire(&self) -> String {
        let mut s = String::with_capacity(48);
        self.write_wire(&mut s);
        s
    }

    /// Parses the wire form `kind:base64url`.
    pub fn from_wire(s: &str) -> Option<Pseudonym> {
        let (kind, b64) = s.split_once(':')?;
        let kind: KeyKind = kind.parse().ok()?;
        if b64.len() != 43 {
            return None;
        }
        let mut bytes = [0u8; PSEUDONYM_LEN];
        let n = URL_SAFE_NO_PAD.decode_slice(b64, &mut bytes).ok()?;
        (n == PSEUDONYM_LEN).then_some(Pseudonym { kind, bytes })
    }
}

/// The region's pseudonymisation key `K_domain` with its id, ready to derive.
///
/// The secret is zeroised on drop; the precomputed HMAC states hold key-derived
/// material only for as long as the key is loaded.
pub struct DomainKey {
    id: KeyId,
    secret: Zeroizing<[u8; 32]>,
    /// One HMAC state per kind, already fed with `prefix || kind || 0x00`.
    per_kind: Vec<Hmac<Sha256>>,
}

impl fmt::Debug for DomainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Clone for DomainKey {
    fn clone(&self) -> Self {
        DomainKey::new(self.id.clone(), *self.secret)
    }
}

impl DomainKey {
    /// A key from its id and 32 secret bytes.
    pub fn new(id: KeyId, secret: [u8; 32]) -> DomainKey {
        let secret = Zeroizing::new(secret);
        let per_kind = KeyKind::ALL
            .iter()
            .map(|kind| {
                #[allow(clippy::expect_used)] // HMAC accepts keys of any length.
                let mut mac = Hmac::<Sha256>::new_from_slice(&*secret).expect("any key length");
                mac.update(DERIVATION_PREFIX);
                mac.update(kind.code().as_bytes());
                mac.update(&[0]);
                mac
            })
            .collect();
        DomainKey {
            id,
            secret,
            per_kind,
        }
    }

    /// The key id carried in every key set derived with this key.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The secret bytes (for writing a key file).
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The key's fingerprint (spec §6.3): the first 8 bytes of
    /// `HMAC-SHA256(K_domain, "samenloop/v1/fingerprint" || 0x00)` as 16 lowercase hex digits.
    /// Two parties with the same fingerprint hold the same key; it reveals nothing usable.
    pub fn fingerprint(&self) -> String {
        #[allow(clippy::expect_used)] // HMAC accepts keys of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&*self.secret).expect("any key length");
        mac.update(FINGERPRINT_INPUT);
        mac.finalize().into_bytes()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Derives the pseudonym of `value` for `kind`.
    pub fn derive(&self, kind: KeyKind, value: &str) -> Pseudonym {
        let mut mac = self.per_kind[kind.index()].clone();
        mac.update(value.as_bytes());
        Pseudonym {
            kind,
            bytes: mac.finalize().into_bytes().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_matches_plain_hmac() {
        let key = DomainKey::new(KeyId::parse("t").unwrap(), [7u8; 32]);
        let p = key.derive(KeyKind::Bsn, "111222333");
        let mut mac = Hmac::<Sha256>::new_from_slice(&[7u8; 32]).unwrap();
        mac.update(b"samenloop/v1/bsn\x00111222333");
        assert_eq!(p.bytes, <[u8; 32]>::from(mac.finalize().into_bytes()));
    }

    #[test]
    fn wire_round_trip_and_rejects() {
        let key = DomainKey::new(KeyId::parse("t").unwrap(), [7u8; 32]);
        let p = key.derive(KeyKind::NameDate, "x");
        let w = p.to_wire();
        assert!(w.starts_with("nd:"));
        assert_eq!(Pseudonym::from_wire(&w), Some(p));
        assert_eq!(Pseudonym::from_wire("xx:AAAA"), None);
        assert_eq!(Pseudonym::from_wire(&w[..w.len() - 1]), None);
        assert_eq!(Pseudonym::from_wire(&format!("{w}A")), None);
        assert!(format!("{p:?}").find(&w[3..]).is_none());
    }

    #[test]
    fn key_ids() {
        assert!(KeyId::parse("dev-2026.01_a").is_some());
        for bad in ["", "Dev", "-a", "a b", &"a".repeat(65)] {
            assert!(KeyId::parse(bad).is_none(), "{bad}");
        }
    }
}
