//! The built-in simulated cluster behind `ovsup -i sim` (or `sim:N`): N storage nodes plus the
//! four controller instances the legacy script excluded, kept as one state file per node in
//! `<state-dir>/sim/` so that consecutive commands see one cluster. The test bed seeds its real
//! nodes with the same kinds, so a runbook meets the same mix on both.

use std::path::{Path, PathBuf};

use super::SimNode;
use super::error::SimError;
use super::seed;
use super::state::{AptVariant, Init, NodeState};

/// Storage nodes when `-i sim` gives no count.
pub const DEFAULT_NODES: usize = 3;
/// The most storage nodes `sim:N` accepts.
pub const MAX_NODES: usize = 64;
/// The controller instances of an OpenvCloud environment (never targeted).
pub const CONTROLLERS: [&str; 4] = ["ovc_master", "ovc_proxy", "ovc_reflector", "ovc_dcpm"];

/// The name of storage node `index` (0-based): `node-01`, `node-02`, …
pub fn storage_name(index: usize) -> String {
    format!("node-{:02}", index + 1)
}

/// The kind of storage node `index`: the mix of an environment in mid-migration, so every
/// runbook meets both init systems and both apt layouts: upstart with apt 1.0, systemd with
/// apt 1.2, upstart with apt 1.2, then again.
pub fn node_kind(index: usize) -> (Init, AptVariant) {
    match index % 3 {
        0 => (Init::Upstart, AptVariant::V1_0),
        1 => (Init::Systemd, AptVariant::V1_2),
        _ => (Init::Upstart, AptVariant::V1_2),
    }
}

/// The seeded state of storage node `index`.
pub fn storage_state(index: usize) -> NodeState {
    let (init, apt) = node_kind(index);
    seed::storage_node(&storage_name(index), index, init, apt)
}

/// The state file of `node` in a cluster directory.
pub fn state_file(dir: &Path, node: &str) -> PathBuf {
    dir.join(format!("{node}.json"))
}

/// Every node name of a cluster of `n` storage nodes (storage first, then controllers).
pub fn node_names(n: usize) -> Vec<String> {
    (0..n)
        .map(storage_name)
        .chain(CONTROLLERS.iter().map(|c| c.to_string()))
        .collect()
}

/// Seed the nodes of a cluster that have no state file yet; returns how many were seeded.
pub fn ensure(dir: &Path, n: usize) -> Result<usize, SimError> {
    std::fs::create_dir_all(dir).map_err(|source| SimError::Io {
        path: dir.to_path_buf(),
        action: "create the cluster directory",
        source,
    })?;
    let mut seeded = 0;
    for index in 0..n {
        let path = state_file(dir, &storage_name(index));
        if !path.exists() {
            SimNode::create_virtual(&path, &storage_state(index))?;
            seeded += 1;
        }
    }
    for name in CONTROLLERS {
        let path = state_file(dir, name);
        if !path.exists() {
            SimNode::create_virtual(&path, &seed::controller_node(name))?;
            seeded += 1;
        }
    }
    Ok(seeded)
}

/// Throw the cluster away and seed it anew.
pub fn reset(dir: &Path, n: usize) -> Result<(), SimError> {
    if dir.exists() {
        for entry in std::fs::read_dir(dir).map_err(|source| SimError::Io {
            path: dir.to_path_buf(),
            action: "read the cluster directory",
            source,
        })? {
            let path = entry
                .map_err(|source| SimError::Io {
                    path: dir.to_path_buf(),
                    action: "read the cluster directory",
                    source,
                })?
                .path();
            let is_state = path.extension().is_some_and(|e| e == "json" || e == "lock");
            if is_state {
                std::fs::remove_file(&path).map_err(|source| SimError::Io {
                    path: path.clone(),
                    action: "remove a node's state",
                    source,
                })?;
            }
        }
    }
    ensure(dir, n).map(|_| ())
}
