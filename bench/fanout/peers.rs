//! The peers an operator would pick instead, on the same nodes, with the same key, known_hosts
//! and `KexAlgorithms curve25519-sha256`: five fan-outs of `true` as an ovsup runbook (five
//! `sh(nodes(), "true")`), a pyinfra deploy of five `server.shell` operations, and an Ansible
//! playbook of five `command` tasks (pipelining on, `ControlPersist=60s` as Ansible ships
//! it). Cold (no connection open) and, for ovsup and Ansible, the second invocation right
//! after (the masters kept). And the controller's CPU per remote command.
//!
//! pyinfra and ansible-core come from PyPI into a venv under `target/` that the bench creates
//! on its first run (never committed): `pyinfra==3.10.0` and `ansible-core==2.19.14` (the
//! newest ansible-core that runs on the machine's Python 3.11).

use std::fmt::Write as _;
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ovsup_testbed::{TestBed, kill_and_wait, processes_naming};

use crate::config::{Config, LARGE_N};
use crate::contenders::{Ctx, disconnect, run_ovsup_args};
use crate::procs::{children_cpu, cpu_of_naming, reap_adopted};

pub const PYINFRA: &str = "pyinfra==3.10.0";
pub const ANSIBLE: &str = "ansible-core==2.19.14";
/// Ansible's forks at most (each fork is a Python process of ~60 MB).
pub const ANSIBLE_FORKS: usize = 50;

/// What the peer comparison measured at one N.
pub struct PeerResult {
    pub n: usize,
    pub reps: usize,
    pub ovsup_cold: Vec<Duration>,
    pub ovsup_second: Vec<Duration>,
    pub pyinfra: Vec<Duration>,
    pub ansible_cold: Vec<Duration>,
    pub ansible_second: Vec<Duration>,
    /// Ansible was stopped at the cap (its time is a lower bound).
    pub ansible_capped: bool,
    pub cpu: Option<CpuPerCommand>,
}

/// The controller's CPU per remote command (marginal: a run of [`CPU_MANY`] fan-outs minus a
/// run of [`CPU_FEW`], over the commands between), for each contender.
pub struct CpuPerCommand {
    pub ovsup: Duration,
    /// Of `ovsup`, what its ssh masters spent (the mux channel, the crypto).
    pub ovsup_masters: Duration,
    pub ssh_cm: Duration,
    pub pyinfra: Duration,
}

/// The venv with pyinfra and ansible-core, created (once) under `target/`.
pub fn venv() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-venv");
    let bin = dir.join("bin");
    if bin.join("pyinfra").is_file() && bin.join("ansible-playbook").is_file() {
        return bin;
    }
    println!("fanout: creating the peers' venv in {} …", dir.display());
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(bin.join("pip"))
            .args(["install", "-q", PYINFRA, ANSIBLE])
            .status()
            .is_ok_and(|s| s.success());
    assert!(
        ok,
        "fanout: could not install {PYINFRA} and {ANSIBLE} into {}",
        dir.display()
    );
    bin
}

/// The files each peer runs with, for the bed's first `n` nodes.
struct Files {
    runbook: PathBuf,
    pyinfra_inventory: PathBuf,
    pyinfra_deploy5: PathBuf,
    pyinfra_deploy_many: PathBuf,
    ansible_cfg: PathBuf,
    playbook: PathBuf,
    ansible_cp: PathBuf,
}

