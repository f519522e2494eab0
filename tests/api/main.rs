//! API tests: the real server on a loopback port with real TLS, real JWT verification
//! and a real sled database in a temporary directory, driven by a real HTTPS client.

mod admin;
mod attack;
mod audit;
mod auth;
mod disk;
mod domain_keys;
mod events;
mod figures;
mod followup;
mod helpers;
mod matching;
mod openapi;
mod retention;
mod rotation;
mod signals;
mod webhook;
