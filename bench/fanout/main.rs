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
//!
//! Where things are: `config.rs` (fixed numbers, knobs, ssh config variants, inventories),
//! `contenders.rs` (running ovsup, plain ssh and ssh over ControlMaster once),
//! `measure.rs` (repetitions, rotation, redoing disturbed runs, samples), `procs.rs`
//! (subreaper, /proc accounting, CPU load) and `report.rs` (tables, RESULTS.md).

mod config;
mod contenders;
mod measure;
mod peers;
mod procedure;
mod procs;
mod report;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ovsup_testbed::TestBed;

use config::{Config, Variant, ovsup_binary, write_inventory};
use contenders::Ctx;
use measure::{Measured, measure};
use procs::{become_subreaper, cpu_busy};
use report::{machine_header, print_progress, render};

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
    let busy_before = busy_before();
    let max_n = cfg.max_nodes();
    let t0 = Instant::now();
    let bin = (!cfg.peers.is_empty()).then(peers::venv);
    let bed = TestBed::builder().nodes(max_n).start();
    let bringup = bed.bringup_time();
    println!(
        "fanout: test bed of {max_n} nodes up in {:.1} s",
        bringup.as_secs_f64()
    );
    let work = Work::create();
    let variants = variants(&cfg, &bed, work.dir.path());
    let results = measure_all(&cfg, &bed, &ovsup, &work, &variants);
    let peer_results = match (&bin, variants.iter().find(|v| !v.warm)) {
        (Some(bin), Some(curve)) => cfg
            .peers
            .iter()
            .map(|&n| {
                let ctx = ctx(&bed, &ovsup, &work, curve, n);
                println!("fanout: peers at {n} nodes …");
                peers::measure(&ctx, &cfg, bin)
            })
            .collect(),
        _ => Vec::new(),
    };
    drop(bed);
    let procedures: Vec<procedure::ProcedureResult> = cfg
        .procedure
        .iter()
        .map(|&n| {
            println!("fanout: the operator's procedure at {n} storage nodes …");
            procedure::measure(&ovsup, work.dir.path(), n)
        })
        .collect();
    let total = t0.elapsed();

    let report = render(
        &cfg,
        &results,
        &peer_results,
        &procedures,
        (max_n, bringup),
        total,
        bench_mode,
    );
    println!("\n{report}");
    if bench_mode && let Some(path) = &cfg.results {
        let md = format!("{}\n{report}", machine_header(busy_before));
        fs::write(path, md).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        println!("fanout: wrote {}", path.display());
    }
    drop(work);
}

/// The context of a measurement at `n` nodes with the ssh config of `v`.
fn ctx<'a>(bed: &'a TestBed, ovsup: &'a Path, work: &'a Work, v: &'a Variant, n: usize) -> Ctx<'a> {
    Ctx {
        kex: &v.label,
        ovsup,
        bed,
        ssh_config: &v.ssh_config,
        inventory: write_inventory(bed, work.dir.path(), &v.ssh_config, n, &v.label),
        state_dir: &work.state_dir,
        work: work.dir.path(),
        ovsup_tmp: &work.ovsup_tmp,
        n,
    }
}

/// Other work on the machine skews the comparison (the contenders are CPU-bound and spawn
/// processes at different rates): says how busy it was before we started, and returns it.
fn busy_before() -> Option<f64> {
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
    busy_before
}

/// The benchmark's temporary directory, with ovsup's state directory and TMPDIR in it.
struct Work {
    dir: tempfile::TempDir,
    state_dir: PathBuf,
    ovsup_tmp: PathBuf,
}

impl Work {
    fn create() -> Work {
        let dir = tempfile::Builder::new()
            .prefix("fanout-")
            .tempdir()
            .expect("create the benchmark's temp dir");
        let state_dir = dir.path().join("state");
        {
            use std::os::unix::fs::DirBuilderExt;
            // Private, as ovsup requires of a state directory.
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&state_dir)
                .expect("create state dir");
        }
        let ovsup_tmp = dir.path().join("t");
        fs::create_dir(&ovsup_tmp).expect("create ovsup's TMPDIR");
        Work {
            dir,
            state_dir,
            ovsup_tmp,
        }
    }
}

/// The default ssh configuration (cold and warm), and the curve25519 one (cold) unless off.
fn variants(cfg: &Config, bed: &TestBed, dir: &Path) -> Vec<Variant> {
    let mut variants = vec![Variant::new(
        bed,
        dir,
        "default",
        None,
        true,
        cfg.nodes.clone(),
    )];
    if cfg.curve25519 {
        variants.push(Variant::new(
            bed,
            dir,
            "curve25519-sha256",
            Some("KexAlgorithms curve25519-sha256"),
            false,
            cfg.nodes_curve.clone(),
        ));
    }
    variants
}

/// Every variant at every node count, printing the progress as it goes.
fn measure_all(
    cfg: &Config,
    bed: &TestBed,
    ovsup: &Path,
    work: &Work,
    variants: &[Variant],
) -> Vec<Measured> {
    let mut results = Vec::new();
    for v in variants {
        for &n in &v.nodes {
            let ctx = ctx(bed, ovsup, work, v, n);
            println!("fanout: kex {}, {n} nodes …", v.label);
            let r = measure(&ctx, cfg, v.warm);
            print_progress(&r);
            results.push(r);
        }
    }
    results
}
