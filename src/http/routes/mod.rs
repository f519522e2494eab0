//! One file per resource.

pub mod figures;
pub mod health;
pub mod matches;
pub mod signals;
