//! One Open vStorage cluster for a test, on either backend: the built-in in-process simulator
//! (`-i sim:N`) or real sshd test-bed nodes whose PATH carries the `ovs-sim` links. A test
//! written against [`Cluster`] runs unchanged on both, which is how every primitive and
//! runbook is tested twice by the same code.
//!
//! The cluster has a [`Layout`]: [`Cluster::new`] seeds the legacy "everything everywhere"
//! one ([`Layout::uniform`]) the older tests were written for, [`Cluster::with_layout`] any
//! other. On the SSH bed every node's state file (`OVS_SIM_STATE`) is `<dir>/nodes/<node>.json`
//! in one directory shared into every node at the same path, beside the layout
//! (`layout.json`), so that a node's Arakoon tools see its peers as in-process nodes do; each
//! node's files stay on its own (overlay) filesystem.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ovsup::sim::SimNode;
use ovsup::sim::cluster;
use ovsup::sim::layout::Layout;
use ovsup::sim::state::{DomState, NodeState, now_ms};

use super::ovsup::Ovsup;
use ovsup_testbed::{Node, TestBed};

/// Which backend a cluster runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// In-process simulator, no SSH.
    Sim,
    /// Real sshd nodes running the simulator's tools.
    Ssh,
}

/// A simulated Open vStorage cluster for one test.
pub struct Cluster {
    backend: Backend,
    layout: Layout,
    // The bed (its nodes) goes before the directory its nodes share.
    bed: Option<TestBed>,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// `storage` storage nodes of the legacy layout (every node runs everything) plus the
    /// controller instances, on `backend`.
    pub fn new(backend: Backend, storage: usize) -> Cluster {
        Cluster::with_layout(backend, Layout::uniform(storage))
    }

    /// The nodes of `layout` on `backend`. Storage nodes must be `node-01`… for the
    /// in-process backend, whose inventory is `-i sim:N`.
    pub fn with_layout(backend: Backend, layout: Layout) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let bed = match backend {
            Backend::Sim => {
                // The state directory as private as ovsup makes (and requires) it.
                let state = dir.path().join("state");
                ovsup::state::ensure_dir(&state).expect("the state directory");
                let sim = state.join("sim");
                cluster::ensure(&sim, &layout).expect("seed the simulated cluster");
                None
            }
            Backend::Ssh => Some(start_bed(dir.path(), &layout)),
        };
        Cluster {
            backend,
            layout,
            bed,
            dir,
        }
    }

    /// The cluster's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The state directory the cluster's runs use.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `ovsup` aimed at this cluster.
    pub fn ovsup(&self) -> Ovsup {
        let inventory = match &self.bed {
            Some(bed) => bed.inventory_path().to_path_buf(),
            None => PathBuf::from(format!("sim:{}", self.layout.nodes.len())),
        };
        Ovsup::with_inventory(&inventory).state_dir(&self.state_dir())
    }

    /// The storage node names, in order.
    pub fn storage_names(&self) -> Vec<String> {
        self.layout.storage_names()
    }

    /// Every node name: the storage nodes, then the controller instances.
    pub fn all_names(&self) -> Vec<String> {
        let mut names = self.storage_names();
        names.extend(cluster::CONTROLLERS.iter().map(|s| s.to_string()));
        names
    }

    /// How many commands each node (of [`Cluster::all_names`]) has received so far: the
    /// marks [`Cluster::history_since`] counts from.
    pub fn history_marks(&self) -> BTreeMap<String, usize> {
        self.all_names()
            .into_iter()
            .map(|n| {
                let len = self.state(&n).history.len();
                (n, len)
            })
            .collect()
    }

    /// The commands each node received since `marks` (from [`Cluster::history_marks`]).
    pub fn history_since(&self, marks: &BTreeMap<String, usize>) -> BTreeMap<String, Vec<String>> {
        marks
            .iter()
            .map(|(n, &len)| (n.clone(), self.state(n).history[len..].to_vec()))
            .collect()
    }

    /// The steps in progress, as the state directory's `steps.json` records them.
    pub fn steps_in_progress(&self) -> BTreeSet<String> {
        match std::fs::read_to_string(self.state_dir().join("steps.json")) {
            Ok(text) => serde_json::from_str::<BTreeMap<String, serde_json::Value>>(&text)
                .expect("steps.json is JSON")
                .into_keys()
                .collect(),
            Err(_) => BTreeSet::new(),
        }
    }

    /// The directory of the nodes' state files (and the stored layout).
    pub fn nodes_dir(&self) -> PathBuf {
        match self.backend {
            Backend::Sim => self.state_dir().join("sim"),
            Backend::Ssh => shared_nodes_dir(self.dir.path()),
        }
    }

    fn node(&self, name: &str) -> SimNode {
        SimNode::open_virtual(cluster::state_file(&self.nodes_dir(), name))
            .expect("open the simulated node")
    }

    /// A node's state as the simulator holds it.
    pub fn state(&self, name: &str) -> NodeState {
        self.node(name).state().expect("read node state")
    }

    /// `ovsup [extra…] --json eval CODE`, which must succeed; the script's value.
    pub fn eval_value(&self, extra: &[&str], code: &str) -> serde_json::Value {
        let ran = self
            .ovsup()
            .args(extra)
            .args(["--json", "eval", code])
            .run()
            .code(0);
        ran.json_result()["value"].clone()
    }

    /// Every command line of the journals of every run on this cluster so far, oldest run first.
    pub fn journal(&self) -> Vec<serde_json::Value> {
        super::ovsup::journal_lines(&self.state_dir())
    }

    /// The VMs running on each storage node now.
    pub fn running_vms(&self) -> BTreeMap<String, BTreeSet<String>> {
        let now = now_ms();
        self.storage_names()
            .into_iter()
            .map(|node| {
                let s = self.state(&node);
                let vms = s
                    .domains
                    .keys()
                    .filter(|d| s.domain_state(d, now) == Some(DomState::Running))
                    .cloned()
                    .collect();
                (node, vms)
            })
            .collect()
    }

    /// Change a node's state (set a fault, say) under the node's lock.
    pub fn update<R>(&self, name: &str, f: impl FnOnce(&mut NodeState) -> R) -> R {
        self.node(name).update(f).expect("update node state")
    }

    /// Take a node off the network, or bring it back: over SSH its sshd (and every session
    /// on it) is stopped or started again; in-process the simulator's transport refuses it
    /// (`ovsup sim fault NODE unreachable`). Its files and state stay as they are.
    pub fn set_reachable(&self, name: &str, reachable: bool) {
        match &self.bed {
            Some(bed) if reachable => bed.node_named(name).start(),
            Some(bed) => bed.node_named(name).stop(),
            None => {
                let file = ovsup::transport::sim::SimTransport::down_file(&self.nodes_dir(), name);
                if reachable {
                    let _ = std::fs::remove_file(&file);
                } else {
                    std::fs::write(&file, "").expect("mark the node down");
                }
            }
        }
    }

    /// The inventory file of an SSH cluster (`None` in-process: `-i sim:N`).
    pub fn inventory_path(&self) -> Option<&Path> {
        self.bed.as_ref().map(|b| b.inventory_path())
    }

    /// The test bed of an SSH cluster.
    pub fn bed(&self) -> Option<&TestBed> {
        self.bed.as_ref()
    }
}

