//! Script API of the cluster primitives (see `src/primitives/cluster.rs`).

use rhai::plugin::*;

/// The script API of the cluster primitives.
#[export_module]
pub mod cluster_api {}
