//! The development configuration, rewritten for a `samenloop serve` child process.

use samenloop::config::development_config_path;
use std::path::{Path, PathBuf};

/// Writes `dir/config.toml`: the development configuration with absolute key paths, a
/// free loopback port and `dir/db` for data. `edit` may replace a line (it gets the
/// line's key and the line; `None` keeps the line as it is), `after` may add lines
/// after one (it gets the line, trimmed).
pub fn write(
    dir: &Path,
    edit: impl Fn(&str, &str) -> Option<String>,
    after: impl Fn(&str) -> Option<String>,
) -> PathBuf {
    let keys = development_config_path()
        .parent()
        .unwrap()
        .canonicalize()
        .unwrap();
    let text = std::fs::read_to_string(development_config_path()).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let l = line.trim_start();
        let key = l.split(" = ").next().unwrap_or("").trim();
        let file = || l.split('"').nth(1).unwrap();
        let quoted = |p: &Path| format!("{key} = {:?}", p.display().to_string());
        let line = match (edit(key, l), key) {
            (Some(replaced), _) => replaced,
            (None, "listen") => "listen = \"127.0.0.1:0\"".to_string(),
            (None, "data_dir") => quoted(&dir.join("db")),
            (
                None,
                "tls_cert"
                | "tls_key"
                | "index_key_file"
                | "checkpoint_key"
                | "checkpoint_public_key"
                | "public_key"
                | "private_key",
            ) => quoted(&keys.join(file())),
            _ => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
        if let Some(more) = after(l) {
            out.push_str(&more);
        }
    }
    let path = dir.join("config.toml");
    std::fs::write(&path, out).unwrap();
    path
}