/// The directory shared by every node of the bed: their state files and the layout.
fn shared_nodes_dir(dir: &Path) -> PathBuf {
    dir.join("nodes")
}

fn start_bed(dir: &Path, layout: &Layout) -> TestBed {
    let sim = env!("CARGO_BIN_EXE_ovs-sim");
    let links = dir.join("bin");
    std::fs::create_dir_all(&links).expect("links dir");
    for tool in ovsup::sim::cli::TOOLS {
        std::os::unix::fs::symlink(sim, links.join(tool)).expect("link a tool");
    }
    let nodes = shared_nodes_dir(dir);
    std::fs::create_dir_all(&nodes).expect("nodes dir");
    let layout_file = cluster::layout_file(&nodes);
    std::fs::write(&layout_file, layout.to_json()).expect("write the layout");
    // The nodes' /tmp is private: a checkout under /tmp (as CI's may be) must be shared for
    // the nodes to see the simulator binary the links point to.
    let sim_dir = Path::new(sim).parent().expect("the binary has a directory");
    let seeded_nodes = nodes.clone();
    let mut builder = TestBed::builder()
        .nodes(0)
        .share_host_dir(sim_dir)
        .share_host_dir(&nodes)
        .path_prepend(&links)
        .setup(move |node| seed(node, sim, &seeded_nodes));
    for (name, groups) in layout.inventory() {
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        let state = cluster::state_file(&nodes, &name);
        builder = builder.extra_node(&name, &groups).node_env(
            &name,
            "OVS_SIM_STATE",
            state.to_str().expect("utf-8 path"),
        );
    }
    builder.start()
}

/// Seed a test node as the layout in the shared directory says.
fn seed(node: &Node, sim: &str, nodes: &Path) {
    let name = node.name();
    let state = cluster::state_file(nodes, name);
    let layout = cluster::layout_file(nodes);
    let argv: Vec<&std::ffi::OsStr> = vec![
        sim.as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
        "seed".as_ref(),
        "--node".as_ref(),
        name.as_ref(),
        "--layout".as_ref(),
        layout.as_os_str(),
    ];
    let out = node.run_local(&argv);
    assert!(
        out.status.success(),
        "seed {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = node.sh_local(&format!(
        "mkdir -p /etc/init.d && ln -sf {sim} /etc/init.d/memcached"
    ));
    assert!(out.status.success(), "memcached link on {name}");
}

/// Runs each named scenario, an ordinary `fn NAME(backend: Backend)` of the calling module,
/// on both backends: `on_both_backends!(a, b);` makes the tests `a::sim`, `a::ssh`, `b::sim`
/// and `b::ssh`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sim() {
                    super::$name($crate::support::cluster::Backend::Sim);
                }
                #[test]
                fn ssh() {
                    super::$name($crate::support::cluster::Backend::Ssh);
                }
            }
        )+
    };
}
