//! The server under test: a `samenloop serve` child process with a configuration
//! written for the load run, and what `/proc` says about a process.

use crate::config::{Config, development_config_path};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The networks of a generated configuration: id, name, categories.
const NETWORKS: [(&str, &str, &[&str]); 3] = [
    (
        "zorgnetwerk-18plus",
        "Zorgnetwerk 18+",
        &[
            "huurachterstand",
            "overlast",
            "zorgmijding",
            "huiselijk_geweld",
            "schulden",
            "verward_gedrag",
        ],
    ),
    (
        "jeugdnetwerk-0-23",
        "Jeugdnetwerk 0-23",
        &[
            "zorgen_opvoeding",
            "schoolverzuim",
            "huiselijk_geweld",
            "schulden",
        ],
    ),
    (
        "zorg-en-veiligheidshuis",
        "Zorg- en Veiligheidshuis",
        &["overlast", "huiselijk_geweld", "recidive", "verward_gedrag"],
    ),
];

/// Organisations of a generated configuration, most active first, with the indexes
/// of the networks (of [`NETWORKS`]) they take part in.
const ORGANISATIONS: [(&str, &str, &[usize]); 20] = [
    ("politie", "Politie basisteam", &[0, 1, 2]),
    ("woonstad", "Woonstad (woningcorporatie)", &[0, 2]),
    ("wijkteam-noord", "Wijkteam Noord", &[0, 1]),
    ("ggz-regio", "GGZ regio", &[0, 2]),
    ("veilig-thuis", "Veilig Thuis", &[0, 1, 2]),
    ("schuldhulp", "Schuldhulpverlening gemeente", &[0]),
    ("wijkteam-zuid", "Wijkteam Zuid", &[0, 1]),
    ("jeugdzorg", "Jeugdzorg regio", &[1, 2]),
    ("verslavingszorg", "Verslavingszorg", &[0, 2]),
    ("woonbron", "Woonbron (woningcorporatie)", &[0]),
    ("jgz", "Jeugdgezondheidszorg", &[1]),
    ("maatschappelijk-werk", "Maatschappelijk werk", &[0, 1]),
    ("reclassering", "Reclassering", &[0, 2]),
    ("leerplicht", "Leerplicht", &[1]),
    ("school-de-linde", "Basisschool De Linde", &[1]),
    ("college-west", "Scholengemeenschap West", &[1]),
    (
        "maatschappelijke-opvang",
        "Maatschappelijke opvang",
        &[0, 2],
    ),
    ("huisartsen", "Huisartsenkring", &[0, 1]),
    ("ouderenzorg", "Ouderenzorg", &[0]),
    ("uwv", "UWV", &[0]),
];

/// The organisation id of the coordinator tokens the load tool mints.
pub const COORDINATOR_ORG: &str = "netwerkregie";

