//! What the benchmark prints and writes: the progress lines, the markdown tables (medians,
//! minima, ratios, targets) and the RESULTS.md header describing the machine.

use std::fmt::Write as _;
use std::fs;
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::config::{
    Config, DISTURBED, MEM_RUNS, QUIET, TARGET_COLD, TARGET_MEM_KIB, TARGET_WARM, WARM_ROUNDS,
    WRAPPED_TRUE,
};
use crate::measure::{Measured, Samples};

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
pub fn render(cfg: &Config, results: &[Measured], total: Duration, bench_mode: bool) -> String {
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
    cold_table(&mut s, results);
    warm_table(&mut s, results);
    memory_table(&mut s, results);
    other_load_table(&mut s, cfg, results);
    let _ = writeln!(
        s,
        "\nRuns: {} node counts × {} key exchange(s), {:.0} s in all (including the test bed).",
        cfg.nodes.len(),
        results.len() / cfg.nodes.len().max(1),
        total.as_secs_f64()
    );
    s
}

/// The cold table: every contender per key exchange and N, and the ratios to ovsup.
fn cold_table(s: &mut String, results: &[Measured]) {
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
