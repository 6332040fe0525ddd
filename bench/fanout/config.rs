//! What the benchmark runs with: the fixed numbers (rounds, thresholds, targets), the knobs
//! read from the environment, the ssh configuration variants and the inventories ovsup gets.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use ovsup_testbed::TestBed;

/// Sequential fan-outs timed in each warm measurement.
pub const WARM_ROUNDS: u32 = 10;
/// What `ovsup` wraps every command in on the node (see `transport::bounded`), with the
/// bed's `command_timeout` of 30 s.
pub const WRAPPED_TRUE: &str = "timeout -k 5 30 sh -c true";
/// Cold runs of ovsup whose peak memory is read.
pub const MEM_RUNS: usize = 3;
/// A timed run starts once at most this share of the CPUs was busy (waiting up to 5 s).
pub const QUIET: f64 = 0.25;
/// A run during which other processes used more than this share of the CPUs is disturbed.
pub const DISTURBED: f64 = 0.10;
/// Targets (from the issue).
pub const TARGET_COLD: f64 = 1.05;
pub const TARGET_WARM: f64 = 2.5;
pub const TARGET_MEM_KIB: u64 = 15 * 1024;
/// At 500 nodes (issue 10).
pub const TARGET_MEM_KIB_500: u64 = 25 * 1024;
/// From this many nodes on, `reps_large` repetitions instead of `reps`.
pub const LARGE_N: usize = 200;

pub struct Config {
    pub reps: usize,
    /// Repetitions at `LARGE_N` nodes and more.
    pub reps_large: usize,
    /// Node counts of the curve25519 variant.
    pub nodes_curve: Vec<usize>,
    /// Node counts of the peer comparison (pyinfra, Ansible); empty: none.
    pub peers: Vec<usize>,
    /// Repetitions of the peer comparison (one at `LARGE_N` and more).
    pub peer_reps: usize,
    /// Ansible runs longer than this are stopped (and reported as a lower bound).
    pub ansible_cap: std::time::Duration,
    /// Storage node counts of the operator's procedure; empty: none.
    pub procedure: Vec<usize>,
    /// How many times a disturbed run is done again.
    pub redo: usize,
    /// Print every run.
    pub verbose: bool,
    pub nodes: Vec<usize>,
    pub curve25519: bool,
    pub results: Option<PathBuf>,
}

impl Config {
    /// Repetitions at `n` nodes.
    pub fn reps_at(&self, n: usize) -> usize {
        if n >= LARGE_N {
            self.reps_large
        } else {
            self.reps
        }
    }

    /// The largest node count any part measures on the fan-out bed.
    pub fn max_nodes(&self) -> usize {
        self.nodes
            .iter()
            .chain(if self.curve25519 {
                &self.nodes_curve[..]
            } else {
                &[]
            })
            .chain(&self.peers)
            .copied()
            .max()
            .unwrap_or(3)
    }

