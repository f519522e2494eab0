//! One file per resource.

pub mod deliveries;
pub mod health;
pub mod matches;
pub mod signals;