/// Settings of a generated configuration.
#[derive(Debug, Clone)]
pub struct GeneratedConfig {
    /// Database directory.
    pub data_dir: PathBuf,
    /// Number of organisations (the first 20 have realistic names).
    pub organisations: usize,
    /// Number of networks (the first 3 have realistic names).
    pub networks: usize,
    /// sled cache, MiB.
    pub cache_mib: u64,
    /// HTTP workers (default: cores).
    pub workers: Option<usize>,
    /// Every network's webhook goes here (signed with the development secret; the
    /// receiver's certificate is the development one).
    pub webhook_url: Option<String>,
    /// Whether the access log is on (off only to measure what it costs).
    pub access_log: bool,
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn quote_path(p: &Path) -> String {
    quote(&p.display().to_string())
}

/// Writes a server configuration derived from the development configuration
/// (its TLS certificate, token keys and index key, by absolute path), with a free
/// loopback port, `data_dir`, generous rate limits and the networks and organisations
/// asked for. Returns the path of the file.
pub fn write_config(dir: &Path, g: &GeneratedConfig) -> Result<PathBuf, String> {
    let dev_path = development_config_path();
    let dev = Config::load(&dev_path).map_err(|e| e.to_string())?;
    let abs = |p: &Path| -> Result<PathBuf, String> {
        let r = dev.resolve(p);
        r.canonicalize()
            .map_err(|e| format!("development key file {}: {e}", r.display()))
    };
    let mut t = String::new();
    t.push_str(
        "# Written by `samenloop load`. DEVELOPMENT keys from keys-example/ (published):\n\
         # loopback only, synthetic data only.\ndevelopment = true\n\n[server]\n",
    );
    t.push_str("listen = \"127.0.0.1:0\"\n");
    t.push_str(&format!("data_dir = {}\n", quote_path(&g.data_dir)));
    t.push_str(&format!(
        "tls_cert = {}\n",
        quote_path(&abs(&dev.server.tls_cert)?)
    ));
    t.push_str(&format!(
        "tls_key = {}\n",
        quote_path(&abs(&dev.server.tls_key)?)
    ));
    t.push_str(&format!("cache_mib = {}\n", g.cache_mib));
    if let Some(w) = g.workers {
        t.push_str(&format!("workers = {w}\n"));
    }
    t.push_str("\n[domain]\nname = \"regio-load\"\n");
    let ids: Vec<String> = dev
        .domain
        .accepted_key_ids
        .iter()
        .map(|k| quote(k))
        .collect();
    t.push_str(&format!("accepted_key_ids = [{}]\n", ids.join(", ")));
    t.push_str(&format!(
        "index_key_file = {}\n",
        quote_path(&abs(&dev.domain.index_key_file)?)
    ));
    t.push_str(&format!(
        "\n[auth]\nissuer = {}\naudience = {}\nleeway_secs = {}\n",
        quote(&dev.auth.issuer),
        quote(&dev.auth.audience),
        dev.auth.leeway_secs
    ));
    for k in &dev.auth.keys {
        t.push_str(&format!(
            "\n[[auth.keys]]\nkid = {}\nalgorithm = {}\npublic_key = {}\n",
            quote(&k.kid),
            quote(&k.algorithm),
            quote_path(&abs(&k.public_key)?)
        ));
        if let Some(p) = &k.private_key {
            t.push_str(&format!("private_key = {}\n", quote_path(&abs(p)?)));
        }
    }
    // The limits a real deployment would have, except the rate limit: the load tool
    // measures the server, not the limiter.
    let l = &dev.limits;
    t.push_str(&format!(
        "\n[limits]\nmax_body_bytes = {}\nmax_batch = {}\npartner_rate_per_sec = 100000000\n\
         partner_burst = 1000000000\nclient_request_timeout_secs = {}\n\
         max_postings_per_key = {}\nmax_component_signals = {}\n",
        l.max_body_bytes.max(4 * 1024 * 1024),
        l.max_batch,
        l.client_request_timeout_secs,
        l.max_postings_per_key,
        l.max_component_signals
    ));
    let nets = g.networks.max(1);
    let net_id = |i: usize| match NETWORKS.get(i) {
        Some((id, _, _)) => (*id).to_string(),
        None => format!("netwerk-{}", i + 1),
    };
    for i in 0..nets {
        let (name, cats) = match NETWORKS.get(i) {
            Some((_, name, cats)) => ((*name).to_string(), cats.to_vec()),
            None => (
                format!("Netwerk {}", i + 1),
                vec!["overlast", "schulden", "zorgmijding"],
            ),
        };
        let cats: Vec<String> = cats.iter().map(|c| quote(c)).collect();
        t.push_str(&format!(
            "\n[[networks]]\nid = {}\nname = {}\ncoordinator_contact = {}\ncategories = [{}]\n\
             match_threshold = 2\nmax_validity_days = 730\n",
            quote(&net_id(i)),
            quote(&name),
            quote(&format!("regie-{}@gemeente.example", net_id(i))),
            cats.join(", ")
        ));
        if let Some(url) = &g.webhook_url {
            t.push_str(&format!(
                "\n[networks.webhook]\nurl = {}\nsecret_file = {}\nca_file = {}\n\
                 timeout_secs = 10\ndead_letter_after_secs = 3600\nmax_backoff_secs = 5\n",
                quote(url),
                quote_path(&abs(Path::new("webhook-secret.dev.toml"))?),
                quote_path(&abs(&dev.server.tls_cert)?)
            ));
        }
    }
    for i in 0..g.organisations {
        let (id, name, member): (String, String, Vec<usize>) = match ORGANISATIONS.get(i) {
            Some((id, name, m)) => ((*id).into(), (*name).into(), m.to_vec()),
            None => (
                format!("organisatie-{}", i + 1),
                format!("Organisatie {}", i + 1),
                vec![i % 3, (i / 3) % 3],
            ),
        };
        let mut member: Vec<usize> = member.into_iter().map(|n| n % nets).collect();
        member.sort_unstable();
        member.dedup();
        let member: Vec<String> = member.into_iter().map(|n| quote(&net_id(n))).collect();
        t.push_str(&format!(
            "\n[[organisations]]\nid = {}\nname = {}\nnetworks = [{}]\n",
            quote(&id),
            quote(&name),
            member.join(", ")
        ));
    }
    let all: Vec<String> = (0..nets).map(|n| quote(&net_id(n))).collect();
    t.push_str(&format!(
        "\n[[organisations]]\nid = {}\nname = \"Gemeente (netwerkregie)\"\nnetworks = [{}]\n",
        quote(COORDINATOR_ORG),
        all.join(", ")
    ));
    if !g.access_log {
        t.push_str("\n# Off only to measure what the access log costs (samenloop load --compare-audit).\n[audit]\nenabled = false\n");
    }
    let path = dir.join("load-server.toml");
    std::fs::write(&path, t).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// A running `samenloop serve` child process. Dropping it stops the process
/// (SIGTERM, then SIGKILL after 60 s).
#[derive(Debug)]
pub struct Spawned {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    stderr_path: PathBuf,
}

/// The last lines of a file (for error messages).
pub fn tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    // The development-configuration banner is not what went wrong.
    let all: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Spawned {
    /// Starts `exe serve --config config`, its output going to files in `dir`, and
    /// waits (up to `timeout`) until it says on which port it listens.
    pub fn start(exe: &Path, config: &Path, dir: &Path, timeout: Duration) -> Result<Self, String> {
        let out_path = dir.join("server.stdout");
        let stderr_path = dir.join("server.stderr");
        let out = std::fs::File::create(&out_path)
            .map_err(|e| format!("cannot create {}: {e}", out_path.display()))?;
        let err = std::fs::File::create(&stderr_path)
            .map_err(|e| format!("cannot create {}: {e}", stderr_path.display()))?;
        let child = Command::new(exe)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {} serve: {e}", exe.display()))?;
        let mut s = Spawned {
            child: Some(child),
            port: 0,
            stderr_path,
        };
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&out_path).unwrap_or_default();
            let port = text
                .split("127.0.0.1:")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|p| p.parse::<u16>().ok());
            if let Some(port) = port {
                s.port = port;
                return Ok(s);
            }
            if let Some(status) = s.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                s.child = None;
                return Err(format!(
                    "the server did not start ({status}); its last output:\n{}",
                    tail(&s.stderr_path, 15)
                ));
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "the server did not report its port within {} s; its last output:\n{}",
                    timeout.as_secs(),
                    tail(&s.stderr_path, 15)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last lines the server wrote to stderr.
    pub fn stderr_tail(&self, lines: usize) -> String {
        tail(&self.stderr_path, lines)
    }

    /// Whether the process has exited (with its status).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Kills the server at once with SIGKILL (no chance to flush or clean up) and
    /// reaps it. Errors when it had already exited.
    pub fn kill(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Err("the server had already exited".into());
        };
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the server had already exited ({status}); its last output:\n{}",
                tail(&self.stderr_path, 15)
            ));
        }
        // `Child::kill` sends SIGKILL on Unix.
        child
            .kill()
            .map_err(|e| format!("cannot kill the server: {e}"))?;
        let _ = child.wait();
        Ok(())
    }

    /// Stops the server gracefully (SIGTERM) and waits up to `timeout` for it to
    /// finish; then kills it. Returns how long the graceful stop took.
    pub fn stop(&mut self, timeout: Duration) -> Result<Duration, String> {
        let Some(mut child) = self.child.take() else {
            return Err("the server had already exited".into());
        };
        let started = Instant::now();
        // std has no portable signal API; `kill` is in every Linux base system.
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if sent {
            while started.elapsed() < timeout {
                match child.try_wait() {
                    Ok(Some(status)) if status.success() => return Ok(started.elapsed()),
                    Ok(Some(status)) => {
                        return Err(format!(
                            "the server exited with {status}; its last output:\n{}",
                            tail(&self.stderr_path, 15)
                        ));
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    Err(_) => break,
                }
            }
        }
        let threads = threads(child.id());
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "the server did not stop within {} s of SIGTERM and was killed; its threads then: {threads}; its last output:\n{}",
            timeout.as_secs(),
            tail(&self.stderr_path, 15)
        ))
    }
}