fn write_files(bed: &TestBed, dir: &Path, ssh_config: &Path, n: usize) -> Files {
    let dir = dir.join(format!("peers-{n}"));
    fs::create_dir_all(&dir).expect("peers dir");
    let runbook = dir.join("five.rhai");
    let five = "sh(nodes(), \"true\");\n".repeat(5);
    fs::write(&runbook, format!("// Five fan-outs of `true`.\n{five}")).expect("runbook");
    let key = bed.client_key_path().display().to_string();
    let known = bed.known_hosts_path().display().to_string();
    let mut inv = String::from("hosts = [\n");
    for node in &bed.nodes()[..n] {
        let _ = writeln!(
            inv,
            "    (\"{}\", {{\"ssh_port\": {}, \"ssh_user\": \"root\", \"ssh_key\": \"{key}\", \
             \"ssh_known_hosts_file\": \"{known}\", \"ssh_strict_host_key_checking\": \"yes\"}}),",
            node.addr(),
            node.port()
        );
    }
    inv.push_str("]\n");
    let pyinfra_inventory = dir.join("inventory.py");
    fs::write(&pyinfra_inventory, inv).expect("pyinfra inventory");
    let deploy = |ops: usize| {
        let mut d = String::from("from pyinfra.operations import server\n");
        for i in 0..ops {
            let _ = writeln!(d, "server.shell(name=\"true {i}\", commands=[\"true\"])");
        }
        let p = dir.join(format!("deploy{ops}.py"));
        fs::write(&p, d).expect("pyinfra deploy");
        p
    };
    let mut hosts = String::from("[nodes]\n");
    for node in &bed.nodes()[..n] {
        let _ = writeln!(hosts, "{} ansible_port={}", node.addr(), node.port());
    }
    fs::write(dir.join("hosts.ini"), hosts).expect("ansible inventory");
    let ansible_cp = dir.join("cp");
    let ansible_cfg = dir.join("ansible.cfg");
    fs::write(
        &ansible_cfg,
        format!(
            "[defaults]\ninventory = {inv}\nforks = {forks}\nhost_key_checking = True\n\
             gathering = explicit\ninterpreter_python = /usr/bin/python3\nremote_user = root\n\
             private_key_file = {key}\nretry_files_enabled = False\n\n[ssh_connection]\n\
             pipelining = True\n\
             ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s -F {cfg}\n\
             control_path_dir = {cp}\n",
            inv = dir.join("hosts.ini").display(),
            forks = n.min(ANSIBLE_FORKS),
            cfg = ssh_config.display(),
            cp = ansible_cp.display(),
        ),
    )
    .expect("ansible.cfg");
    let playbook = dir.join("play.yml");
    fs::write(
        &playbook,
        format!(
            "- hosts: nodes\n  gather_facts: false\n  tasks:\n{}",
            "    - command: \"true\"\n".repeat(5)
        ),
    )
    .expect("playbook");
    Files {
        runbook,
        pyinfra_inventory,
        pyinfra_deploy5: deploy(5),
        pyinfra_deploy_many: deploy(CPU_MANY),
        ansible_cfg,
        playbook,
        ansible_cp,
    }
}

