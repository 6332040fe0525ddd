//! The contenders, each run once against the bed's first N nodes: ovsup (a whole cold process,
//! or warm fan-outs timed inside one script), N plain `ssh` processes, and `ssh` over
//! ControlMaster (masters opened cold, then warm rounds over them).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ovsup_testbed::TestBed;

use crate::config::{WARM_ROUNDS, WRAPPED_TRUE};
use crate::procs::wait_gone;

/// What one measurement runs against: the bed, the client files, N.
pub struct Ctx<'a> {
    pub kex: &'a str,
    pub ovsup: &'a Path,
    pub bed: &'a TestBed,
    pub ssh_config: &'a Path,
    pub inventory: PathBuf,
    pub state_dir: &'a Path,
    pub work: &'a Path,
    /// ovsup's TMPDIR.
    pub ovsup_tmp: &'a Path,
    pub n: usize,
}

impl Ctx<'_> {
    /// Where ovsup's masters keep their sockets (their command lines name it).
    pub fn control_dir(&self) -> PathBuf {
        self.state_dir.join("ssh")
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Contender {
    OvsupCold,
    /// A read-only fan-out (`query`): no run lock on the nodes.
    OvsupColdRead,
    PlainCold,
    PlainColdWrapped,
    /// Establish ControlMasters (cold), then the warm rounds over them, then close them.
    ControlMaster,
    OvsupWarm,
}

/// One untimed pass of each contender (page cache, first-use costs).
pub fn warm_up(ctx: &Ctx<'_>) {
    ovsup_cold(ctx, false);
    plain_cold(ctx, "true");
    drop(Masters::establish(ctx));
}

/// One run of a contender: its time(s), in the order `measure` files them.
pub fn run_contender(ctx: &Ctx<'_>, c: Contender, warm: bool) -> Vec<Duration> {
    match c {
        Contender::OvsupCold => vec![ovsup_cold(ctx, false).0],
        Contender::OvsupColdRead => vec![ovsup_cold_read(ctx)],
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
    // The masters stay for the next invocation (the default): close them, untimed, so that
    // every cold run is cold.
    disconnect(ctx);
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

/// `ovsup -i INV --state-dir DIR --forks N --json ARGS…` to its end, which must succeed; its
/// wall time. The masters it opened stay.
pub fn run_ovsup_args(ctx: &Ctx<'_>, args: &[&str]) -> Duration {
    let out_path = ctx.work.join("ovsup.stdout");
    let err_path = ctx.work.join("ovsup.stderr");
    let start = Instant::now();
    let status = Command::new(ctx.ovsup)
        .arg("-i")
        .arg(&ctx.inventory)
        .arg("--state-dir")
        .arg(ctx.state_dir)
        .arg("--forks")
        .arg(ctx.n.to_string())
        .arg("--json")
        .args(args)
        .env_remove("OVSUP_INVENTORY")
        .env_remove("OVSUP_STATE_DIR")
        .env("TMPDIR", ctx.ovsup_tmp)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("create ovsup.stdout"))
        .stderr(File::create(&err_path).expect("create ovsup.stderr"))
        .status()
        .expect("start ovsup");
    let took = start.elapsed();
    if !status.success() {
        panic!(
            "fanout: ovsup {args:?} failed ({status}) on {} nodes\nstdout tail:\n{}\nstderr:\n{}",
            ctx.n,
            tail(&fs::read_to_string(&out_path).unwrap_or_default(), 5),
            fs::read_to_string(&err_path).unwrap_or_default()
        );
    }
    took
}

/// `ovsup disconnect` on the bench's environment, and wait until its masters are gone.
pub fn disconnect(ctx: &Ctx<'_>) {
    let st = Command::new(ctx.ovsup)
        .arg("-i")
        .arg(&ctx.inventory)
        .arg("--state-dir")
        .arg(ctx.state_dir)
        .arg("disconnect")
        .env_remove("OVSUP_INVENTORY")
        .env_remove("OVSUP_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("run ovsup disconnect");
    assert!(st.success(), "ovsup disconnect failed ({st})");
    wait_gone(&ctx.control_dir());
}

/// Cold ovsup, read-only: `query(nodes(), "true")` takes no run lock.
fn ovsup_cold_read(ctx: &Ctx<'_>) -> Duration {
    run_ovsup(ctx, r#"query(nodes(), "true")"#, false).0
}

/// Cold ovsup: the whole process (start, connect every node, run, close the masters).
pub fn ovsup_cold(ctx: &Ctx<'_>, poll_mem: bool) -> (Duration, Option<u64>) {
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
pub struct Masters<'a> {
    ctx: &'a Ctx<'a>,
    dir: tempfile::TempDir,
    took: Duration,
}

impl<'a> Masters<'a> {
    pub fn establish(ctx: &'a Ctx<'a>) -> Masters<'a> {
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

    /// The control directory (the masters' command lines name it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// One fan-out of `remote` over the masters (N `ssh` at once); its time.
    pub fn round(&self, ctx: &Ctx<'_>, remote: &str) -> Duration {
        let mut opts = self.path_opts();
        opts.extend(["-o".into(), "ControlMaster=no".into()]);
        run_all(
            ssh_commands(ctx, &opts, remote, "mux"),
            "ssh over ControlMaster",
        )
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

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