/// How a graceful stop ([`Spawned::stop_or_watchdog`]) ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StopOutcome {
    /// The server stopped on SIGTERM, in this time.
    Graceful(Duration),
    /// The server's stop watchdog ended a stop that hung, after every acknowledged write
    /// was on disk: not a loss, but a defect a report shows. Its line, naming the stage.
    Watchdog(String),
}

impl Spawned {
    /// [`Spawned::stop`], where an exit by the server's stop watchdog is an outcome to
    /// report rather than an error.
    pub fn stop_or_watchdog(&mut self, timeout: Duration) -> Result<StopOutcome, String> {
        match self.stop(timeout) {
            Ok(took) => Ok(StopOutcome::Graceful(took)),
            Err(e) => match e.lines().find(|l| l.contains("the stop hung while")) {
                Some(line) => Ok(StopOutcome::Watchdog(
                    line.trim_start_matches("samenloop: ").to_string(),
                )),
                None => Err(e),
            },
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop(Duration::from_secs(60));
        }
    }
}

/// A process's threads by name, state and kernel wait channel (from `/proc`), to tell
/// where a process that does not stop is waiting.
pub fn threads(pid: u32) -> String {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return "unknown".into();
    };
    let mut out: Vec<String> = dir
        .flatten()
        .map(|t| {
            let p = t.path();
            let read = |f: &str| {
                std::fs::read_to_string(p.join(f))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            };
            let stat = read("stat");
            // The state follows the parenthesised name.
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, r)| r.split(' ').next())
                .unwrap_or("?")
                .to_string();
            format!("{} {state} {}", read("comm"), read("wchan"))
        })
        .collect();
    out.sort();
    out.join(", ")
}

