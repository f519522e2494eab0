//! One file per resource.

pub mod admin;
pub mod audit;
pub mod deliveries;
pub mod events;
pub mod figures;
pub mod followup;
pub mod health;
pub mod matches;
pub mod signals;
