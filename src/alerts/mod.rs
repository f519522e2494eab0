//! Alert delivery: what an alert says ([`payload`]), and the paths it takes to the
//! coordinator — webhook, event stream and pull list.
//!
//! Alerts are written to the outbox in the same transaction as the change that causes
//! them (see [`crate::index::followup::emit`]); everything here reads the outbox after
//! the fact, so a crash between a match and its delivery loses nothing.

pub mod escalation;
pub mod payload;
pub mod receiver;
pub mod signature;
pub mod stream;
pub mod webhook;
