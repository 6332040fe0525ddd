//! The operator's figure: the whole procedure of docs/upgrade-guide.md as an operator runs
//! it — its invocations one after the other — on a test bed whose nodes run the simulator's
//! tools (seeded as tests/support/cluster.rs seeds them), at N storage nodes (and the four
//! controller instances, which nothing targets). Total time, and the VM downtime window
//! (the first `virsh shutdown` sent → the last `virsh start` answered, from the journals),
//! cold (`--control-persist 0`: every invocation connects anew) against the default (the
//! masters kept between invocations). Only the public commands are used, so the figure
//! follows the runbooks as they change. A step that fails or refuses would stop the operator;
//! here the later steps still run (so that they are measured: `stop-vm` and `start-vm` do not
//! need the upgrades), and the report says which step failed and why.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

use ovsup::sim::cluster::{self, CONTROLLERS};
use ovsup::sim::state::{AptVariant, Init};
use ovsup_testbed::{Node, TestBed, kill_and_wait};

/// The guide's invocations, in order (docs/upgrade-guide.md).
pub const STEPS: &[&[&str]] = &[
    &["update"],
    &["check"],
    &["preprocess"],
    &["framework"],
    &["arakoon"],
    &["stop-vm"],
    &["volumedriver", "--skip-vm"],
    &["alba", "--skip-vm"],
    &["start-vm"],
    &["postprocess"],
];

/// One step as it ran.
pub struct Step {
    pub args: String,
    pub code: i32,
    pub took: Duration,
    /// The last lines of stderr, when it failed.
    pub error: String,
}

/// One whole procedure.
pub struct Run {
    pub steps: Vec<Step>,
    pub total: Duration,
    /// First VM shutdown → last VM start, when both happened.
    pub downtime: Option<Duration>,
}

/// Cold and kept at one N.
pub struct ProcedureResult {
    pub n: usize,
    pub cold: Run,
    pub kept: Run,
}

/// Both runs at `n` storage nodes, each on a freshly seeded bed.
pub fn measure(ovsup: &Path, work: &Path, n: usize) -> ProcedureResult {
    let cold = once(ovsup, work, n, false);
    let kept = once(ovsup, work, n, true);
    ProcedureResult { n, cold, kept }
}

fn once(ovsup: &Path, work: &Path, n: usize, keep: bool) -> Run {
    let dir = work.join(format!(
        "procedure-{n}-{}",
        if keep { "kept" } else { "cold" }
    ));
    fs::create_dir_all(&dir).expect("procedure dir");
    let bed = start_bed(&dir, n);
    let state = dir.join("state");
    let mut steps = Vec::new();
    let began = Instant::now();
    for (i, args) in STEPS.iter().enumerate() {
        let mut c = Command::new(ovsup);
        c.arg("-i")
            .arg(bed.inventory_path())
            .arg("--state-dir")
            .arg(&state)
            .args(["--yes", "--forks", "64"]);
        if !keep {
            c.args(["--control-persist", "0"]);
        }
        let err = dir.join(format!("step-{i}.stderr"));
        c.args(args.iter())
            .env_remove("OVSUP_INVENTORY")
            .env_remove("OVSUP_STATE_DIR")
            .env("OVSUP_LEGACY_VM_RECORD", dir.join("legacy-vm-record.json"))
            .env("TMPDIR", &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&err).expect("stderr file"));
        let t = Instant::now();
        let status = c.status().expect("run ovsup");
        let code = status.code().unwrap_or(-1);
        let error = if code == 0 {
            String::new()
        } else {
            let text = fs::read_to_string(&err).unwrap_or_default();
            // The error line and the first reason under it, not the source excerpt.
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.starts_with('^'))
                .filter(|l| !l.chars().next().is_some_and(|c| c.is_ascii_digit()))
                .collect();
            let at = lines
                .iter()
                .position(|l| l.starts_with("error:"))
                .unwrap_or(0);
            lines[at..]
                .iter()
                .take(3)
                .copied()
                .collect::<Vec<_>>()
                .join(" / ")
        };
        steps.push(Step {
            args: args.join(" "),
            code,
            took: t.elapsed(),
            error,
        });
    }
    let total = began.elapsed();
    let downtime = downtime(&state.join("runs"));
    // The kept masters, and anything else started against the bed, go with it.
    let _ = Command::new(ovsup)
        .arg("-i")
        .arg(bed.inventory_path())
        .arg("--state-dir")
        .arg(&state)
        .arg("disconnect")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    kill_and_wait(&bed.client_processes());
    drop(bed);
    Run {
        steps,
        total,
        downtime,
    }
}

/// From the journals: the start of the first `virsh shutdown` to the end of the last
/// `virsh start`.
fn downtime(runs: &Path) -> Option<Duration> {
    let mut first_stop: Option<u128> = None;
    let mut last_start: Option<u128> = None;
    for entry in fs::read_dir(runs).ok()?.flatten() {
        let text = fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let (Some(cmd), Some(start), Some(ms)) =
                (v["command"].as_str(), v["start"].as_str(), v["ms"].as_u64())
            else {
                continue;
            };
            let Some(at) = millis(start) else { continue };
            if cmd.starts_with("virsh shutdown") {
                first_stop = Some(first_stop.map_or(at, |f| f.min(at)));
            }
            if cmd.starts_with("virsh start") {
                let end = at + u128::from(ms);
                last_start = Some(last_start.map_or(end, |l| l.max(end)));
            }
        }
    }
    match (first_stop, last_start) {
        (Some(a), Some(b)) if b >= a => Some(Duration::from_millis((b - a) as u64)),
        _ => None,
    }
}

/// Milliseconds since the epoch of an RFC 3339 UTC time as the journal writes it.
fn millis(t: &str) -> Option<u128> {
    let at = humantime::parse_rfc3339(t).ok()?;
    Some(at.duration_since(UNIX_EPOCH).ok()?.as_millis())
}

/// A bed of `storage` nodes and the controller instances, running the simulator's tools.
fn start_bed(dir: &Path, storage: usize) -> TestBed {
    let sim = env!("CARGO_BIN_EXE_ovs-sim");
    let links = dir.join("bin");
    fs::create_dir_all(&links).expect("links dir");
    for tool in ovsup::sim::cli::TOOLS {
        let _ = std::os::unix::fs::symlink(sim, links.join(tool));
    }
    let sim_dir = Path::new(sim).parent().expect("the binary has a directory");
    let mut builder = TestBed::builder()
        .nodes(storage)
        .share_host_dir(sim_dir)
        .path_prepend(&links)
        .env("OVS_SIM_STATE", "/var/lib/ovs-sim/state.json")
        .ssh_config_extra("KexAlgorithms curve25519-sha256")
        .defaults_toml("connect_timeout = 10")
        .setup(move |node| seed(node, sim));
    for c in CONTROLLERS {
        builder = builder.extra_node(c, &["controller"]);
    }
    builder.start()
}

/// Seed a node the way the built-in cluster seeds the same name (tests/support/cluster.rs).
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
