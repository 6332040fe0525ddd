//! ovsup: upgrade a live Open vStorage cluster with Rhai runbooks over SSH.
//!
//! The host owns everything dangerous or slow (SSH sessions, fan-out, parsing, state, progress,
//! the audit journal) and exposes it to runbooks as safe primitives. See docs/architecture.md.

pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub mod history;
pub mod host;
pub mod inventory;
pub mod lock_holder;
pub mod name;
pub mod outcome;
pub mod primitives;
pub mod quote;
pub mod report;
pub mod run;
pub mod runbooks;
pub mod secret;
pub mod session;
pub mod sim;
pub mod state;
pub mod timeline;
pub mod transport;
pub mod wait;

pub use error::{Error, Result};
pub use run::run;
