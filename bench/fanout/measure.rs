//! How the contenders are measured: an untimed pass first, then repetitions in an order that
//! rotates (and flips) between them, each run on a quiet machine, torn down before the next,
//! and done again when other load disturbed it; then ovsup's peak memory in separate runs.

use std::thread;
use std::time::{Duration, Instant};

use crate::config::{Config, DISTURBED, MEM_RUNS, QUIET};
use crate::contenders::{Contender, Ctx, ovsup_cold, run_contender, warm_up};
use crate::procs::{CpuSnap, cpu_busy, procs, reap_adopted, sshd_pids};

#[derive(Default)]
pub struct Samples {
    pub ovsup_cold: Vec<Duration>,
    /// `query` (read-only: no run lock).
    pub ovsup_cold_read: Vec<Duration>,
    pub plain_cold: Vec<Duration>,
    /// Plain ssh running what ovsup sends for `true` (its `timeout … sh -c` wrapper).
    pub plain_cold_wrapped: Vec<Duration>,
    pub cm_cold: Vec<Duration>,
    /// Per-round times (total of the rounds / rounds), one per repetition.
    pub ovsup_warm: Vec<Duration>,
    pub cm_warm: Vec<Duration>,
    pub cm_warm_wrapped: Vec<Duration>,
    /// Share of the CPUs other processes used during each kept run.
    pub other: Vec<f64>,
    /// Runs done again because other processes disturbed them.
    pub redone: usize,
}

pub struct Measured {
    pub kex: String,
    pub n: usize,
    pub reps: usize,
    pub s: Samples,
    pub warm: bool,
    /// ovsup's peak RSS (VmHWM) in KiB during each of a few cold runs, polled.
    pub mem_kib: Vec<u64>,
}

pub fn measure(ctx: &Ctx<'_>, cfg: &Config, warm: bool) -> Measured {
    let mut s = Samples::default();
    let mut contenders = vec![
        Contender::OvsupCold,
        Contender::OvsupColdRead,
        Contender::PlainCold,
        Contender::PlainColdWrapped,
        Contender::ControlMaster,
    ];
    if warm {
        contenders.push(Contender::OvsupWarm);
    }

    // One untimed pass of each contender (page cache, first-use costs).
    warm_up(ctx);
    cleanup(ctx);

    let reps = cfg.reps_at(ctx.n);
    for rep in 0..reps {
        for c in order(&contenders, rep) {
            let (times, other) = timed_run(ctx, cfg, c, warm, &mut s);
            s.other.push(other);
            file_times(&mut s, c, times, warm);
        }
    }
    Measured {
        kex: ctx.kex.to_string(),
        n: ctx.n,
        reps,
        s,
        warm,
        mem_kib: peak_memory(ctx),
    }
}

/// The contenders' order in repetition `rep`: rotated by one each repetition, reversed every
/// other one.
fn order(contenders: &[Contender], rep: usize) -> Vec<Contender> {
    let mut order = contenders.to_vec();
    let k = order.len();
    order.rotate_left(rep % k);
    if rep % 2 == 1 {
        order.reverse();
    }
    order
}

/// One timed run of `c` on a quiet machine, torn down after; a run that other work on the
/// machine disturbed is done again (up to `cfg.redo` times). Its times and the other load.
fn timed_run(
    ctx: &Ctx<'_>,
    cfg: &Config,
    c: Contender,
    warm: bool,
    s: &mut Samples,
) -> (Vec<Duration>, f64) {
    let mut attempt = 0;
    loop {
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
    }
}

/// Files the times of one run of `c` (in the order `run_contender` gives them).
fn file_times(s: &mut Samples, c: Contender, times: Vec<Duration>, warm: bool) {
    let mut times = times.into_iter();
    let mut next = || times.next().expect("a time per sample");
    match c {
        Contender::OvsupCold => s.ovsup_cold.push(next()),
        Contender::OvsupColdRead => s.ovsup_cold_read.push(next()),
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

/// ovsup's peak memory: separate runs, so that polling /proc doesn't disturb the timings.
fn peak_memory(ctx: &Ctx<'_>) -> Vec<u64> {
    (0..MEM_RUNS)
        .filter_map(|_| {
            let m = ovsup_cold(ctx, true).1;
            cleanup(ctx);
            m
        })
        .collect()
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
