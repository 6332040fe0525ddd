//! What the benchmark prints and writes: the progress lines, the markdown tables (medians,
//! minima, ratios, targets) and the RESULTS.md header describing the machine.

use std::fmt::Write as _;
use std::fs;
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::config::{
    Config, DISTURBED, MEM_RUNS, QUIET, TARGET_COLD, TARGET_MEM_KIB, TARGET_MEM_KIB_500,
    TARGET_WARM, WARM_ROUNDS, WRAPPED_TRUE,
};
use crate::measure::{Measured, Samples};
use crate::peers::{ANSIBLE, ANSIBLE_FORKS, PYINFRA, PeerResult};
use crate::procedure::{ProcedureResult, Run};

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

pub fn print_progress(r: &Measured) {
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
pub fn render(
    cfg: &Config,
    results: &[Measured],
    peers: &[PeerResult],
    procedures: &[ProcedureResult],
    (bed_n, bringup): (usize, Duration),
    total: Duration,
    bench_mode: bool,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Times are `median / min` over the repetitions (`reps`; contender order alternated \
         between repetitions). Ratios are of the medians (of the minima in brackets). Every \
         figure is from this one run; the test bed of {bed_n} nodes came up in {:.1} s.{}\n",
        bringup.as_secs_f64(),
        if bench_mode {
            ""
        } else {
            " SMOKE RUN: not a measurement."
        }
    );
    cold_table(&mut s, results);
    warm_table(&mut s, results);
    memory_table(&mut s, results);
    peers_table(&mut s, peers);
    cpu_table(&mut s, peers);
    procedure_table(&mut s, procedures);
    other_load_table(&mut s, cfg, results);
    let _ = writeln!(
        s,
        "\nRuns: {} fan-out measurements, {} peer comparison(s), {} procedure(s); {:.0} s in all \
         (including the test beds and the untimed passes).",
        results.len(),
        peers.len(),
        procedures.len() * 2,
        total.as_secs_f64()
    );
    s
}

/// ovsup against pyinfra and Ansible, five fan-outs, cold and the second invocation.
fn peers_table(s: &mut String, peers: &[PeerResult]) {
    if peers.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n### Peers: five fan-outs of `true` (`KexAlgorithms curve25519-sha256` for all)\n\n\
         ovsup runs a runbook of five `sh(nodes(), \"true\")` (`ovsup --forks N run five.rhai`); \
         pyinfra ({PYINFRA}, paramiko) a deploy of five `server.shell(commands=[\"true\"])` with \
         `--parallel N`; Ansible ({ANSIBLE}) a playbook of five `command: \"true\"` tasks, \
         `gather_facts: false`, pipelining on, `ssh_args = -C -o ControlMaster=auto -o \
         ControlPersist=60s` as Ansible ships them, forks = min(N, {ANSIBLE_FORKS}) (a fork is a \
         Python process of ~60 MB). Same nodes, key and known_hosts. Cold: no connection open \
         before; second: the same invocation again at once, over the masters the first one \
         kept. At 500 nodes each contender runs once and Ansible is stopped at the cap \
         (`FANOUT_ANSIBLE_CAP`, its time then a lower bound, marked ≥).\n\n\
         | N | reps | ovsup cold | ovsup second | pyinfra | Ansible cold | Ansible second | **pyinfra / ovsup** (≥ 2) | **Ansible / ovsup** (≥ 20) | **ovsup first / second** (≥ 5) |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for p in peers {
        let o = median(&p.ovsup_cold);
        let a = median(&p.ansible_cold);
        let ge = if p.ansible_capped { "≥ " } else { "" };
        let second = if p.ansible_second.is_empty() {
            "—".to_string()
        } else {
            med_min(&p.ansible_second)
        };
        let rp = ratio(median(&p.pyinfra), o);
        let ra = ratio(a, o);
        let rs = ratio(o, median(&p.ovsup_second));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {ge}{} | {second} | **{rp:.1}** {} | **{ge}{ra:.1}** {} | **{rs:.1}** {} |",
            p.n,
            p.reps,
            med_min(&p.ovsup_cold),
            med_min(&p.ovsup_second),
            med_min(&p.pyinfra),
            med_min(&p.ansible_cold),
            verdict(rp >= 2.0),
            verdict(ra >= 20.0),
            verdict(rs >= 5.0),
        );
    }
}

