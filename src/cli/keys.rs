//! `samenloop keys`: create a domain key file and show a key's fingerprint.

use crate::pseudonym::keyfile::{
    KeyFileError, generate_key, read_key_file, render_index_key_file, render_key_file,
    write_secret_file,
};
use crate::pseudonym::{Date, DomainKey, KeyId};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Subcommands of `samenloop keys`.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Write a new random domain key file, or with --index an index key file (readable
    /// by its owner only); never overwrites.
    Generate {
        /// Key id (epoch): 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or
        /// digit, e.g. utrecht-2026.
        #[arg(long, value_name = "ID", value_parser = parse_key_id)]
        id: KeyId,
        /// Where to write the key file; must not exist yet.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
        /// Free-text comment stored in the file (e.g. the region and who holds it).
        #[arg(long, value_name = "TEXT", default_value = "")]
        comment: String,
        /// Write an index key file (`K_index`, for the index operator; e.g. the new key
        /// of `samenloop index-key rotate`) instead of a domain key file.
        #[arg(long)]
        index: bool,
    },
    /// Print a key file's id and fingerprint, so that partners can check they hold
    /// the same key without showing it.
    Fingerprint {
        /// The domain key file.
        #[arg(value_name = "PATH")]
        path: PathBuf,
    },
}

fn parse_key_id(s: &str) -> Result<KeyId, String> {
    KeyId::parse(s).ok_or_else(|| {
        "a key id is 1-64 of a-z, 0-9, '.', '_', '-' starting with a letter or digit".to_string()
    })
}

/// A key's fingerprint (spec §6.3); see [`DomainKey::fingerprint`].
pub fn fingerprint(key: &DomainKey) -> String {
    key.fingerprint()
}

/// Runs the subcommand.
pub fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Generate {
            id,
            out,
            comment,
            index,
        } => generate(id, &out, &comment, index),
        Command::Fingerprint { path } => match read_key_file(&path) {
            Ok(key) => {
                println!("key_id: {}", key.id());
                println!("fingerprint: {}", fingerprint(&key));
                ExitCode::SUCCESS
            }
            Err(e) => super::fail(e),
        },
    }
}

fn generate(id: KeyId, out: &Path, comment: &str, index: bool) -> ExitCode {
    let refuse = || {
        super::fail(format!(
            "{} already exists; a key file is never overwritten (choose another path)",
            out.display()
        ))
    };
    if out.symlink_metadata().is_ok() {
        return refuse();
    }
    let key = match generate_key(id) {
        Ok(k) => k,
        Err(e) => return super::fail(e),
    };
    let today = Date::today_utc().to_string();
    let text = if index {
        render_index_key_file(&key, &today, comment)
    } else {
        render_key_file(&key, &today, comment)
    };
    match write_secret_file(out, &text) {
        Ok(()) => {}
        Err(KeyFileError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::AlreadyExists =>
        {
            return refuse();
        }
        Err(e) => return super::fail(e),
    }
    if index {
        println!("wrote index key file {}", out.display());
        println!("key_id: {}", key.id());
        println!(
            "Keep it secret, beside the server's domain.index_key_file; never give it to partners."
        );
        return ExitCode::SUCCESS;
    }
    println!("wrote domain key file {}", out.display());
    println!("key_id: {}", key.id());
    println!("fingerprint: {}", fingerprint(&key));
    println!(
        "Keep it secret: give it to the partners of the region only, never to the index operator."
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    #[test]
    fn an_index_key_file_reads_back_as_one() {
        let key = DomainKey::new(KeyId::parse("idx-2").unwrap(), [9; 32]);
        let text = render_index_key_file(&key, "2026-12-02", "test");
        let (id, secret) = crate::pseudonym::keyfile::parse_secret_file(
            &text,
            crate::pseudonym::keyfile::INDEX_KEY_FILE_FORMAT,
        )
        .unwrap();
        assert_eq!((id.to_string(), *secret), ("idx-2".to_string(), [9; 32]));
        assert!(
            crate::pseudonym::keyfile::parse_key_file(&text).is_err(),
            "not a domain key file"
        );
    }

    #[test]
    fn fingerprint_is_hmac_of_the_label() {
        let key = DomainKey::new(KeyId::parse("k").unwrap(), [7; 32]);
        let mut mac = Hmac::<Sha256>::new_from_slice(&[7; 32]).unwrap();
        mac.update(b"samenloop/v1/fingerprint");
        mac.update(&[0]);
        let want: String = mac.finalize().into_bytes()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(fingerprint(&key), want);
        assert_eq!(want.len(), 16);
        let other = DomainKey::new(KeyId::parse("k").unwrap(), [8; 32]);
        assert_ne!(fingerprint(&other), want);
    }
}
