//! The built-in simulated cluster behind `ovsup -i sim` (or `sim:N`): the storage nodes and
//! controller instances of a [`Layout`], kept as one state file per node plus the layout
//! itself (`layout.json`) in `<state-dir>/sim/`, so that consecutive commands see one
//! cluster. The nodes of one directory are each other's peers: an Arakoon tool on one node
//! reads the others' state files there (see [`super::peers`]). The SSH test bed puts its
//! nodes' state files in one shared directory the same way.
//!
//! What the CLI needs:
//! - [`ensure`]`(dir, n)` / [`ensure`]`(dir, &layout)` before a run: seeds a fresh directory
//!   with the realistic [`Layout::default_for`]`(n)` or with `layout`, and then finds the stored
//!   layout on later runs (and seeds nodes whose state file is missing).
//! - [`reset`]`(dir, n | &layout)` for `ovsup sim reset`: throws the cluster away and seeds the
//!   given layout, which replaces the stored one; [`reset_from_file`] for
//!   `ovsup sim reset --layout FILE`; [`reseed`] starts over with the stored layout.
//! - [`stored_layout`] and [`Layout::inventory`]: the node names and groups of `-i sim`.

use std::path::{Path, PathBuf};

use super::SimNode;
use super::error::SimError;
use super::layout::Layout;
use super::seed;
use super::state::{NodeState, now_ms};

pub use super::layout::{CONTROLLERS, node_kind, storage_name};

/// Storage nodes when `-i sim` gives no count.
pub const DEFAULT_NODES: usize = 3;
/// The most storage nodes `sim:N` accepts.
pub const MAX_NODES: usize = 64;
/// The stored layout's file name in a cluster directory.
pub const LAYOUT_FILE: &str = "layout.json";

/// Which layout to seed: the built-in one of `n` storage nodes, or a given one.
#[derive(Debug, Clone, Copy)]
pub enum LayoutSpec<'a> {
    /// [`Layout::default_for`]`(n)`.
    Default(usize),
    /// This layout.
    Given(&'a Layout),
}

impl From<usize> for LayoutSpec<'_> {
    fn from(n: usize) -> Self {
        LayoutSpec::Default(n)
    }
}

impl<'a> From<&'a Layout> for LayoutSpec<'a> {
    fn from(l: &'a Layout) -> Self {
        LayoutSpec::Given(l)
    }
}

impl LayoutSpec<'_> {
    fn layout(self) -> Layout {
        match self {
            LayoutSpec::Default(n) => Layout::default_for(n),
            LayoutSpec::Given(l) => l.clone(),
        }
    }
}

/// The state file of `node` in a cluster directory.
pub fn state_file(dir: &Path, node: &str) -> PathBuf {
    dir.join(format!("{node}.json"))
}

/// The stored layout of a cluster directory.
pub fn layout_file(dir: &Path) -> PathBuf {
    dir.join(LAYOUT_FILE)
}

/// Every node name of the built-in layout of `n` storage nodes (storage first, then
/// controllers).
pub fn node_names(n: usize) -> Vec<String> {
    Layout::default_for(n)
        .inventory()
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

fn io<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(std::io::Error) -> SimError + 'a {
    move |source| SimError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// The layout stored in a cluster directory, if any.
pub fn stored_layout(dir: &Path) -> Result<Option<Layout>, SimError> {
    let path = layout_file(dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => Layout::from_json(&path, &text)
            .map(Some)
            .map_err(SimError::Layout),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path, "read the stored layout")(e)),
    }
}

fn store_layout(dir: &Path, layout: &Layout) -> Result<(), SimError> {
    let path = layout_file(dir);
    std::fs::write(&path, layout.to_json() + "\n").map_err(io(&path, "write the stored layout"))
}

/// The seeded state of node `name` of `layout` (storage or controller) at `now_ms`.
pub fn seed_node(layout: &Layout, name: &str, now_ms: u64) -> Option<NodeState> {
    match layout.node(name) {
        Some((i, _)) => seed::storage_node(layout, i, now_ms),
        None => layout
            .controllers
            .iter()
            .any(|c| c == name)
            .then(|| seed::controller_node(name)),
    }
}

