//! Fan-out benchmark: `true` on N test-bed nodes with ovsup, against the system `ssh` run the
//! way an operator would script it, in the same run and against the same nodes.
//!
//! See `bench/README.md` for what is measured and how to read the ratios. Run with
//! `cargo bench --bench fanout` (as root: the test bed needs mount namespaces). Without
//! `--bench` on the command line (e.g. `cargo test --benches`) it only does a quick smoke run
//! on 3 nodes and writes no results file.
//!
//! Knobs (environment): `FANOUT_REPS` (default 5), `FANOUT_NODES` (default `10,50`),
//! `FANOUT_CURVE25519=0` skips the cold variant with `KexAlgorithms curve25519-sha256`,
//! `FANOUT_REDO` (default 1: how many times a run disturbed by other load is done again),
//! `FANOUT_VERBOSE=1` prints every run, `FANOUT_RESULTS` (default `bench/RESULTS.md`; empty:
//! don't write).

use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ovsup_testbed::TestBed;

/// Sequential fan-outs timed in each warm measurement.
const WARM_ROUNDS: u32 = 10;
/// What `ovsup` wraps every command in on the node (see `transport::bounded`), with the
/// bed's `command_timeout` of 30 s.
const WRAPPED_TRUE: &str = "timeout -k 5 30 sh -c true";
/// Cold runs of ovsup whose peak memory is read.
const MEM_RUNS: usize = 3;
/// A timed run starts once at most this share of the CPUs was busy (waiting up to 5 s).
const QUIET: f64 = 0.25;
/// A run during which other processes used more than this share of the CPUs is disturbed.
const DISTURBED: f64 = 0.10;
/// Targets (from the issue).
const TARGET_COLD: f64 = 1.05;
const TARGET_WARM: f64 = 2.5;
const TARGET_MEM_KIB: u64 = 15 * 1024;

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    become_subreaper();
    let cfg = Config::from_env(bench_mode);
    let ovsup = ovsup_binary();
    println!("fanout: ovsup binary {}", ovsup.display());
    if !bench_mode {
        println!("fanout: no --bench argument: smoke run only (3 nodes, 1 repetition)");
    } else if !ovsup.components().any(|c| c.as_os_str() == "release") {
        println!("fanout: WARNING: the ovsup binary is not a release build");
    }

    // Other work on the machine skews the comparison (the contenders are CPU-bound and
    // spawn processes at different rates): say how busy it was before we started.
    let busy_before = cpu_busy(Duration::from_secs(1));
    if let Some(b) = busy_before {
        println!(
            "fanout: machine CPU busy before the start: {:.0}%",
            b * 100.0
        );
        if b > 0.10 {
            println!("fanout: WARNING: the machine is not idle; expect noisy results");
        }
    }
    let max_n = *cfg.nodes.iter().max().expect("at least one node count");
    let t0 = Instant::now();
    let bed = TestBed::builder().nodes(max_n).start();
    println!(
        "fanout: test bed of {max_n} nodes up in {:.1} s",
        bed.bringup_time().as_secs_f64()
    );
    let work = tempfile::Builder::new()
        .prefix("fanout-")
        .tempdir()
        .expect("create the benchmark's temp dir");
    let state_dir = work.path().join("state");
    fs::create_dir(&state_dir).expect("create state dir");
    let ovsup_tmp = work.path().join("t");
    fs::create_dir(&ovsup_tmp).expect("create ovsup's TMPDIR");

    let mut variants = vec![Variant::new(&bed, work.path(), "default", None, true)];
    if cfg.curve25519 {
        variants.push(Variant::new(
            &bed,
            work.path(),
            "curve25519-sha256",
            Some("KexAlgorithms curve25519-sha256"),
            false,
        ));
    }

    let mut results = Vec::new();
    for v in &variants {
        for &n in &cfg.nodes {
            let ctx = Ctx {
                kex: &v.label,
                ovsup: &ovsup,
                bed: &bed,
                ssh_config: &v.ssh_config,
                inventory: write_inventory(&bed, work.path(), &v.ssh_config, n, &v.label),
                state_dir: &state_dir,
                work: work.path(),
                ovsup_tmp: &ovsup_tmp,
                n,
            };
            println!("fanout: kex {}, {n} nodes …", v.label);
            let r = measure(&ctx, &cfg, v.warm);
            print_progress(&r);
            results.push(r);
        }
    }
    let total = t0.elapsed();

    let report = render(&cfg, &results, total, bench_mode);
    println!("\n{report}");
    if bench_mode && let Some(path) = &cfg.results {
        let md = format!("{}\n{report}", machine_header(busy_before));
        fs::write(path, md).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        println!("fanout: wrote {}", path.display());
    }
    drop(bed);
    drop(work);
}

