//! The primitives, as plain async Rust over a [`crate::host::Host`]: no Rhai here. Each takes a
//! set of nodes, fans out over them, and parses what the real tools print. `src/engine/` only
//! adapts them to scripts.

pub mod apt;
pub mod apt_lock;
pub mod arakoon;
pub mod cluster;
pub mod exec;
pub mod files;
pub mod health;
pub mod parse;
pub mod services;
pub mod topology;
pub mod vm_mirror;
pub mod vms;
