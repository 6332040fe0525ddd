//! The subcommands, each in its own file. Each takes the resolved [`crate::config::Config`] and
//! returns a typed [`crate::outcome::Outcome`]; only `run.rs` renders it.

pub mod capture;
pub mod disconnect;
pub mod history;
pub mod legacy;
pub mod manual;
pub mod nodes;
pub mod record;
pub mod runbooks;
pub mod scripts;
pub mod sim;
