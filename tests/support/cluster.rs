//! One Open vStorage cluster for a test, on either backend: the built-in in-process simulator
//! (`-i sim:N`) or real sshd test-bed nodes whose PATH carries the `ovs-sim` links. A test
//! written against [`Cluster`] runs unchanged on both, which is how every primitive and
//! runbook is tested twice by the same code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ovsup::sim::SimNode;
use ovsup::sim::cluster::{self, CONTROLLERS};
use ovsup::sim::state::{AptVariant, DomState, Init, NodeState, now_ms};

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
    storage: usize,
    dir: tempfile::TempDir,
    bed: Option<TestBed>,
}

/// Where `ovs-sim` keeps a test node's state (inside the node's private /var).
const NODE_STATE: &str = "/var/lib/ovs-sim/state.json";

impl Cluster {
    /// `storage` storage nodes plus the controller instances, on `backend`.
    pub fn new(backend: Backend, storage: usize) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let bed = match backend {
            Backend::Sim => None,
            Backend::Ssh => Some(start_bed(dir.path(), storage)),
        };
        Cluster {
            backend,
            storage,
            dir,
            bed,
        }
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
            None => PathBuf::from(format!("sim:{}", self.storage)),
        };
        Ovsup::with_inventory(&inventory).state_dir(&self.state_dir())
    }

    /// The storage node names, in order.
    pub fn storage_names(&self) -> Vec<String> {
        (0..self.storage).map(cluster::storage_name).collect()
    }

    fn node(&self, name: &str) -> SimNode {
        let path = match &self.bed {
            Some(bed) => bed.node_named(name).root_path().join(&NODE_STATE[1..]),
            None => {
                // The in-process cluster is seeded by the first run; seed it now if needed,
                // in a state directory as private as ovsup makes (and requires) it.
                ovsup::state::ensure_dir(&self.state_dir()).expect("the state directory");
                let dir = self.state_dir().join("sim");
                cluster::ensure(&dir, self.storage).expect("seed the simulated cluster");
                cluster::state_file(&dir, name)
            }
        };
        SimNode::open_virtual(path).expect("open the simulated node")
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
}

fn start_bed(dir: &Path, storage: usize) -> TestBed {
    let sim = env!("CARGO_BIN_EXE_ovs-sim");
    let links = dir.join("bin");
    std::fs::create_dir_all(&links).expect("links dir");
    for tool in ovsup::sim::cli::TOOLS {
        std::os::unix::fs::symlink(sim, links.join(tool)).expect("link a tool");
    }
    // The nodes' /tmp is private: a checkout under /tmp (as CI's may be) must be shared for
    // the nodes to see the simulator binary the links point to.
    let sim_dir = Path::new(sim).parent().expect("the binary has a directory");
    let mut builder = TestBed::builder()
        .nodes(storage)
        .share_host_dir(sim_dir)
        .path_prepend(&links)
        .env("OVS_SIM_STATE", NODE_STATE)
        .setup(move |node| seed(node, sim));
    for c in CONTROLLERS {
        builder = builder.extra_node(c, &["controller"]);
    }
    builder.start()
}

/// Seed a test node the way the built-in cluster seeds the same name.
fn seed(node: &Node, sim: &str) {
    let name = node.name();
    let mut argv: Vec<String> = vec![sim.into(), "seed".into(), "--node".into(), name.into()];
    if CONTROLLERS.contains(&name) {
        argv.push("--controller".into());
    } else {
        let index = name
            .strip_prefix("node-")
            .and_then(|n| n.parse::<usize>().ok())
            .map(|n| n - 1)
            .expect("storage nodes are node-NN");
        let (init, apt) = cluster::node_kind(index);
        argv.extend([
            "--index".into(),
            index.to_string(),
            "--init".into(),
            match init {
                Init::Upstart => "upstart",
                Init::Systemd => "systemd",
            }
            .into(),
            "--apt".into(),
            match apt {
                AptVariant::V1_0 => "1.0",
                AptVariant::V1_2 => "1.2",
            }
            .into(),
        ]);
    }
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