// ---------------------------------------------------------------------------------------------
// Configuration

struct Config {
    reps: usize,
    /// How many times a disturbed run is done again.
    redo: usize,
    /// Print every run.
    verbose: bool,
    nodes: Vec<usize>,
    curve25519: bool,
    results: Option<PathBuf>,
}

impl Config {
    fn from_env(bench_mode: bool) -> Config {
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
fn ovsup_binary() -> PathBuf {
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
struct Variant {
    label: String,
    ssh_config: PathBuf,
    /// Also measure the warm fan-out (it doesn't depend on the key exchange).
    warm: bool,
}

impl Variant {
    fn new(bed: &TestBed, dir: &Path, label: &str, extra: Option<&str>, warm: bool) -> Variant {
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
fn write_inventory(bed: &TestBed, dir: &Path, ssh_config: &Path, n: usize, label: &str) -> PathBuf {
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

// ---------------------------------------------------------------------------------------------
// Measurements

struct Ctx<'a> {
    kex: &'a str,
    ovsup: &'a Path,
    bed: &'a TestBed,
    ssh_config: &'a Path,
    inventory: PathBuf,
    state_dir: &'a Path,
    work: &'a Path,
    /// ovsup's TMPDIR: its control directories (and so its masters' command lines) are under it.
    ovsup_tmp: &'a Path,
    n: usize,
}

#[derive(Default)]
struct Samples {
    ovsup_cold: Vec<Duration>,
    plain_cold: Vec<Duration>,
    /// Plain ssh running what ovsup sends for `true` (its `timeout … sh -c` wrapper).
    plain_cold_wrapped: Vec<Duration>,
    cm_cold: Vec<Duration>,
    /// Per-round times (total of the rounds / rounds), one per repetition.
    ovsup_warm: Vec<Duration>,
    cm_warm: Vec<Duration>,
    cm_warm_wrapped: Vec<Duration>,
    /// Share of the CPUs other processes used during each kept run.
    other: Vec<f64>,
    /// Runs done again because other processes disturbed them.
    redone: usize,
}

struct Measured {
    kex: String,
    n: usize,
    reps: usize,
    s: Samples,
    warm: bool,
    /// ovsup's peak RSS (VmHWM) in KiB during each of a few cold runs, polled.
    mem_kib: Vec<u64>,
}

#[derive(Clone, Copy, Debug)]
enum Contender {
    OvsupCold,
    PlainCold,
    PlainColdWrapped,
    /// Establish ControlMasters (cold), then the warm rounds over them, then close them.
    ControlMaster,
    OvsupWarm,
}

fn measure(ctx: &Ctx<'_>, cfg: &Config, warm: bool) -> Measured {
    let mut s = Samples::default();
    let mut contenders = vec![
        Contender::OvsupCold,
        Contender::PlainCold,
        Contender::PlainColdWrapped,
        Contender::ControlMaster,
    ];
    if warm {
        contenders.push(Contender::OvsupWarm);
    }

    // One untimed pass of each contender (page cache, first-use costs).
    ovsup_cold(ctx, false);
    plain_cold(ctx, "true");
    drop(Masters::establish(ctx));
    cleanup(ctx);

    for rep in 0..cfg.reps {
        // Alternate the order: rotate by one each repetition, reversed every other one.
        let mut order = contenders.clone();
        let k = order.len();
        order.rotate_left(rep % k);
        if rep % 2 == 1 {
            order.reverse();
        }
        for c in order {
            // A run that other work on the machine disturbed is done again (once).
            let mut attempt = 0;
            let (times, other) = loop {
                attempt += 1;
                settle();
                let before = CpuSnap::take(ctx.bed);
                let times = run_contender(ctx, c, warm);
                cleanup(ctx);
                let other = CpuSnap::take(ctx.bed).other_load_since(&before);
                if cfg.verbose {
                    println!(
                        "    {c:?} attempt {attempt}: {:?}, other load {:.0}%",
                        times,
                        other * 100.0
                    );
                }
                if other <= DISTURBED || attempt > cfg.redo {
                    break (times, other);
                }
                s.redone += 1;
            };
            s.other.push(other);
            let mut times = times.into_iter();
            let mut next = || times.next().expect("a time per sample");
            match c {
                Contender::OvsupCold => s.ovsup_cold.push(next()),
                Contender::PlainCold => s.plain_cold.push(next()),
                Contender::PlainColdWrapped => s.plain_cold_wrapped.push(next()),
                Contender::ControlMaster => {
                    s.cm_cold.push(next());
                    if warm {
                        s.cm_warm.push(next());
                        s.cm_warm_wrapped.push(next());
                    }
                }
                Contender::OvsupWarm => s.ovsup_warm.push(next()),
            }
        }
    }
    // ovsup's peak memory: separate runs, so that polling /proc doesn't disturb the timings.
    let mem_kib = if warm {
        (0..MEM_RUNS)
            .filter_map(|_| {
                let m = ovsup_cold(ctx, true).1;
                cleanup(ctx);
                m
            })
            .collect()
    } else {
        Vec::new()
    };
    Measured {
        kex: ctx.kex.to_string(),
        n: ctx.n,
        reps: cfg.reps,
        s,
        warm,
        mem_kib,
    }
}

/// One run of a contender: its time(s), in the order `measure` files them.
fn run_contender(ctx: &Ctx<'_>, c: Contender, warm: bool) -> Vec<Duration> {
    match c {
        Contender::OvsupCold => vec![ovsup_cold(ctx, false).0],
        Contender::PlainCold => vec![plain_cold(ctx, "true")],
        Contender::PlainColdWrapped => vec![plain_cold(ctx, WRAPPED_TRUE)],
        Contender::ControlMaster => {
            let cm = Masters::establish(ctx);
            let mut v = vec![cm.took];
            if warm {
                v.push(cm.rounds(ctx, "true"));
                v.push(cm.rounds(ctx, WRAPPED_TRUE));
            }
            v
        }
        Contender::OvsupWarm => vec![ovsup_warm(ctx)],
    }
}

/// `ovsup … eval CODE` to its end; returns the wall time, the peak RSS if polled, and the
/// result's value.
fn run_ovsup(
    ctx: &Ctx<'_>,
    code: &str,
    poll_mem: bool,
) -> (Duration, Option<u64>, serde_json::Value) {
    let out_path = ctx.work.join("ovsup.stdout");
    let err_path = ctx.work.join("ovsup.stderr");
    let mut cmd = Command::new(ctx.ovsup);
    cmd.arg("-i")
        .arg(&ctx.inventory)
        .arg("--state-dir")
        .arg(ctx.state_dir)
        .arg("--forks")
        .arg(ctx.n.to_string())
        .args(["--json", "eval", code])
        .env_remove("OVSUP_INVENTORY")
        .env_remove("OVSUP_STATE_DIR")
        .env("TMPDIR", ctx.ovsup_tmp)
        .stdin(Stdio::null())
        // Files, not pipes: a process that inherits them (an ssh master) can't hold us up.
        .stdout(File::create(&out_path).expect("create ovsup.stdout"))
        .stderr(File::create(&err_path).expect("create ovsup.stderr"));
    let start = Instant::now();
    let mut child = cmd.spawn().expect("start ovsup");
    let mut hwm = None;
    let status = if poll_mem {
        let status_file = format!("/proc/{}/status", child.id());
        loop {
            if let Some(kib) = fs::read_to_string(&status_file)
                .ok()
                .as_deref()
                .and_then(vm_hwm_kib)
            {
                hwm = Some(kib);
            }
            if let Some(st) = child.try_wait().expect("wait ovsup") {
                break st;
            }
            thread::sleep(Duration::from_millis(2));
        }
    } else {
        child.wait().expect("wait ovsup")
    };
    let took = start.elapsed();
    wait_gone(ctx.ovsup_tmp);
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    let result: Option<serde_json::Value> = stdout
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "result");
    match result {
        Some(r) if status.success() && r["ok"] == true => (took, hwm, r["value"].clone()),
        _ => panic!(
            "fanout: ovsup failed ({status}) on {} nodes\ncode: {code}\nstdout tail:\n{}\nstderr:\n{stderr}",
            ctx.n,
            tail(&stdout, 5)
        ),
    }
}

fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Cold ovsup: the whole process (start, connect every node, run, close the masters).
fn ovsup_cold(ctx: &Ctx<'_>, poll_mem: bool) -> (Duration, Option<u64>) {
    let (took, mem, _) = run_ovsup(ctx, r#"sh(nodes(), "true")"#, poll_mem);
    (took, mem)
}

/// Warm ovsup: connect every node with one fan-out, then time `WARM_ROUNDS` sequential
/// fan-outs inside the script; returns the time per fan-out.
fn ovsup_warm(ctx: &Ctx<'_>) -> Duration {
    let code = format!(
        r#"sh(nodes(), "true"); let t = timestamp(); for i in 0..{WARM_ROUNDS} {{ sh(nodes(), "true"); }} t.elapsed"#
    );
    let (_, _, value) = run_ovsup(ctx, &code, false);
    let secs = value
        .as_f64()
        .unwrap_or_else(|| panic!("fanout: the warm script returned {value}, not seconds"));
    Duration::from_secs_f64(secs / f64::from(WARM_ROUNDS))
}

/// `ssh -F <config> [opts] -p PORT root@ADDR REMOTE` for every node, not started.
fn ssh_commands(
    ctx: &Ctx<'_>,
    opts: &[String],
    remote: &str,
    tag: &str,
) -> Vec<(Command, PathBuf)> {
    ctx.bed.nodes()[..ctx.n]
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let log = ctx.work.join(format!("ssh-{tag}-{i}.stderr"));
            let mut c = Command::new("ssh");
            c.arg("-F")
                .arg(ctx.ssh_config)
                .args(opts)
                .arg("-p")
                .arg(node.port().to_string())
                .arg(format!("root@{}", node.addr()))
                .arg(remote)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&log).expect("create ssh log"));
            (c, log)
        })
        .collect()
}

/// Starts every command at once and waits for all; panics (with stderr) if one failed.
fn run_all(cmds: Vec<(Command, PathBuf)>, what: &str) -> Duration {
    let start = Instant::now();
    let children: Vec<(Child, PathBuf)> = cmds
        .into_iter()
        .map(|(mut c, log)| (c.spawn().expect("start ssh"), log))
        .collect();
    let statuses: Vec<(ExitStatus, PathBuf)> = children
        .into_iter()
        .map(|(mut c, log)| (c.wait().expect("wait ssh"), log))
        .collect();
    let took = start.elapsed();
    for (st, log) in statuses {
        if !st.success() {
            panic!(
                "fanout: {what} failed ({st}): {}",
                fs::read_to_string(&log).unwrap_or_default().trim()
            );
        }
    }
    took
}

/// N plain `ssh … REMOTE` at once (each connects, runs, disconnects).
fn plain_cold(ctx: &Ctx<'_>, remote: &str) -> Duration {
    run_all(ssh_commands(ctx, &[], remote, "plain"), "plain ssh")
}

/// ControlMasters of every node, opened by `ssh -o ControlMaster=yes -o ControlPersist=60 …
/// true` all at once; closed with `ssh -O exit` on drop.
struct Masters<'a> {
    ctx: &'a Ctx<'a>,
    dir: tempfile::TempDir,
    took: Duration,
}

