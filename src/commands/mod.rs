//! Subcommands that are not "run a script": each in its own file.

pub mod nodes;
pub mod runbooks;
pub mod sim;