/// Run `cmd` to its end (its output to `log`), killing its process group past `cap`; its
/// wall time, its CPU (with everything it reaped), and whether it was stopped.
fn timed(
    mut cmd: Command,
    log: &Path,
    cap: Option<Duration>,
    what: &str,
) -> (Duration, Duration, bool) {
    let out = File::create(log).expect("log");
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .process_group(0);
    let cpu0 = children_cpu();
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("fanout: start {what}: {e}"));
    let mut capped = false;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if cap.is_some_and(|c| start.elapsed() > c) {
            capped = true;
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            break child.wait().expect("wait");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let took = start.elapsed();
    reap_adopted(&[]);
    let cpu = children_cpu().saturating_sub(cpu0);
    if !capped && !status.success() {
        let text = fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        panic!(
            "fanout: {what} failed ({status}):\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    (took, cpu, capped)
}

fn pyinfra(bin: &Path, f: &Files, deploy: &Path, n: usize, log: &Path) -> (Duration, Duration) {
    let mut c = Command::new(bin.join("pyinfra"));
    c.args(["-y", "--parallel", &n.to_string()])
        .arg(&f.pyinfra_inventory)
        .arg(deploy);
    let (t, cpu, _) = timed(c, log, None, "pyinfra");
    (t, cpu)
}

fn ansible(
    bin: &Path,
    f: &Files,
    home: &Path,
    cap: Option<Duration>,
    log: &Path,
) -> (Duration, bool) {
    let mut c = Command::new(bin.join("ansible-playbook"));
    c.arg(&f.playbook)
        .env("ANSIBLE_CONFIG", &f.ansible_cfg)
        .env("ANSIBLE_HOME", home)
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"));
    let (t, _, capped) = timed(c, log, cap, "ansible-playbook");
    (t, capped)
}

/// Close Ansible's ControlPersist masters (so that the next run is cold).
fn ansible_masters_gone(f: &Files) {
    kill_and_wait(&processes_naming(&f.ansible_cp));
    reap_adopted(&[]);
    let _ = fs::remove_dir_all(&f.ansible_cp);
}

/// The peer comparison at `n` nodes, with the curve25519 ssh config of `ctx`.
pub fn measure(ctx: &Ctx<'_>, cfg: &Config, bin: &Path) -> PeerResult {
    let n = ctx.n;
    let f = write_files(ctx.bed, ctx.work, ctx.ssh_config, n);
    let home = ctx.work.join(format!("ansible-home-{n}"));
    fs::create_dir_all(home.join("tmp")).expect("ansible home");
    let log = |what: &str| ctx.work.join(format!("peer-{what}-{n}.log"));
    let large = n >= LARGE_N;
    let reps = if large { 1 } else { cfg.peer_reps };
    let mut r = PeerResult {
        n,
        reps,
        ovsup_cold: Vec::new(),
        ovsup_second: Vec::new(),
        pyinfra: Vec::new(),
        ansible_cold: Vec::new(),
        ansible_second: Vec::new(),
        ansible_capped: false,
        cpu: None,
    };
    let runbook = f.runbook.display().to_string();
    // Untimed first passes (page cache, first-use costs, Python's bytecode caches).
    disconnect(ctx);
    run_ovsup_args(ctx, &["run", &runbook]);
    disconnect(ctx);
    pyinfra(bin, &f, &f.pyinfra_deploy5, n, &log("pyinfra"));
    for rep in 0..reps {
        println!(
            "fanout: peers, {n} nodes, repetition {} of {reps} …",
            rep + 1
        );
        disconnect(ctx);
        r.ovsup_cold.push(run_ovsup_args(ctx, &["run", &runbook]));
        r.ovsup_second.push(run_ovsup_args(ctx, &["run", &runbook]));
        disconnect(ctx);
        r.pyinfra
            .push(pyinfra(bin, &f, &f.pyinfra_deploy5, n, &log("pyinfra")).0);
        if r.ansible_capped {
            continue;
        }
        ansible_masters_gone(&f);
        let (t, capped) = ansible(
            bin,
            &f,
            &home,
            large.then_some(cfg.ansible_cap),
            &log("ansible"),
        );
        r.ansible_cold.push(t);
        r.ansible_capped |= capped;
        if !large && !capped {
            r.ansible_second
                .push(ansible(bin, &f, &home, None, &log("ansible2")).0);
        }
        ansible_masters_gone(&f);
    }
    if !large {
        r.cpu = Some(cpu_per_command(ctx, bin, &f));
    }
    r
}

/// The fan-outs of the shorter and the longer run of the CPU measurement. Far apart, because
/// the masters' CPU is read from `/proc` in clock ticks (10 ms) per process: each of N
/// masters may lose up to a tick at either end, which 5 extra fan-outs (≈ 1 ms of a master's
/// CPU per command at N = 50) would drown.
const CPU_FEW: usize = 5;
const CPU_MANY: usize = 30;

/// The controller's CPU per remote command: the CPU of a run doing [`CPU_MANY`] fan-outs
/// minus that of one doing [`CPU_FEW`], over the commands between (start-up, connects and
/// everything else a run does once cancel out); the median of three pairs. ovsup and `ssh`
/// run over masters already open (their CPU counted too), pyinfra connects in both runs (it
/// keeps no connection).
fn cpu_per_command(ctx: &Ctx<'_>, bin: &Path, f: &Files) -> CpuPerCommand {
    let n = ctx.n;
    let commands = ((CPU_MANY - CPU_FEW) * n) as u32;
    let per = |few: Duration, many: Duration| many.saturating_sub(few) / commands;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    // ovsup over kept masters.
    let fanouts = |k: usize| "query(nodes(), \"true\");\n".repeat(k);
    disconnect(ctx);
    run_ovsup_args(ctx, &["eval", &fanouts(1)]);
    // (everything, of which the masters)
    let ovsup_cpu = |k: usize| {
        let m0 = cpu_of_naming(&ctx.control_dir());
        let c0 = children_cpu();
        run_ovsup_args(ctx, &["eval", &fanouts(k)]);
        reap_adopted(&[]);
        let masters = cpu_of_naming(&ctx.control_dir()).saturating_sub(m0);
        ((children_cpu() - c0) + masters, masters)
    };
    let pairs: Vec<_> = (0..3)
        .map(|_| {
            let (few, many) = (ovsup_cpu(CPU_FEW), ovsup_cpu(CPU_MANY));
            (per(few.0, many.0), per(few.1, many.1))
        })
        .collect();
    let ovsup = median(pairs.iter().map(|p| p.0).collect());
    let ovsup_masters = median(pairs.iter().map(|p| p.1).collect());
    disconnect(ctx);
    // ssh over ControlMaster.
    let ssh_cm = {
        let m = crate::contenders::Masters::establish(ctx);
        let cm_cpu = |k: usize| {
            let m0 = cpu_of_naming(m.dir());
            let c0 = children_cpu();
            for _ in 0..k {
                m.round(ctx, "true");
            }
            reap_adopted(&[]);
            (children_cpu() - c0) + cpu_of_naming(m.dir()).saturating_sub(m0)
        };
        median(
            (0..3)
                .map(|_| per(cm_cpu(CPU_FEW), cm_cpu(CPU_MANY)))
                .collect(),
        )
    };
    // pyinfra, connects included in both.
    let py = |deploy: &Path| pyinfra(bin, f, deploy, n, &ctx.work.join("peer-pyinfra-cpu.log")).1;
    let pyinfra = median(
        (0..3)
            .map(|_| per(py(&f.pyinfra_deploy5), py(&f.pyinfra_deploy_many)))
            .collect(),
    );
    CpuPerCommand {
        ovsup,
        ovsup_masters,
        ssh_cm,
        pyinfra,
    }
}