impl<'a> Masters<'a> {
    fn establish(ctx: &'a Ctx<'a>) -> Masters<'a> {
        // Short: the socket path (plus a temporary suffix) must fit in 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("fo-")
            .tempdir_in("/tmp")
            .expect("create control dir");
        let mut m = Masters {
            ctx,
            dir,
            took: Duration::ZERO,
        };
        let mut opts = m.path_opts();
        opts.extend(["-o".into(), "ControlMaster=yes".into()]);
        opts.extend(["-o".into(), "ControlPersist=60".into()]);
        m.took = run_all(ssh_commands(ctx, &opts, "true", "cm"), "ssh ControlMaster");
        m
    }

    fn path_opts(&self) -> Vec<String> {
        vec![
            "-o".into(),
            format!("ControlPath={}/%C", self.dir.path().display()),
        ]
    }

    /// `WARM_ROUNDS` sequential fan-outs of `remote` over the masters; the time per fan-out.
    fn rounds(&self, ctx: &Ctx<'_>, remote: &str) -> Duration {
        let mut opts = self.path_opts();
        opts.extend(["-o".into(), "ControlMaster=no".into()]);
        let mut total = Duration::ZERO;
        for _ in 0..WARM_ROUNDS {
            total += run_all(
                ssh_commands(ctx, &opts, remote, "mux"),
                "ssh over ControlMaster",
            );
        }
        total / WARM_ROUNDS
    }
}