/// The controller's CPU per remote command.
fn cpu_table(s: &mut String, peers: &[PeerResult]) {
    let rows: Vec<_> = peers
        .iter()
        .filter_map(|p| p.cpu.as_ref().map(|c| (p.n, c)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n### Controller CPU per remote command\n\n\
         On a real cluster the nodes work in parallel, each on its own CPU, and the controller's \
         CPU is what bounds N. Marginal cost: the CPU (user + system, the process and all it \
         started, and the ssh masters' own CPU) of a run of 30 fan-outs of `true` minus that of \
         a run of 5, over 25·N commands; median of three pairs. ovsup: `query(nodes(), \"true\")` \
         over the masters an earlier run kept; `ssh`: N `ssh -o ControlPath=… true` per fan-out \
         over open ControlMasters; pyinfra: `server.shell` operations (it connects in both runs; \
         that cancels out).\n\n\
         | N | ovsup | of which its ssh masters | `ssh` over ControlMaster | pyinfra | **ssh CM / ovsup** | **pyinfra / ovsup** |\n\
         |---:|---:|---:|---:|---:|---:|---:|"
    );
    let us = |d: Duration| format!("{:.0} µs", d.as_secs_f64() * 1e6);
    for (n, c) in rows {
        let _ = writeln!(
            s,
            "| {n} | {} | {} | {} | {} | **{:.1}** | **{:.1}** |",
            us(c.ovsup),
            if c.ovsup_masters.is_zero() {
                "none found (not counted)".to_string()
            } else {
                us(c.ovsup_masters)
            },
            us(c.ssh_cm),
            us(c.pyinfra),
            ratio(c.ssh_cm, c.ovsup),
            ratio(c.pyinfra, c.ovsup),
        );
    }
}

/// The guide's procedure, cold against kept masters.
fn procedure_table(s: &mut String, procedures: &[ProcedureResult]) {
    if procedures.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n### The operator's procedure (docs/upgrade-guide.md), invocation after invocation\n\n\
         `update`, `check`, `preprocess`, `framework`, `arakoon`, `stop-vm`, `volumedriver \
         --skip-vm`, `alba --skip-vm`, `start-vm`, `postprocess` (all with `--yes`), on a bed of \
         N storage nodes plus the four controller instances, running the simulator's tools \
         (`ovs-sim`), `KexAlgorithms curve25519-sha256`. Cold: `--control-persist 0` (every \
         invocation connects anew, as before issue 10); kept: the default (the first invocation \
         opens the masters, the others reuse them). VM downtime: the first `virsh shutdown` sent \
         → the last `virsh start` answered (journals). A step that fails would stop the \
         operator; here the later steps still run, so that they are measured, and the failures \
         are listed.\n\n\
         | N | cold: total | kept: total | **cold / kept** | cold: VM downtime | kept: VM downtime | **cold / kept** | steps that succeeded (cold, kept) | failed steps |\n\
         |---:|---:|---:|---:|---:|---:|---:|---|---|"
    );
    let secs = |d: Duration| format!("{:.1} s", d.as_secs_f64());
    let down = |r: &Run| r.downtime.map_or("—".to_string(), secs);
    for p in procedures {
        let failed = |r: &Run| {
            let f: Vec<String> = r
                .steps
                .iter()
                .filter(|st| st.code != 0)
                .map(|st| {
                    let why: String = st.error.chars().take(160).collect();
                    format!(
                        "`{}` (exit {}): {}",
                        st.args,
                        st.code,
                        why.replace('|', "\\|")
                    )
                })
                .collect();
            if f.is_empty() {
                "—".to_string()
            } else {
                f.join("; ")
            }
        };
        let stop = format!("cold: {}<br>kept: {}", failed(&p.cold), failed(&p.kept));
        let dr = match (p.cold.downtime, p.kept.downtime) {
            (Some(a), Some(b)) => format!("**{:.2}**", ratio(a, b)),
            _ => "—".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | **{:.2}** | {} | {} | {dr} | {}/{}, {}/{} | {stop} |",
            p.n,
            secs(p.cold.total),
            secs(p.kept.total),
            ratio(p.cold.total, p.kept.total),
            down(&p.cold),
            down(&p.kept),
            p.cold.steps.iter().filter(|st| st.code == 0).count(),
            crate::procedure::STEPS.len(),
            p.kept.steps.iter().filter(|st| st.code == 0).count(),
            crate::procedure::STEPS.len(),
        );
    }
    let _ = writeln!(s, "\nPer step (seconds, cold / kept):\n");
    for p in procedures {
        let row: Vec<String> = p
            .cold
            .steps
            .iter()
            .zip(p.kept.steps.iter().map(Some).chain(std::iter::repeat(None)))
            .map(|(c, k)| {
                format!(
                    "`{}` {:.1} / {}",
                    c.args,
                    c.took.as_secs_f64(),
                    k.map_or("—".into(), |k| format!("{:.1}", k.took.as_secs_f64()))
                )
            })
            .collect();
        let _ = writeln!(s, "- N = {}: {}", p.n, row.join(", "));
    }
}