/// CPU time of a process (all threads, user + system), from `/proc/<pid>/stat`.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after "pid (comm) ": state is field 3, utime 14, stime 15 (man 5 proc).
    let rest = text.rsplit_once(") ")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every mainstream Linux build (x86, arm64).
    Some(Duration::from_millis(ticks * 10))
}

/// Resident memory now and its peak (`VmRSS`, `VmHWM` of `/proc/<pid>/status`), bytes.
pub fn memory(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Space a directory tree takes on disk (allocated blocks, as `du` counts), bytes.
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.blocks() * 512;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_configuration_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        for (orgs, nets, hook) in [(20, 3, false), (25, 5, true), (2, 1, false)] {
            let path = write_config(
                dir.path(),
                &GeneratedConfig {
                    data_dir: dir.path().join("db"),
                    organisations: orgs,
                    networks: nets,
                    cache_mib: 64,
                    workers: Some(2),
                    webhook_url: hook.then(|| "https://localhost:9443/alerts".to_string()),
                    access_log: !hook,
                },
            )
            .unwrap();
            let cfg = Config::load(&path).unwrap();
            assert_eq!(cfg.audit.enabled, !hook);
            assert_eq!(cfg.organisations.len(), orgs + 1);
            assert_eq!(cfg.networks.len(), nets);
            assert!(cfg.networks.iter().all(|n| n.webhook.is_some() == hook));
            // The secret and CA files it names load.
            assert!(crate::alerts::webhook::targets(&cfg).is_ok());
            assert!(cfg.limits.partner_rate_per_sec >= 1_000_000);
        }
    }

    #[test]
    fn own_process_figures_are_readable() {
        assert!(cpu_time(None).is_some());
        assert!(memory(std::process::id()).is_some_and(|(rss, hwm)| rss > 0 && hwm >= rss));
    }
}
