//! `cargo bench --bench downtime`: the VM downtime window of `ovsup alba` — from the first VM
//! shutdown to the last VM running again — on the built-in simulated cluster with a realistic
//! download time per `.deb`, with the packages downloaded before anything stops (the default:
//! issue 8's "no download inside the downtime window") and without (`--set prestage=false`,
//! the legacy order: stop the VMs, then install, downloading). Both variants in the same run,
//! alternated; the result is their ratio. Writes `bench/RESULTS-downtime.md`.
//!
//! Knobs (environment): `DOWNTIME_DOWNLOAD_MS` (per `.deb`, default 4000), `DOWNTIME_REPS`
//! (default 3), `DOWNTIME_NODES` (default 3), `DOWNTIME_RESULTS` (another file, or empty for
//! none). Without `--bench` (`cargo test --benches`) it runs once with 300 ms and writes nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let knob = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let download_ms = if bench {
        knob("DOWNTIME_DOWNLOAD_MS", 4000)
    } else {
        300
    };
    let reps = if bench { knob("DOWNTIME_REPS", 3) } else { 1 };
    let nodes = knob("DOWNTIME_NODES", 3);
    let began = Instant::now();
    let mut prestaged = Vec::new();
    let mut inline = Vec::new();
    for rep in 0..reps {
        // Alternate which variant goes first, so that drift favours neither.
        let order = if rep % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for prestage in order {
            let w = window(nodes, download_ms, prestage);
            eprintln!("  rep {rep}: prestage={prestage}: {w:.2?}");
            if prestage {
                prestaged.push(w)
            } else {
                inline.push(w)
            }
        }
    }
    let (p, i) = (median(&mut prestaged), median(&mut inline));
    let report = format!(
        "# VM downtime window of `ovsup alba` with and without pre-staging\n\n\
         - Command: `cargo bench --bench downtime` ({:.0} s in all)\n\
         - Cluster: the built-in simulated one, {nodes} storage nodes (`-i sim:{nodes}`, its \
         realistic layout), in-process\n\
         - Download time: {download_ms} ms per `.deb` fetched (simulator fault `download_ms`)\n\
         - Window: first `virsh shutdown` → the end of the last `virsh start` that succeeded, \
         from the run's journal (`ovsup history show … --timeline` draws the same)\n\
         - {reps} repetitions per variant, alternated; medians (min–max)\n\n\
         | variant | VM downtime window | ratio |\n|---|---:|---:|\n\
         | packages downloaded before the VMs stop (default) | {} ({}–{}) | 1.00 |\n\
         | downloaded inside the window (`--set prestage=false`, the legacy order) | {} ({}–{}) | **{:.2}×** longer |\n",
        began.elapsed().as_secs_f64(),
        secs(p),
        secs(min(&prestaged)),
        secs(max(&prestaged)),
        secs(i),
        secs(min(&inline)),
        secs(max(&inline)),
        i.as_secs_f64() / p.as_secs_f64().max(1e-9),
    );
    print!("{report}");
    if bench {
        let out = std::env::var("DOWNTIME_RESULTS").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/bench/RESULTS-downtime.md").to_string()
        });
        if !out.is_empty() {
            std::fs::write(&out, &report).expect("write the results");
            eprintln!("written to {out}");
        }
    }
}

/// One run of `alba` on a fresh cluster; its VM downtime window.
fn window(nodes: u64, download_ms: u64, prestage: bool) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let inv = format!("sim:{nodes}");
    let ovsup = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ovsup"))
            .args(["-i", &inv, "--state-dir"])
            .arg(&state)
            .args(args)
            .env("OVSUP_LEGACY_VM_RECORD", dir.path().join("legacy.json"))
            .output()
            .expect("run ovsup");
        assert!(
            out.status.success(),
            "ovsup {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ovsup(&["sim", "reset"]);
    ovsup(&["update"]);
    ovsup(&["preprocess"]);
    for n in 1..=nodes {
        let node = format!("node-{n:02}");
        ovsup(&[
            "sim",
            "fault",
            &node,
            "download_ms",
            &download_ms.to_string(),
        ]);
    }
    let prestage = format!("prestage={prestage}");
    ovsup(&["--yes", "alba", "--set", &prestage]);
    let run = ovsup::history::find(&state, "last").expect("the run's journal");
    match ovsup::timeline::downtime(&run) {
        Some((from, Some(to))) => to.saturating_sub(from),
        other => panic!(
            "no VM downtime in the run: {other:?} ({})",
            journal(&state).display()
        ),
    }
}

fn journal(state: &Path) -> PathBuf {
    ovsup::history::runs_dir(state)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn min(v: &[Duration]) -> Duration {
    v.iter().copied().min().unwrap_or_default()
}

fn max(v: &[Duration]) -> Duration {
    v.iter().copied().max().unwrap_or_default()
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}
