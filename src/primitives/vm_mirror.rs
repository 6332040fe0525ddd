//! The VM record mirrored on the nodes. The record of the VMs `stop_vms` shut down lives in
//! the controller's state directory; if that machine or its disk is lost during the downtime
//! window, nobody would know which VMs to start again. So each node keeps the part of the
//! record that concerns it, `/var/lib/ovsup/vm-record.json` (written atomically, before the
//! first shutdown, and again when its VMs run again), and every read of the record reconciles
//! the controller's copy with the nodes': a VM either side holds is kept — a disagreement is
//! shown, never resolved by dropping VMs — and what only the nodes knew is written back to the
//! controller. `start-vm` from a new controller with an empty state directory thus finds and
//! starts exactly the recorded VMs.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::host::{Host, OnFailure, PerNode, all_ok};
use crate::inventory::Node;
use crate::report::{Event, Level};
use crate::state::vm_record::{self, VmRecord};

/// Where a node keeps its part of the record.
pub const NODE_PATH: &str = "/var/lib/ovsup/vm-record.json";

/// A node's copy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeCopy {
    /// The environment whose runs wrote it.
    pub environment: String,
    /// The node it describes.
    pub node: String,
    /// The VMs stopped on it and not yet started again.
    pub vms: Vec<String>,
}

/// Write `vms` as `node`'s copy of the record (an empty list when none are left). Only
/// printed in a dry run.
pub async fn write(host: &Host, node: &Node, vms: &[String]) -> Result<()> {
    let copy = NodeCopy {
        environment: host.inventory.name.clone(),
        node: node.name.clone(),
        vms: vms.to_vec(),
    };
    let mut text = serde_json::to_vec_pretty(&copy).map_err(|e| Error::Internal(e.to_string()))?;
    text.push(b'\n');
    host.write_file(node, NODE_PATH, text).await
}

/// Write every node's copy from `record`, in parallel (before the first shutdown: a node
/// whose copy cannot be written stops the stop).
pub async fn write_all(host: &Host, nodes: &[Node], record: &VmRecord) -> Result<()> {
    let written = host
        .fan_out(
            "mirror the VM record",
            nodes,
            OnFailure::Stop,
            |node| async move { write(host, &node, record.vms(&node.name)).await },
        )
        .await;
    all_ok(written).map(|_| ())
}

/// `node`'s copy, or `None` when it has none. A copy another environment wrote, or one that
/// does not parse, is an error naming the node and the file.
async fn read(host: &Host, node: &Node) -> Result<Option<NodeCopy>> {
    let Some(bytes) = crate::primitives::files::read_optional(host, node, NODE_PATH).await? else {
        return Ok(None);
    };
    let copy: NodeCopy = serde_json::from_slice(&bytes).map_err(|e| {
        Error::node_state(
            &node.name,
            format!("{NODE_PATH} is not a VM record ({e}); inspect it, it is never overwritten"),
        )
    })?;
    if copy.environment != host.inventory.name || copy.node != node.name {
        return Err(Error::node_state(
            &node.name,
            format!(
                "{NODE_PATH} was written for node {:?} of the environment {:?}, not for this \
                 node of {:?}; inspect it",
                copy.node, copy.environment, host.inventory.name
            ),
        ));
    }
    Ok(Some(copy))
}

/// Every target node's copy, in parallel (read-only: runs in a dry run too).
async fn read_all(host: &Host, nodes: &[Node]) -> PerNode<Option<NodeCopy>> {
    host.fan_out(NODE_PATH, nodes, OnFailure::Continue, |node| async move {
        read(host, &node).await
    })
    .await
}

fn warn(host: &Host, message: String) {
    host.report(Event::Log {
        level: Level::Warn,
        message,
    });
}

/// The VM record, reconciled: the controller's copy, and the copies of the run's target
/// nodes. Whatever either side holds is kept; a disagreement is warned about; VMs only the
/// nodes knew are written back to the controller's record (not in a dry run). A node whose
/// copy cannot be read is warned about (its VMs as the controller knows them stay). Refused
/// while an unimported legacy record holds VMs.
pub async fn reconciled(host: &Host) -> Result<VmRecord> {
    vm_record::refuse_unimported_legacy(&vm_record::legacy_path())?;
    let path = VmRecord::path(&host.state_dir);
    let mut record = VmRecord::load(&path)?;
    let mut recovered = 0;
    for (name, copy) in read_all(host, &host.targets(None)).await {
        let copy = match copy {
            Ok(Some(copy)) => copy,
            Ok(None) => NodeCopy {
                environment: host.inventory.name.clone(),
                node: name.clone(),
                vms: Vec::new(),
            },
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(e) => {
                warn(
                    host,
                    format!(
                        "the node's copy of the VM record could not be read, the controller's stands: {e}"
                    ),
                );
                continue;
            }
        };
        let only_controller: Vec<&String> = record
            .vms(&name)
            .iter()
            .filter(|v| !copy.vms.contains(v))
            .collect();
        if !only_controller.is_empty() && !copy.vms.is_empty() {
            warn(
                host,
                format!(
                    "{name}: the controller's VM record holds {only_controller:?}, which the node's copy lacks: kept"
                ),
            );
        }
        let added = record.merge(&name, &copy.vms);
        if added > 0 {
            warn(
                host,
                format!(
                    "{name}: the node's copy of the VM record holds {added} VMs the controller's record lacks (recovered from the node): {:?}",
                    copy.vms
                ),
            );
            recovered += added;
        }
    }
    if recovered > 0 && !host.dry_run {
        record.save(&path)?;
    }
    Ok(record)
}