impl Drop for Masters<'_> {
    fn drop(&mut self) {
        let mut opts = self.path_opts();
        opts.extend(["-O".into(), "exit".into()]);
        let cmds = ssh_commands(self.ctx, &opts, "", "exit");
        let children: Vec<Child> = cmds
            .into_iter()
            .filter_map(|(mut c, _)| c.spawn().ok())
            .collect();
        for mut c in children {
            let _ = c.wait();
        }
        wait_gone(self.dir.path());
    }
}

/// Waits (bounded) until no process has `marker` in its command line: the ssh masters of a
/// contender exit after it returned, and must not load the machine during the next one.
fn wait_gone(marker: &Path) {
    let marker = marker.as_os_str().as_encoded_bytes();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        reap_adopted(&[]);
        let left: Vec<u32> = procs()
            .filter(|p| {
                fs::read(format!("/proc/{}/cmdline", p.pid))
                    .is_ok_and(|c| c.windows(marker.len()).any(|w| w == marker))
            })
            .map(|p| p.pid)
            .collect();
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            eprintln!(
                "fanout: processes of {} still running: {left:?}",
                String::from_utf8_lossy(marker)
            );
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// After a run: waits (bounded) until every node's sshd has reaped its sessions, so that their
/// CPU time is accounted to the sshd, and reaps the ssh masters that were left to us.
fn cleanup(ctx: &Ctx<'_>) {
    let sshds = sshd_pids(ctx.bed);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        reap_adopted(&sshds);
        if !procs().any(|p| sshds.contains(&p.ppid)) || Instant::now() > deadline {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Waits (up to 5 s) for the machine to be quiet: at most `QUIET` of the CPUs busy over 0.2 s.
fn settle() {
    let deadline = Instant::now() + Duration::from_secs(5);
    while cpu_busy(Duration::from_millis(200)).unwrap_or(0.0) > QUIET && Instant::now() < deadline {
    }
}

// ---------------------------------------------------------------------------------------------
// Accounting for other load on the machine
//
// A run is compared with what the whole machine did meanwhile: the CPU time all CPUs spent
// busy (/proc/stat) minus the CPU time of our own processes: this process and every child it
// reaped (ovsup, ssh), every node's sshd with the sessions it reaped, and the ssh masters,
// which ssh detaches: as a child subreaper we adopt and reap them, so their time counts too.
// What is left was used by others (or by the kernel on nobody's behalf).

mod sys {
    unsafe extern "C" {
        pub fn prctl(option: i32, ...) -> i32;
        pub fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    }
    pub const PR_SET_CHILD_SUBREAPER: i32 = 36;
    pub const WNOHANG: i32 = 1;
}

fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only sets a flag of this process.
    let rc = unsafe { sys::prctl(sys::PR_SET_CHILD_SUBREAPER, 1u64) };
    if rc != 0 {
        println!("fanout: could not become a child subreaper; other-load figures will be high");
    }
}

/// Reaps exited processes that were reparented to us (detached ssh masters), never the
/// bed's own children (`keep`) nor children we still have a handle on (all are waited for
/// before this is called).
fn reap_adopted(keep: &[u32]) {
    let me = std::process::id();
    for p in procs() {
        if p.ppid == me && p.state == 'Z' && !keep.contains(&p.pid) {
            let mut status = 0;
            // SAFETY: waitpid on a zombie child of ours; `status` is a valid out pointer.
            unsafe { sys::waitpid(p.pid as i32, &mut status, sys::WNOHANG) };
        }
    }
}

struct Proc {
    pid: u32,
    ppid: u32,
    state: char,
    /// utime + stime + cutime + cstime, in clock ticks.
    ticks: u64,
}

fn proc_stat(pid: &str) -> Option<Proc> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), from field 3 (state) on.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Proc {
        pid: pid.parse().ok()?,
        ppid: field(4)? as u32,
        state: rest.first()?.chars().next()?,
        ticks: field(14)? + field(15)? + field(16)? + field(17)?,
    })
}