/// The cold table: every contender per key exchange and N, and the ratios to ovsup.
fn cold_table(s: &mut String, results: &[Measured]) {
    let _ = writeln!(
        s,
        "### Cold: `true` on N nodes, connections included\n\n\
         `sh` changes the nodes, so it first takes the environment's run lock on every node (one \
         more session per node, held for the run); `query` only reads, and takes none (as \
         `check`, `plan` and `nodes --ping`). Both leave their masters for the next run (the \
         default); the bench closes them after each run, untimed.\n\n\
         | kex | N | reps | ovsup `query` (read-only) | ovsup `sh` (run lock) | plain `ssh` ×N | `ssh` ControlMaster ×N | **ovsup query / plain ssh** | target ≤ {TARGET_COLD} | **ovsup sh / plain ssh** | target ≤ {TARGET_COLD} | ovsup sh / ssh CM | plain `ssh` ×N running `{WRAPPED_TRUE}` | ovsup query / plain ssh wrapped |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---:|"
    );
    for r in results {
        let q = &r.s.ovsup_cold_read;
        let rq = ratio(median(q), median(&r.s.plain_cold));
        let (o, p, c, w) = (
            &r.s.ovsup_cold,
            &r.s.plain_cold,
            &r.s.cm_cold,
            &r.s.plain_cold_wrapped,
        );
        let rp = ratio(median(o), median(p));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | **{rq:.2}** ({:.2}) | {} | **{rp:.2}** ({:.2}) | {} | {:.2} ({:.2}) | {} | {:.2} ({:.2}) |",
            r.kex,
            r.n,
            r.reps,
            med_min(q),
            med_min(o),
            med_min(p),
            med_min(c),
            ratio(min(q), min(p)),
            verdict(rq <= TARGET_COLD),
            ratio(min(o), min(p)),
            verdict(rp <= TARGET_COLD),
            ratio(median(o), median(c)),
            ratio(min(o), min(c)),
            med_min(w),
            ratio(median(q), median(w)),
            ratio(min(q), min(w)),
        );
    }
}

/// The warm table: one fan-out over open connections, per N (the default key exchange).
fn warm_table(s: &mut String, results: &[Measured]) {
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
}

/// The memory table: ovsup's peak RSS per N.
fn memory_table(s: &mut String, results: &[Measured]) {
    let _ = writeln!(
        s,
        "\n### Memory: ovsup's own peak RSS (VmHWM) during a cold run (ssh masters not counted)\n\n\
         | kex | N | peak RSS, highest of {MEM_RUNS} runs | all runs | target |\n|---|---:|---:|---|---|"
    );
    let mib = |k: u64| format!("{:.1} MiB", k as f64 / 1024.0);
    for r in results {
        let all: Vec<String> = r.mem_kib.iter().map(|&k| mib(k)).collect();
        let limit = if r.n >= 500 {
            TARGET_MEM_KIB_500
        } else {
            TARGET_MEM_KIB
        };
        let (shown, ok) = match r.mem_kib.iter().max() {
            Some(&k) => (mib(k), k <= limit),
            None => ("not read".into(), false),
        };
        let target = if r.n >= 50 {
            format!("≤ {} MiB: {}", limit / 1024, verdict(ok))
        } else {
            "(N ≥ 50 only)".to_string()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {shown} | {} | {target} |",
            r.kex,
            r.n,
            all.join(", ")
        );
    }
}

/// How much other processes used the CPUs during the kept runs, per key exchange and N.
fn other_load_table(s: &mut String, cfg: &Config, results: &[Measured]) {
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
}

pub fn machine_header(busy_before: Option<f64>) -> String {
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
