//! Every error a client can see, mapped to RFC 9457 problem+json in one place.
//!
//! Each problem has a stable `type` (`urn:samenloop:problem:<code>`) listed in
//! `spec/openapi.yaml`. Details never echo submitted values.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No bearer token.
    Unauthenticated,
    /// A token that failed verification (any reason; the reason is not told).
    InvalidToken,
    /// The caller's role may not use this endpoint.
    ForbiddenRole,
    /// Out of scope or absent: never tells which.
    NotFound,
    /// The body is not JSON.
    MalformedJson(String),
    /// JSON of the wrong shape (unknown field, wrong type, missing field).
    InvalidBody(String),
    /// A value that fails validation (`field` names it).
    InvalidField {
        /// The field, as a JSON pointer-ish path.
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// The key set is not acceptable.
    InvalidKeySet(String),
    /// The key set was made with a domain key the index does not accept.
    UnknownKeyId,
    /// The category is not in the network's list.
    UnknownCategory,
    /// The body is larger than allowed.
    PayloadTooLarge(usize),
    /// The body did not arrive within the configured time.
    RequestTimeout,
    /// More signals in a batch than allowed.
    BatchTooLarge(usize),
    /// The reference is in use with other content.
    ReferenceConflict,
    /// The signal is not active (withdrawn or expired).
    SignalNotActive,
    /// Too many requests for the organisation.
    RateLimited(u64),
    /// The content type is not JSON.
    UnsupportedMediaType,
    /// A query parameter is malformed.
    InvalidQuery(String),
    /// The store cannot take writes now.
    Unavailable,
    /// The disk is (nearly) full: writes are refused, reads go on.
    InsufficientStorage,
    /// A follow-up action that the current stage does not allow (detail: the stage and
    /// the allowed actions).
    InvalidTransition(String),
    /// The lead organisation has no active signal of the network in the match.
    LeadNotInvolved,
    /// A webhook delivery that is not dead-lettered cannot be requeued.
    DeliveryNotDead,
    /// The caller's organisation is suspended: it may read and withdraw, not submit.
    OrganisationSuspended,
    /// An object with this id exists already (detail: which kind).
    AlreadyExists(String),
    /// A rotation of the index key is running already.
    RotationRunning,
    /// The new index key's id is in the key ring already.
    KeyIdInRing,
    /// The index key file named cannot be used (detail: why, never its content).
    InvalidKeyFile(String),
    /// Anything else.
    Internal,
}