fn procs() -> impl Iterator<Item = Proc> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let pid = name.to_str()?;
            pid.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| proc_stat(pid))?
        })
}

fn sshd_pids(bed: &TestBed) -> Vec<u32> {
    bed.nodes().iter().filter_map(|n| n.sshd_pid()).collect()
}

/// Busy CPU time of the machine and CPU time of our processes, at one moment.
struct CpuSnap {
    at: Instant,
    busy: u64,
    ours: u64,
}

impl CpuSnap {
    fn take(bed: &TestBed) -> CpuSnap {
        let ours = proc_stat(&std::process::id().to_string()).map_or(0, |p| p.ticks)
            + sshd_pids(bed)
                .iter()
                .filter_map(|p| proc_stat(&p.to_string()))
                .map(|p| p.ticks)
                .sum::<u64>();
        CpuSnap {
            at: Instant::now(),
            busy: machine_ticks().map_or(0, |(total, idle)| total - idle),
            ours,
        }
    }

    /// The share of all CPUs that other processes used since `before`.
    fn other_load_since(&self, before: &CpuSnap) -> f64 {
        let cpus = thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let ticks_per_s = 100.0; // USER_HZ
        let window = (self.at - before.at).as_secs_f64() * ticks_per_s * cpus;
        let busy = self.busy.saturating_sub(before.busy) as f64;
        let ours = self.ours.saturating_sub(before.ours) as f64;
        ((busy - ours) / window).max(0.0)
    }
}

