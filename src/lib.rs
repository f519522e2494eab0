//! samenloop — a privacy-preserving signal-matching index (verwijsindex).
//!
//! The library holds everything; the `samenloop` binary only parses its
//! command line and calls into [`cli`].
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod alerts;
pub mod audit;
pub mod calendar;
pub mod cli;
pub mod config;
pub mod directory;
pub mod export;
pub mod fuzz;
pub mod http;
pub mod index;
pub mod load;
pub mod pseudonym;
pub mod quality;
pub mod store;
pub mod synth;