impl ApiError {
    /// The stable problem code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::InvalidToken => "invalid-token",
            ApiError::ForbiddenRole => "forbidden-role",
            ApiError::NotFound => "not-found",
            ApiError::MalformedJson(_) => "malformed-json",
            ApiError::InvalidBody(_) => "invalid-body",
            ApiError::InvalidField { .. } => "invalid-field",
            ApiError::InvalidKeySet(_) => "invalid-key-set",
            ApiError::UnknownKeyId => "unknown-key-id",
            ApiError::UnknownCategory => "unknown-category",
            ApiError::PayloadTooLarge(_) => "payload-too-large",
            ApiError::RequestTimeout => "request-timeout",
            ApiError::BatchTooLarge(_) => "batch-too-large",
            ApiError::ReferenceConflict => "reference-conflict",
            ApiError::SignalNotActive => "signal-not-active",
            ApiError::RateLimited(_) => "rate-limited",
            ApiError::UnsupportedMediaType => "unsupported-media-type",
            ApiError::InvalidQuery(_) => "invalid-query",
            ApiError::Unavailable => "unavailable",
            ApiError::InsufficientStorage => "insufficient-storage",
            ApiError::InvalidTransition(_) => "invalid-transition",
            ApiError::LeadNotInvolved => "lead-not-involved",
            ApiError::DeliveryNotDead => "delivery-not-dead",
            ApiError::OrganisationSuspended => "organisation-suspended",
            ApiError::AlreadyExists(_) => "already-exists",
            ApiError::RotationRunning => "rotation-running",
            ApiError::KeyIdInRing => "key-id-in-ring",
            ApiError::InvalidKeyFile(_) => "invalid-key-file",
            ApiError::Internal => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated | ApiError::InvalidToken => StatusCode::UNAUTHORIZED,
            ApiError::ForbiddenRole | ApiError::OrganisationSuspended => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MalformedJson(_) | ApiError::InvalidQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidBody(_)
            | ApiError::InvalidField { .. }
            | ApiError::InvalidKeySet(_)
            | ApiError::UnknownKeyId
            | ApiError::UnknownCategory
            | ApiError::BatchTooLarge(_)
            | ApiError::InvalidKeyFile(_)
            | ApiError::LeadNotInvolved => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::ReferenceConflict
            | ApiError::SignalNotActive
            | ApiError::InvalidTransition(_)
            | ApiError::DeliveryNotDead
            | ApiError::AlreadyExists(_)
            | ApiError::RotationRunning
            | ApiError::KeyIdInRing => StatusCode::CONFLICT,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "A bearer token is required",
            ApiError::InvalidToken => "The bearer token is not valid",
            ApiError::ForbiddenRole => "Your role may not use this endpoint",
            ApiError::NotFound => "Not found",
            ApiError::MalformedJson(_) => "The body is not valid JSON",
            ApiError::InvalidBody(_) => "The body does not have the expected shape",
            ApiError::InvalidField { .. } => "A field has an invalid value",
            ApiError::InvalidKeySet(_) => "The key set is not valid",
            ApiError::UnknownKeyId => {
                "The key set was made with a domain key this index does not accept"
            }
            ApiError::UnknownCategory => "The category is not in the network's list",
            ApiError::PayloadTooLarge(_) => "The body is too large",
            ApiError::RequestTimeout => "The body did not arrive in time",
            ApiError::BatchTooLarge(_) => "The batch holds too many signals",
            ApiError::ReferenceConflict => {
                "The reference is already used for a signal with other content"
            }
            ApiError::SignalNotActive => "The signal is not active",
            ApiError::RateLimited(_) => "Too many requests",
            ApiError::UnsupportedMediaType => "Send application/json",
            ApiError::InvalidQuery(_) => "A query parameter is not valid",
            ApiError::Unavailable => "The index cannot take writes right now",
            ApiError::InsufficientStorage => {
                "The index's disk is nearly full: it takes no writes until space is made"
            }
            ApiError::InvalidTransition(_) => "The follow-up's stage does not allow this action",
            ApiError::LeadNotInvolved => {
                "The lead organisation has no active signal of the network in the match"
            }
            ApiError::DeliveryNotDead => {
                "The delivery is not dead-lettered (it is pending and being retried)"
            }
            ApiError::OrganisationSuspended => {
                "Your organisation is suspended: it can read and withdraw its signals, not submit or renew"
            }
            ApiError::AlreadyExists(_) => "It exists already",
            ApiError::RotationRunning => "A rotation of the index key is running",
            ApiError::KeyIdInRing => "The key id is already in the index key ring",
            ApiError::InvalidKeyFile(_) => "The index key file cannot be used",
            ApiError::Internal => "Internal error",
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            ApiError::MalformedJson(d)
            | ApiError::InvalidBody(d)
            | ApiError::InvalidKeySet(d)
            | ApiError::InvalidQuery(d)
            | ApiError::InvalidTransition(d)
            | ApiError::AlreadyExists(d)
            | ApiError::InvalidKeyFile(d) => Some(d.clone()),
            ApiError::InvalidField { field, detail } => Some(format!("{field}: {detail}")),
            ApiError::PayloadTooLarge(max) => Some(format!("at most {max} bytes")),
            ApiError::BatchTooLarge(max) => Some(format!("at most {max} signals per batch")),
            ApiError::RateLimited(secs) => Some(format!("retry after {secs} s")),
            _ => None,
        }
    }

    /// The problem body.
    pub fn problem(&self) -> Problem {
        Problem {
            type_: format!("urn:samenloop:problem:{}", self.code()),
            title: self.title().to_string(),
            status: self.status().as_u16(),
            detail: self.detail(),
        }
    }
}

/// An RFC 9457 problem object.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Problem {
    /// Stable type URI.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Explanation of this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status());
        resp.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        if matches!(self, ApiError::Unauthenticated | ApiError::InvalidToken) {
            resp.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"samenloop\""),
            ));
        }
        if let ApiError::RateLimited(secs) = self {
            resp.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if matches!(self, ApiError::InsufficientStorage) {
            resp.insert_header((header::RETRY_AFTER, HeaderValue::from_static("60")));
        }
        resp.body(serde_json::to_string(&self.problem()).unwrap_or_default())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Closed | crate::store::StoreError::Db(_) => {
                ApiError::Unavailable
            }
            crate::store::StoreError::DiskFull => ApiError::InsufficientStorage,
            crate::store::StoreError::Engine(_) | crate::store::StoreError::Keys(_) => {
                ApiError::Internal
            }
        }
    }
}

impl From<crate::index::engine::EngineError> for ApiError {
    fn from(_: crate::index::engine::EngineError) -> Self {
        ApiError::Internal
    }
}

/// Turns a serde_json error into the right problem, without echoing input values.
pub fn json_error(e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let clean = crate::pseudonym::wire::describe_json_error(e);
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::MalformedJson(clean),
        Category::Data => ApiError::InvalidBody(clean),
    }
}
