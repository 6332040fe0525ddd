//! What a script may pass as a target: a `Node`, a node name, or an array of either. One node
//! gives one result; an array fans out and gives a map keyed by node name.

use rhai::{Array, Dynamic, EvalAltResult, Map};

use super::error::raise;
use crate::error::Error;
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
    /// Interpret a script value as a target.
    pub fn from_dynamic(host: &Host, value: Dynamic) -> Result<Target, Box<EvalAltResult>> {
        if value.is_array() {
            let items: Array = value.cast();
            let nodes = items
                .into_iter()
                .map(|v| one(host, v))
                .collect::<Result<Vec<_>, _>>()?;
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
            let map: Map = values.into_iter().map(|(k, v)| (k.into(), v)).collect();
            map.into()
        }
    }
}

fn one(host: &Host, value: Dynamic) -> Result<Node, Box<EvalAltResult>> {
    if let Some(node) = value.clone().try_cast::<Node>() {
        return Ok(node);
    }
    if value.is_string() {
        let name = value.to_string();
        return host.inventory.node(&name).cloned().ok_or_else(|| {
            raise(Error::Usage(format!(
                "no node named {name:?} in the inventory"
            )))
        });
    }
    Err(raise(Error::Usage(format!(
        "expected a node, a node name or an array of them, found {}",
        value.type_name()
    ))))
}
