//! The domain key file (spec §6.2).
//!
//! ```toml
//! format = "samenloop-domain-key/1"
//! key_id = "regio-2026-1"
//! secret = "64 hexadecimal digits"
//! ```

use super::derive::{DomainKey, KeyId};
use serde::Deserialize;
use std::path::Path;
use zeroize::Zeroizing;

/// The value of the `format` field in spec version 1.
pub const KEY_FILE_FORMAT: &str = "samenloop-domain-key/1";

/// The `format` of the index key file (`K_index`, held by the index operator only).
pub const INDEX_KEY_FILE_FORMAT: &str = "samenloop-index-key/1";

/// Why a key file could not be used. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read or written.
    #[error("cannot access key file {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not TOML of the expected shape.
    #[error("key file {path} is not a samenloop domain key file: {detail}")]
    Malformed {
        /// The path.
        path: String,
        /// What is wrong (field names only, never values).
        detail: String,
    },
    /// No randomness could be had from the operating system.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyFile {
    format: String,
    key_id: String,
    secret: Zeroizing<String>,
    #[serde(default)]
    #[allow(dead_code)]
    created: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    comment: Option<String>,
}

/// Reads and validates a domain key file.
pub fn read_key_file(path: &Path) -> Result<DomainKey, KeyFileError> {
    let (id, secret) = read_secret_file(path, KEY_FILE_FORMAT)?;
    Ok(DomainKey::new(id, *secret))
}

/// Parses the text of a domain key file.
pub fn parse_key_file(text: &str) -> Result<DomainKey, String> {
    let (id, secret) = parse_secret_file(text, KEY_FILE_FORMAT)?;
    Ok(DomainKey::new(id, *secret))
}

/// Reads a key file of the given `format` (domain or index key) and returns id and secret.
pub fn read_secret_file(
    path: &Path,
    format: &str,
) -> Result<(KeyId, Zeroizing<[u8; 32]>), KeyFileError> {
    let p = path.display().to_string();
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
                path: p.clone(),
                source,
            })?,
        );
    parse_secret_file(&text, format).map_err(|detail| KeyFileError::Malformed { path: p, detail })
}

/// Parses a key file of the given `format`.
pub fn parse_secret_file(text: &str, format: &str) -> Result<(KeyId, Zeroizing<[u8; 32]>), String> {
    // toml's error text can quote the offending line, which may hold the secret:
    // report only that the TOML is malformed.
    let raw: RawKeyFile = toml::from_str(text).map_err(|e| {
        let msg = e.message().to_string();
        if msg.contains("unknown field") || msg.contains("missing field") {
            msg
        } else {
            "not valid TOML with the fields format, key_id and secret".to_string()
        }
    })?;
    if raw.format != format {
        return Err(format!("format must be \"{format}\""));
    }
    let id = KeyId::parse(&raw.key_id).ok_or_else(|| {
        "key_id must be 1-64 of a-z, 0-9, '.', '_', '-' starting with a letter or digit".to_string()
    })?;
    let secret = decode_hex_32(raw.secret.trim())
        .ok_or_else(|| "secret must be exactly 64 hexadecimal digits (32 bytes)".to_string())?;
    Ok((id, secret))
}

fn decode_hex_32(s: &str) -> Option<Zeroizing<[u8; 32]>> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = Zeroizing::new([0u8; 32]);
    for (i, pair) in b.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Renders a key file for `key`.
pub fn render_key_file(key: &DomainKey, created: &str, comment: &str) -> Zeroizing<String> {
    let mut hex = String::with_capacity(64);
    for b in key.secret() {
        hex.push_str(&format!("{b:02x}"));
    }
    Zeroizing::new(format!(
        "# samenloop pseudonymisation domain key (K_domain), spec/pseudonymisation.md §6.2.\n\
         # Shared by the partners of one region; NEVER give it to the index operator.\n\
         format = \"{KEY_FILE_FORMAT}\"\n\
         key_id = \"{}\"\n\
         created = \"{created}\"\n\
         comment = {}\n\
         secret = \"{hex}\"\n",
        key.id(),
        toml_string(comment),
    ))
}

/// Renders an index key file (`K_index`, spec/index-key-rotation.md) for `key`'s id and
/// secret.
pub fn render_index_key_file(key: &DomainKey, created: &str, comment: &str) -> Zeroizing<String> {
    let mut hex = String::with_capacity(64);
    for b in key.secret() {
        hex.push_str(&format!("{b:02x}"));
    }
    Zeroizing::new(format!(
        "# samenloop index key (K_index), spec/index-key-rotation.md.\n\
         # Held by the index operator only; NEVER give it to partners.\n\
         format = \"{INDEX_KEY_FILE_FORMAT}\"\n\
         key_id = \"{}\"\n\
         created = \"{created}\"\n\
         comment = {}\n\
         secret = \"{hex}\"\n",
        key.id(),
        toml_string(comment),
    ))
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Generates a new random domain key.
pub fn generate_key(id: KeyId) -> Result<DomainKey, KeyFileError> {
    let mut secret = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *secret).map_err(|e| KeyFileError::Random(e.to_string()))?;
    Ok(DomainKey::new(id, *secret))
}

/// Writes `contents` to a new file readable by the owner only; refuses to overwrite.
pub fn write_secret_file(path: &Path, contents: &str) -> Result<(), KeyFileError> {
    use std::io::Write;
    let p = path.display().to_string();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|source| KeyFileError::Io {
        path: p.clone(),
        source,
    })?;
    f.write_all(contents.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|source| KeyFileError::Io { path: p, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let key = DomainKey::new(KeyId::parse("k1").unwrap(), [0xab; 32]);
        let text = render_key_file(&key, "2026-11-25", "test \"quoted\"");
        let back = parse_key_file(&text).unwrap();
        assert_eq!(back.id().as_str(), "k1");
        assert_eq!(back.secret(), &[0xab; 32]);
    }

    #[test]
    fn errors_never_echo_the_secret() {
        let secret = "ab".repeat(31) + "zz";
        let text =
            format!("format = \"{KEY_FILE_FORMAT}\"\nkey_id = \"k\"\nsecret = \"{secret}\"\n");
        let err = parse_key_file(&text).err().unwrap();
        assert!(!err.contains("abab"), "{err}");
        let broken = format!(
            "format = \"{KEY_FILE_FORMAT}\"\nsecret = \"{}\n",
            "ab".repeat(32)
        );
        let err = parse_key_file(&broken).err().unwrap();
        assert!(!err.contains("abab"), "{err}");
        assert!(parse_key_file("format = \"other\"\nkey_id = \"k\"\nsecret = \"00\"").is_err());
        assert!(
            parse_key_file(&format!(
                "format = \"{KEY_FILE_FORMAT}\"\nkey_id = \"K\"\nsecret = \"{}\"",
                "00".repeat(32)
            ))
            .is_err()
        );
        assert!(
            parse_key_file(&format!(
                "format = \"{KEY_FILE_FORMAT}\"\nkey_id = \"k\"\nsecret = \"{}\"\nextra = 1",
                "00".repeat(32)
            ))
            .is_err()
        );
    }
}
