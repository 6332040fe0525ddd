//! `nodes()` and the `Node` type.

use rhai::plugin::*;

/// The script API for the node set.
#[export_module]
pub mod nodes_api {
    use rhai::{Array, Dynamic};

    use crate::engine::call::arg;
    use crate::error::Error;

    /// A node of the inventory.
    pub type Node = crate::inventory::Node;

    /// Every target node of the run, ordered by name: the inventory minus the excluded
    /// controller instances (`exclude`), narrowed by `--limit`.
    #[rhai_fn(return_raw)]
    pub fn nodes(ctx: NativeCallContext) -> Result<Array, Box<EvalAltResult>> {
        let host = crate::engine::call::host(&ctx)?;
        Ok(host.targets(None).into_iter().map(Dynamic::from).collect())
    }

    /// The target nodes of one group (`groups = [...]` in the inventory), ordered by name.
    /// An unknown group is an error, not an empty set.
    #[rhai_fn(name = "nodes", return_raw)]
    pub fn nodes_of_group(
        ctx: NativeCallContext,
        group: &str,
    ) -> Result<Array, Box<EvalAltResult>> {
        let host = crate::engine::call::host(&ctx)?;
        if !host
            .inventory
            .nodes
            .iter()
            .any(|n| n.groups.iter().any(|g| g == group))
        {
            return arg(
                &ctx,
                Err(Error::argument(format!(
                    "no node of the inventory is in group {group:?}"
                ))),
            );
        }
        Ok(host
            .targets(Some(group))
            .into_iter()
            .map(Dynamic::from)
            .collect())
    }

    /// The node's name (its inventory key).
    #[rhai_fn(get = "name", pure)]
    pub fn name(node: &mut Node) -> String {
        node.name.clone()
    }

    /// The node's address or ssh-config alias.
    #[rhai_fn(get = "host", pure)]
    pub fn host(node: &mut Node) -> String {
        node.host.clone()
    }

    /// The node's groups.
    #[rhai_fn(get = "groups", pure)]
    pub fn groups(node: &mut Node) -> Array {
        node.groups.iter().cloned().map(Dynamic::from).collect()
    }

    /// A node prints as its name.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn to_string(node: &mut Node) -> String {
        node.name.clone()
    }

    /// A node prints as its name.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn to_debug(node: &mut Node) -> String {
        format!("Node({})", node.name)
    }
}
