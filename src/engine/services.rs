//! Script API of the services primitives (see `src/primitives/services.rs`).

use rhai::plugin::*;

/// The script API of the services primitives.
#[export_module]
pub mod services_api {}