/// Whether the directory holds node state files (besides the layout).
fn has_nodes(dir: &Path) -> Result<bool, SimError> {
    if !dir.exists() {
        return Ok(false);
    }
    for entry in std::fs::read_dir(dir).map_err(io(dir, "read the cluster directory"))? {
        let path = entry.map_err(io(dir, "read the cluster directory"))?.path();
        if path.extension().is_some_and(|e| e == "json") && path != layout_file(dir) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Prepares a cluster directory for a run; returns how many nodes were seeded. A fresh
/// directory gets the layout of `spec` (stored as `layout.json`) and its nodes. A directory
/// with a stored layout keeps it — `spec` must agree with it (the same storage-node count
/// for `n`, the same layout for a given one) — and nodes whose state file is missing are
/// seeded again. A directory of nodes without a stored layout (made before layouts existed)
/// is refused: reset it.
pub fn ensure<'a>(dir: &Path, spec: impl Into<LayoutSpec<'a>>) -> Result<usize, SimError> {
    let spec = spec.into();
    std::fs::create_dir_all(dir).map_err(io(dir, "create the cluster directory"))?;
    let layout = match stored_layout(dir)? {
        Some(stored) => {
            check_agrees(dir, &stored, spec)?;
            stored
        }
        None if has_nodes(dir)? => {
            return Err(SimError::Cluster {
                dir: dir.to_path_buf(),
                message: "it holds simulated nodes but no layout (made by an older ovsup): \
                          reset it (`ovsup -i sim sim reset`)"
                    .into(),
            });
        }
        None => {
            let layout = spec.layout();
            store_layout(dir, &layout)?;
            layout
        }
    };
    let now = now_ms();
    let mut seeded = 0;
    for (name, _) in layout.inventory() {
        let path = state_file(dir, &name);
        if let Some(state) = seed_node(&layout, &name, now).filter(|_| !path.exists()) {
            SimNode::create_virtual(&path, &state)?;
            seeded += 1;
        }
    }
    Ok(seeded)
}

fn check_agrees(dir: &Path, stored: &Layout, spec: LayoutSpec<'_>) -> Result<(), SimError> {
    let message = match spec {
        LayoutSpec::Default(n) if stored.nodes.len() != n => format!(
            "its layout has {} storage nodes, not {n}: reset it to change the layout",
            stored.nodes.len()
        ),
        LayoutSpec::Given(l) if l != stored => {
            "it holds another layout: reset it to change the layout".to_owned()
        }
        _ => return Ok(()),
    };
    Err(SimError::Cluster {
        dir: dir.to_path_buf(),
        message,
    })
}

/// Removes every node state, lock and the stored layout of a cluster directory.
fn clear(dir: &Path) -> Result<(), SimError> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(io(dir, "read the cluster directory"))? {
        let path = entry.map_err(io(dir, "read the cluster directory"))?.path();
        let is_state = path.extension().is_some_and(|e| e == "json" || e == "lock");
        if is_state {
            std::fs::remove_file(&path).map_err(io(&path, "remove a node's state"))?;
        }
    }
    Ok(())
}

/// Throws the cluster away and seeds `spec`'s layout, which replaces the stored one.
pub fn reset<'a>(dir: &Path, spec: impl Into<LayoutSpec<'a>>) -> Result<(), SimError> {
    clear(dir)?;
    ensure(dir, spec).map(|_| ())
}

/// `reset` with the layout of a TOML file (`ovsup sim reset --layout FILE`); returns it.
/// A bad file changes nothing and its error names `file:line:col`.
pub fn reset_from_file(dir: &Path, file: &Path) -> Result<Layout, SimError> {
    let layout = Layout::load(file).map_err(SimError::Layout)?;
    reset(dir, &layout)?;
    Ok(layout)
}

/// Starts over with the stored layout (or the built-in one of `n` nodes if none is stored).
pub fn reseed(dir: &Path, n: usize) -> Result<Layout, SimError> {
    let layout = stored_layout(dir)?.unwrap_or_else(|| Layout::default_for(n));
    reset(dir, &layout)?;
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_stores_the_layout_and_later_runs_find_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("sim");
        assert_eq!(ensure(&d, 3).expect("ensure"), 7);
        assert_eq!(
            stored_layout(&d).expect("read"),
            Some(Layout::default_for(3))
        );
        assert_eq!(ensure(&d, 3).expect("again"), 0);
        std::fs::remove_file(state_file(&d, "node-02")).expect("rm");
        assert_eq!(ensure(&d, 3).expect("again"), 1);
        let e = ensure(&d, 5).expect_err("another size");
        assert!(e.to_string().contains("3 storage nodes, not 5"), "{e}");
        let uniform = Layout::uniform(3);
        assert!(ensure(&d, &uniform).is_err());
        reset(&d, &uniform).expect("reset");
        assert_eq!(stored_layout(&d).expect("read"), Some(uniform.clone()));
        assert_eq!(ensure(&d, 3).expect("same count"), 0);
        assert_eq!(reseed(&d, 9).expect("reseed"), uniform);
        let names: Vec<String> = uniform.inventory().into_iter().map(|(n, _)| n).collect();
        for n in &names {
            assert!(state_file(&d, n).exists(), "{n}");
        }
    }

    #[test]
    fn reset_from_a_file_replaces_the_layout_and_a_bad_file_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("sim");
        ensure(&d, 3).expect("ensure");
        let file = dir.path().join("five.toml");
        std::fs::write(&file, super::super::layout::FIVE_NODES_TOML).expect("write");
        let l = reset_from_file(&d, &file).expect("reset");
        assert_eq!(l.nodes.len(), 5);
        assert!(state_file(&d, "node-05").exists());
        assert_eq!(stored_layout(&d).expect("read"), Some(l));
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[nodes.node-01]\ninit = \"sysv\"\napt = \"1.0\"\n").expect("write");
        let e = reset_from_file(&d, &bad).expect_err("bad");
        assert!(e.to_string().contains("bad.toml:2:8"), "{e}");
        assert!(state_file(&d, "node-05").exists());
    }

    #[test]
    fn a_directory_of_nodes_without_layout_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        SimNode::create_virtual(state_file(d, "node-01"), &seed::controller_node("node-01"))
            .expect("create");
        let e = ensure(d, 1).expect_err("old");
        assert!(e.to_string().contains("sim reset"), "{e}");
        reset(d, 1).expect("reset");
        assert!(ensure(d, 1).is_ok());
    }
}
