//! Bearer-token authentication (design.md "Access").
//!
//! Tokens are JWTs signed with an asymmetric key. The key is chosen by `kid` and its
//! algorithm is pinned in the configuration: `none`, HMAC algorithms, unknown `kid`s and
//! an `alg` other than the pinned one are all refused. `iss`, `aud`, `exp` and `nbf` are
//! checked, and the claims give subject, organisation, role and networks.

use super::error::ApiError;
use crate::config::{AuthConfig, Config};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Roles of callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A member organisation's system or professional.
    Partner,
    /// A network coordinator.
    Coordinator,
    /// A privacy officer.
    PrivacyOfficer,
    /// The operator.
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "partner" => Ok(Role::Partner),
            "coordinator" => Ok(Role::Coordinator),
            "privacy_officer" => Ok(Role::PrivacyOfficer),
            "admin" => Ok(Role::Admin),
            _ => Err("role must be partner, coordinator, privacy_officer or admin".into()),
        }
    }
}

/// The claims samenloop reads from a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: the user or system.
    pub sub: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry (unix seconds).
    pub exp: u64,
    /// Not before (unix seconds).
    pub nbf: u64,
    /// Issued at (unix seconds).
    #[serde(default)]
    pub iat: u64,
    /// Organisation id.
    pub org: String,
    /// Role.
    pub role: Role,
    /// Networks the caller acts in.
    pub networks: Vec<String>,
    /// The responsible user when a system acts for a professional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obo: Option<String>,
    /// The purpose of the access (recorded in the access log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Subject.
    pub sub: String,
    /// Organisation.
    pub org: String,
    /// Role.
    pub role: Role,
    /// Networks.
    pub networks: Vec<String>,
    /// When the token expires (unix seconds): long-lived answers (event streams) end then.
    pub expires_at: u64,
    /// On behalf of.
    pub obo: Option<String>,
    /// Purpose.
    pub purpose: Option<String>,
}

impl Caller {
    /// Whether the caller acts in `network`.
    pub fn in_network(&self, network: &str) -> bool {
        self.networks.iter().any(|n| n == network)
    }

    /// Requires one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::ForbiddenRole)
        }
    }
}

/// Verifies bearer tokens against the configured keys.
pub struct Verifier {
    keys: HashMap<String, (Algorithm, DecodingKey)>,
    issuer: String,
    audience: String,
    leeway: u64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "ES256" => Some(Algorithm::ES256),
        "EdDSA" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

impl Verifier {
    /// Loads the verification keys of `cfg`.
    pub fn from_config(cfg: &Config) -> Result<Verifier, String> {
        let auth: &AuthConfig = &cfg.auth;
        let mut keys = HashMap::new();
        for k in &auth.keys {
            let alg = algorithm(&k.algorithm)
                .ok_or_else(|| format!("auth key {}: unsupported algorithm", k.kid))?;
            let path = cfg.resolve(&k.public_key);
            let pem = std::fs::read(&path)
                .map_err(|e| format!("auth key {}: cannot read {}: {e}", k.kid, path.display()))?;
            let key = match alg {
                Algorithm::ES256 => DecodingKey::from_ec_pem(&pem),
                _ => DecodingKey::from_ed_pem(&pem),
            }
            .map_err(|e| {
                format!(
                    "auth key {}: {} is not a {} public key: {e}",
                    k.kid,
                    path.display(),
                    k.algorithm
                )
            })?;
            keys.insert(k.kid.clone(), (alg, key));
        }
        Ok(Verifier {
            keys,
            issuer: auth.issuer.clone(),
            audience: auth.audience.clone(),
            leeway: auth.leeway_secs,
        })
    }

    /// Verifies a token and returns its caller.
    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| ApiError::InvalidToken)?;
        let kid = header.kid.as_deref().ok_or(ApiError::InvalidToken)?;
        let (alg, key) = self.keys.get(kid).ok_or(ApiError::InvalidToken)?;
        if header.alg != *alg {
            return Err(ApiError::InvalidToken);
        }
        let mut v = Validation::new(*alg);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        v.validate_nbf = true;
        v.leeway = self.leeway;
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &v).map_err(|_| ApiError::InvalidToken)?;
        let c = data.claims;
        if c.sub.is_empty() || c.org.is_empty() {
            return Err(ApiError::InvalidToken);
        }
        // These go into the access log: short, printable, no separators.
        let printable = |s: &str| s.len() <= 256 && !s.chars().any(char::is_control);
        if !printable(&c.sub)
            || !printable(&c.org)
            || c.obo.as_deref().is_some_and(|s| !printable(s))
            || c.purpose.as_deref().is_some_and(|s| !printable(s))
            || c.networks.iter().any(|n| !printable(n))
        {
            return Err(ApiError::InvalidToken);
        }
        Ok(Caller {
            sub: c.sub,
            org: c.org,
            role: c.role,
            networks: c.networks,
            obo: c.obo,
            purpose: c.purpose,
            expires_at: c.exp,
        })
    }
}

/// Mints a token with a configured private key (development and tests).
pub fn mint(cfg: &Config, kid: Option<&str>, claims: &Claims) -> Result<String, String> {
    let k = match kid {
        Some(kid) => cfg.auth.keys.iter().find(|k| k.kid == kid),
        None => cfg.auth.keys.iter().find(|k| k.private_key.is_some()),
    }
    .ok_or("no such signing key in the configuration")?;
    let path = k
        .private_key
        .as_ref()
        .ok_or("this key has no private_key in the configuration")?;
    let path = cfg.resolve(path);
    let pem = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let alg = algorithm(&k.algorithm).ok_or("unsupported algorithm")?;
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .map_err(|e| format!("{} is not a private key: {e}", path.display()))?;
    let mut header = Header::new(alg);
    header.kid = Some(k.kid.clone());
    jsonwebtoken::encode(&header, claims, &key).map_err(|e| e.to_string())
}
