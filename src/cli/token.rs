//! `samenloop token`: mint a token with a private key named in the configuration
//! (the development configuration has them; production keys live at the identity provider).

use crate::config::{Config, development_config_path};
use crate::http::auth::{Claims, Role, mint};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `samenloop token`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Role: partner, coordinator, privacy_officer or admin.
    #[arg(long)]
    pub role: Role,
    /// Organisation id (the `org` claim).
    #[arg(long)]
    pub org: String,
    /// Network the caller acts in (repeatable).
    #[arg(long = "network", required = true)]
    pub networks: Vec<String>,
    /// Subject (user or system id); default `<org>-<role>`.
    #[arg(long)]
    pub sub: Option<String>,
    /// Responsible user when a system acts for a professional.
    #[arg(long)]
    pub obo: Option<String>,
    /// Purpose of the access (claim `purpose`), recorded in the access log.
    #[arg(long)]
    pub purpose: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
    /// Signing key id (default: the first key with a private key).
    #[arg(long)]
    pub kid: Option<String>,
    /// Configuration file (default: the development configuration).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl clap::ValueEnum for Role {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            Role::Partner,
            Role::Coordinator,
            Role::PrivacyOfficer,
            Role::Admin,
        ]
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            Role::Partner => "partner",
            Role::Coordinator => "coordinator",
            Role::PrivacyOfficer => "privacy_officer",
            Role::Admin => "admin",
        }))
    }
}

/// Prints a signed token on stdout.
pub fn run(args: Args) -> ExitCode {
    let path = args.config.unwrap_or_else(development_config_path);
    let cfg = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => return super::fail(e),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let role_name = match args.role {
        Role::Partner => "partner",
        Role::Coordinator => "coordinator",
        Role::PrivacyOfficer => "privacy_officer",
        Role::Admin => "admin",
    };
    let claims = Claims {
        sub: args
            .sub
            .unwrap_or_else(|| format!("{}-{role_name}", args.org)),
        iss: cfg.auth.issuer.clone(),
        aud: cfg.auth.audience.clone(),
        exp: now + args.ttl,
        nbf: now.saturating_sub(5),
        iat: now,
        org: args.org,
        role: args.role,
        networks: args.networks,
        obo: args.obo,
        purpose: args.purpose,
    };
    match mint(&cfg, args.kid.as_deref(), &claims) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(e),
    }
}
