//! The HTTP REST API: request authentication ([`auth`]) and the trigger and batch bodies ([`types`]).

pub mod auth;
pub mod types;
