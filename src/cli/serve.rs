//! `samenloop serve`: run the index.

use crate::config::{Config, development_config_path};
use crate::http::startup::Application;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `samenloop serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Configuration file (default: the development configuration in keys-example/).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: Args) -> ExitCode {
    let path = args.config.unwrap_or_else(development_config_path);
    let cfg = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => return super::fail(e),
    };
    if cfg.development {
        eprintln!("{}", DEV_WARNING);
    }
    let listen = cfg.server.listen;
    let data_dir = cfg.resolve(&cfg.server.data_dir);
    crate::http::startup::stopping::arm();
    let system = actix_web::rt::System::new();
    let result = system.block_on(async move {
        let app = Application::build(cfg).map_err(|e| e.to_string())?;
        println!(
            "samenloop listening on https://{}:{} (data in {})",
            listen.ip(),
            app.port(),
            data_dir.display()
        );
        app.run_until_stopped().await.map_err(|e| e.to_string())
    });
    // Dropping the runtime would wait without limit for blocking tasks still running (an
    // export or a log search whose client has gone): they only read, and every
    // acknowledged write is on disk, so the process exits without waiting for them.
    std::mem::forget(system);
    match result {
        Ok(()) => {
            eprintln!("samenloop stopped; all acknowledged writes are on disk");
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(e),
    }
}

const DEV_WARNING: &str = "\
##########################################################################
#  WARNING: DEVELOPMENT CONFIGURATION                                    #
#  The TLS certificate, token signing keys, index key and domain key in  #
#  keys-example/ are PUBLISHED in the repository. Anyone can mint tokens #
#  and reverse pseudonyms. NEVER use this configuration with real data.  #
##########################################################################";
