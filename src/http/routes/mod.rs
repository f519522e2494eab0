//! One file per resource.

pub mod health;
pub mod matches;
pub mod signals;
