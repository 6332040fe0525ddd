//! Script API of the apt primitives (see `src/primitives/apt.rs`).

use rhai::plugin::*;

/// The script API of the apt primitives.
#[export_module]
pub mod apt_api {}