/// (all, idle) CPU time of the machine in clock ticks, from `/proc/stat`.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total, idle))
}

// ---------------------------------------------------------------------------------------------
// Reporting

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    let k = v.len();
    if k == 0 {
        Duration::ZERO
    } else if k % 2 == 1 {
        v[k / 2]
    } else {
        (v[k / 2 - 1] + v[k / 2]) / 2
    }
}

fn min(v: &[Duration]) -> Duration {
    v.iter().copied().min().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn med_min(v: &[Duration]) -> String {
    format!("{} / {}", ms(median(v)), ms(min(v)))
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn print_progress(r: &Measured) {
    println!(
        "  cold: ovsup {}, plain ssh {} (wrapped command {}), ssh+ControlMaster {}",
        ms(median(&r.s.ovsup_cold)),
        ms(median(&r.s.plain_cold)),
        ms(median(&r.s.plain_cold_wrapped)),
        ms(median(&r.s.cm_cold))
    );
    if r.warm {
        println!(
            "  warm per fan-out: ovsup {}, ssh over ControlMaster {} (wrapped command {})",
            ms(median(&r.s.ovsup_warm)),
            ms(median(&r.s.cm_warm)),
            ms(median(&r.s.cm_warm_wrapped))
        );
    }
    println!(
        "  other load during the timed runs: {}",
        other_summary(&r.s)
    );
}

/// `median X%, max Y% of the CPUs; K runs done again, J kept although disturbed`.
fn other_summary(s: &Samples) -> String {
    let mut v = s.other.clone();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return "not measured".into();
    }
    let disturbed = v.iter().filter(|&&b| b > DISTURBED).count();
    format!(
        "median {:.0}%, max {:.0}% of the CPUs; {} run(s) done again, {disturbed} of {} kept although above {:.0}%",
        v[v.len() / 2] * 100.0,
        v[v.len() - 1] * 100.0,
        s.redone,
        v.len(),
        DISTURBED * 100.0
    )
}

/// The markdown report (also printed): tables of medians, minima and ratios.
fn render(cfg: &Config, results: &[Measured], total: Duration, bench_mode: bool) -> String {
    let mut s = String::new();
    let reps = results.first().map_or(0, |r| r.reps);
    let _ = writeln!(
        s,
        "Times are `median / min` over {reps} repetitions (contender order alternated between \
         repetitions). Ratios are of the medians (of the minima in brackets).{}\n",
        if bench_mode {
            ""
        } else {
            " SMOKE RUN: not a measurement."
        }
    );

    let _ = writeln!(
        s,
        "### Cold: `true` on N nodes, connections included\n\n\
         | kex | N | ovsup (whole process) | plain `ssh` ×N | `ssh` ControlMaster ×N | **ovsup / plain ssh** | target ≤ {TARGET_COLD} | ovsup / ssh CM | plain `ssh` ×N running `{WRAPPED_TRUE}` | ovsup / plain ssh wrapped |\n\
         |---|---:|---:|---:|---:|---:|---|---:|---:|---:|"
    );
    for r in results {
        let (o, p, c, w) = (
            &r.s.ovsup_cold,
            &r.s.plain_cold,
            &r.s.cm_cold,
            &r.s.plain_cold_wrapped,
        );
        let rp = ratio(median(o), median(p));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | **{rp:.2}** ({:.2}) | {} | {:.2} ({:.2}) | {} | {:.2} ({:.2}) |",
            r.kex,
            r.n,
            med_min(o),
            med_min(p),
            med_min(c),
            ratio(min(o), min(p)),
            verdict(rp <= TARGET_COLD),
            ratio(median(o), median(c)),
            ratio(min(o), min(c)),
            med_min(w),
            ratio(median(o), median(w)),
            ratio(min(o), min(w)),
        );
    }

    let _ = writeln!(
        s,
        "\n### Warm: one fan-out of `true` over N open connections ({WARM_ROUNDS} sequential fan-outs, time per fan-out)\n\n\
         | N | ovsup (native-mux) | `ssh` over ControlMaster ×N | **ssh CM / ovsup** | target ≥ {TARGET_WARM} (at N=50) | `ssh` CM ×N running `{WRAPPED_TRUE}` | ssh CM wrapped / ovsup | wrapper cost per fan-out (ssh CM) |\n\
         |---:|---:|---:|---:|---|---:|---:|---:|"
    );
    for r in results.iter().filter(|r| r.warm) {
        let (o, c, w) = (&r.s.ovsup_warm, &r.s.cm_warm, &r.s.cm_warm_wrapped);
        let rc = ratio(median(c), median(o));
        let target = if r.n >= 50 {
            verdict(rc >= TARGET_WARM)
        } else {
            "(N=50 only)"
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | **{rc:.2}** ({:.2}) | {target} | {} | {:.2} ({:.2}) | {:+.1} ms |",
            r.n,
            med_min(o),
            med_min(c),
            ratio(min(c), min(o)),
            med_min(w),
            ratio(median(w), median(o)),
            ratio(min(w), min(o)),
            (median(w).as_secs_f64() - median(c).as_secs_f64()) * 1e3
        );
    }

    let _ = writeln!(
        s,
        "\n### Memory: ovsup's own peak RSS (VmHWM) during a cold run (ssh masters not counted)\n\n\
         | kex | N | peak RSS, highest of {MEM_RUNS} runs | all runs | target < {} MiB |\n|---|---:|---:|---|---|",
        TARGET_MEM_KIB / 1024
    );
    let mib = |k: u64| format!("{:.1} MiB", k as f64 / 1024.0);
    for r in results.iter().filter(|r| r.warm) {
        let all: Vec<String> = r.mem_kib.iter().map(|&k| mib(k)).collect();
        let (shown, ok) = match r.mem_kib.iter().max() {
            Some(&k) => (mib(k), k < TARGET_MEM_KIB),
            None => ("not read".into(), false),
        };
        let target = if r.n >= 50 {
            verdict(ok)
        } else {
            "(N=50 only)"
        };
        let _ = writeln!(
            s,
            "| {} | {} | {shown} | {} | {target} |",
            r.kex,
            r.n,
            all.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "\n### Other load on the machine\n\n\
         CPU time the machine spent busy during each timed run minus the CPU time of the \
         benchmark's own processes (contenders, ssh masters, the nodes' sshd). A run above \
         {:.0}% is done again (up to {} time(s)); each run starts once at most {:.0}% of the \
         CPUs were busy over 0.2 s (waiting up to 5 s).\n\n\
         | kex | N | other processes during the kept runs |\n|---|---:|---|",
        DISTURBED * 100.0,
        cfg.redo,
        QUIET * 100.0
    );
    for r in results {
        let _ = writeln!(s, "| {} | {} | {} |", r.kex, r.n, other_summary(&r.s));
    }
    let _ = writeln!(
        s,
        "\nRuns: {} node counts × {} key exchange(s), {:.0} s in all (including the test bed).",
        cfg.nodes.len(),
        results.len() / cfg.nodes.len().max(1),
        total.as_secs_f64()
    );
    s
}

/// The share of all CPUs busy over `span` (from `/proc/stat`).
fn cpu_busy(span: Duration) -> Option<f64> {
    let (t0, i0) = machine_ticks()?;
    thread::sleep(span);
    let (t1, i1) = machine_ticks()?;
    let dt = t1.checked_sub(t0).filter(|&d| d > 0)?;
    Some(1.0 - (i1 - i0) as f64 / dt as f64)
}

fn machine_header(busy_before: Option<f64>) -> String {
    let cmd = |prog: &str, args: &[&str]| -> String {
        Command::new(prog)
            .args(args)
            .output()
            .map(|o| {
                let mut t = String::from_utf8_lossy(&o.stdout).into_owned();
                t.push_str(&String::from_utf8_lossy(&o.stderr));
                t.trim().to_string()
            })
            .unwrap_or_else(|e| format!("({prog}: {e})"))
    };
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "?".into());
    let nproc = thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let manifest = env!("CARGO_MANIFEST_DIR");
    let commit = cmd("git", &["-C", manifest, "rev-parse", "--short", "HEAD"]);
    let dirty = !cmd("git", &["-C", manifest, "status", "--porcelain"]).is_empty();
    format!(
        "# Fan-out benchmark results\n\n\
         - Date: {}\n\
         - Machine: {nproc} CPUs (nproc), {cpu}, Linux {}\n\
         - OpenSSH: {} (client and test-bed sshd)\n\
         - ovsup: commit {commit}{}, release build\n\
         - Command: `cargo bench --bench fanout`\n\
         - Machine CPU busy in the second before the start: {}\n",
        cmd("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        kernel.trim(),
        cmd("ssh", &["-V"]),
        if dirty {
            " (with uncommitted changes)"
        } else {
            ""
        },
        busy_before.map_or("?".into(), |b| format!("{:.0}%", b * 100.0)),
    )
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
