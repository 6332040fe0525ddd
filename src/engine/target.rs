//! What a script may pass as a target: a `Node`, a node name, or an array of either. One node
//! gives one result; an array fans out and gives a map keyed by node name.

use rhai::{Array, Dynamic, Map};

use crate::error::{Error, Result};
use crate::host::Host;
use crate::inventory::Node;

/// The nodes of a target, and whether the script asked for one node (not an array).
pub struct Target {
    /// The nodes, in the order given.
    pub nodes: Vec<Node>,
    /// True when the target was a single node.
    pub single: bool,
}

impl Target {
    /// Interpret a script value as a target; anything else is an [`Error::Argument`].
    pub fn from_dynamic(host: &Host, value: Dynamic) -> Result<Target> {
        if value.is_array() {
            let items: Array = value.cast();
            let nodes = items
                .into_iter()
                .map(|v| one(host, v))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Target {
                nodes,
                single: false,
            });
        }
        Ok(Target {
            nodes: vec![one(host, value)?],
            single: true,
        })
    }

    /// The one node of a target that must name exactly one (`what` says why, in the error).
    pub fn only(self, what: &str) -> Result<Node> {
        match <[Node; 1]>::try_from(self.nodes) {
            Ok([node]) => Ok(node),
            Err(nodes) => Err(Error::argument(format!(
                "{what}: expected one node, found {}",
                nodes.len()
            ))),
        }
    }

    /// Shape per-node values as the script expects: the value itself for a single node, a
    /// map keyed by node name for an array.
    pub fn shape(&self, values: Vec<(String, Dynamic)>) -> Dynamic {
        if self.single {
            values
                .into_iter()
                .next()
                .map(|(_, v)| v)
                .unwrap_or(Dynamic::UNIT)
        } else {
            by_node(values)
        }
    }
}

/// Values keyed by node name, as a script map.
pub fn by_node(values: Vec<(String, Dynamic)>) -> Dynamic {
    let map: Map = values.into_iter().map(|(k, v)| (k.into(), v)).collect();
    map.into()
}

fn one(host: &Host, value: Dynamic) -> Result<Node> {
    if let Some(node) = value.clone().try_cast::<Node>() {
        return Ok(node);
    }
    if value.is_string() {
        let name = value.to_string();
        return host
            .inventory
            .node(&name)
            .cloned()
            .ok_or_else(|| Error::argument(format!("no node named {name:?} in the inventory")));
    }
    Err(Error::argument(format!(
        "expected a node, a node name or an array of them, found {}",
        value.type_name()
    )))
}
