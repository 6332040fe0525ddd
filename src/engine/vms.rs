//! Script API of the vms primitives (see `src/primitives/vms.rs`).

use rhai::plugin::*;

/// The script API of the vms primitives.
#[export_module]
pub mod vms_api {}