    pub fn from_env(bench_mode: bool) -> Config {
        if !bench_mode {
            return Config {
                reps: 1,
                reps_large: 1,
                nodes_curve: vec![3],
                peers: Vec::new(),
                peer_reps: 1,
                ansible_cap: std::time::Duration::from_secs(60),
                procedure: Vec::new(),
                redo: 0,
                verbose: true,
                nodes: vec![3],
                curve25519: false,
                results: None,
            };
        }
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let reps =
            var("FANOUT_REPS").map_or(5, |v| v.trim().parse().expect("FANOUT_REPS: a number"));
        let redo =
            var("FANOUT_REDO").map_or(1, |v| v.trim().parse().expect("FANOUT_REDO: a number"));
        let list = |key: &str, default: &[usize]| -> Vec<usize> {
            match std::env::var(key) {
                Ok(v) if v.trim().is_empty() => Vec::new(),
                Ok(v) => v
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse()
                            .unwrap_or_else(|_| panic!("{key}: numbers, comma-separated"))
                    })
                    .collect(),
                Err(_) => default.to_vec(),
            }
        };
        let nodes = list("FANOUT_NODES", &[10, 50]);
        let nodes_curve = list("FANOUT_NODES_CURVE", &[10, 50, 500]);
        let peers = list("FANOUT_PEERS", &[50, 500]);
        let procedure = list("FANOUT_PROCEDURE", &[10, 50]);
        let num = |key: &str, default: u64| {
            var(key).map_or(default, |v| {
                v.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{key}: a number"))
            })
        };
        let curve25519 = var("FANOUT_CURVE25519").is_none_or(|v| v != "0");
        let results = match std::env::var("FANOUT_RESULTS") {
            Ok(p) if p.is_empty() => None,
            Ok(p) => Some(PathBuf::from(p)),
            Err(_) => Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/RESULTS.md")),
        };
        assert!(reps >= 1 && nodes.iter().all(|&n| n >= 1));
        Config {
            reps,
            reps_large: num("FANOUT_REPS_LARGE", 3) as usize,
            nodes_curve,
            peers,
            peer_reps: num("FANOUT_PEER_REPS", 3) as usize,
            ansible_cap: std::time::Duration::from_secs(num("FANOUT_ANSIBLE_CAP", 600)),
            procedure,
            redo,
            verbose: var("FANOUT_VERBOSE").is_some(),
            nodes,
            curve25519,
            results,
        }
    }
}

/// The ovsup binary cargo built for this benchmark, or `target/release/ovsup`.
pub fn ovsup_binary() -> PathBuf {
    if let Some(p) = option_env!("CARGO_BIN_EXE_ovsup") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let p = target.join("release/ovsup");
    if !p.is_file() {
        panic!(
            "fanout: the ovsup binary {} is missing: run `cargo build --release` first",
            p.display()
        );
    }
    p
}

/// One client-side ssh configuration every contender uses.
pub struct Variant {
    pub label: String,
    /// The node counts measured with it.
    pub nodes: Vec<usize>,
    pub ssh_config: PathBuf,
    /// Also measure the warm fan-out (it doesn't depend on the key exchange).
    pub warm: bool,
}

impl Variant {
    pub fn new(
        bed: &TestBed,
        dir: &Path,
        label: &str,
        extra: Option<&str>,
        warm: bool,
        nodes: Vec<usize>,
    ) -> Variant {
        let ssh_config = match extra {
            None => bed.ssh_config_path().to_path_buf(),
            Some(line) => {
                // The first value obtained wins in ssh_config: put the line first in `Host *`.
                let base = fs::read_to_string(bed.ssh_config_path()).expect("read ssh_config");
                assert!(base.contains("\nHost *\n"), "unexpected bed ssh_config");
                let text = base.replacen("\nHost *\n", &format!("\nHost *\n  {line}\n"), 1);
                let p = dir.join(format!("ssh_config.{label}"));
                fs::write(&p, text).expect("write ssh_config variant");
                p
            }
        };
        Variant {
            label: label.into(),
            nodes,
            ssh_config,
            warm,
        }
    }
}

/// An inventory of the bed's first `n` nodes using `ssh_config`, one environment (`fanout`)
/// for all. `connect_timeout` is ovsup's default (10 s, not the bed's 5): the run must not
/// lose a connect with the default settings (a handshake is bounded by it + 60 s).
pub fn write_inventory(
    bed: &TestBed,
    dir: &Path,
    ssh_config: &Path,
    n: usize,
    label: &str,
) -> PathBuf {
    let q = |s: &str| serde_json::to_string(s).expect("json string");
    let mut s = format!(
        "[environment]\nname = \"fanout\"\n\n[defaults]\nuser = \"root\"\nssh_config = {}\ncommand_timeout = 30\n",
        q(ssh_config.to_str().expect("utf-8 path"))
    );
    for node in &bed.nodes()[..n] {
        let _ = write!(
            s,
            "\n[nodes.{}]\nhost = {}\nport = {}\ngroups = [\"storage\"]\n",
            node.name(),
            q(&node.addr().to_string()),
            node.port()
        );
    }
    let p = dir.join(format!("inventory-{label}-{n}.toml"));
    fs::write(&p, s).expect("write inventory");
    p
}
