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

pub struct Config {
    pub reps: usize,
    /// How many times a disturbed run is done again.
    pub redo: usize,
    /// Print every run.
    pub verbose: bool,
    pub nodes: Vec<usize>,
    pub curve25519: bool,
    pub results: Option<PathBuf>,
}

impl Config {
    pub fn from_env(bench_mode: bool) -> Config {
        if !bench_mode {
            return Config {
                reps: 1,
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
        let nodes = var("FANOUT_NODES").map_or(vec![10, 50], |v| {
            v.split(',')
                .map(|s| {
                    s.trim()
                        .parse()
                        .expect("FANOUT_NODES: numbers, comma-separated")
                })
                .collect()
        });
        let curve25519 = var("FANOUT_CURVE25519").is_none_or(|v| v != "0");
        let results = match std::env::var("FANOUT_RESULTS") {
            Ok(p) if p.is_empty() => None,
            Ok(p) => Some(PathBuf::from(p)),
            Err(_) => Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/RESULTS.md")),
        };
        assert!(reps >= 1 && nodes.iter().all(|&n| n >= 1));
        Config {
            reps,
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
    pub ssh_config: PathBuf,
    /// Also measure the warm fan-out (it doesn't depend on the key exchange).
    pub warm: bool,
}

impl Variant {
    pub fn new(bed: &TestBed, dir: &Path, label: &str, extra: Option<&str>, warm: bool) -> Variant {
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
            ssh_config,
            warm,
        }
    }
}

/// An inventory of the bed's first `n` nodes using `ssh_config`. `connect_timeout` is raised
/// from the bed's 5 s: ovsup bounds a whole handshake by twice that, and 50 default-kex
/// handshakes on a loaded 2-core machine can take longer (plain ssh has no such bound).
pub fn write_inventory(
    bed: &TestBed,
    dir: &Path,
    ssh_config: &Path,
    n: usize,
    label: &str,
) -> PathBuf {
    let q = |s: &str| serde_json::to_string(s).expect("json string");
    let mut s = format!(
        "[defaults]\nuser = \"root\"\nssh_config = {}\nconnect_timeout = 30\ncommand_timeout = 30\n",
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
