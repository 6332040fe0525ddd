//! Processes and CPU time, from /proc: the child subreaper that adopts the detached ssh
//! masters, waiting for processes to be gone, and the accounting of other load on the machine.
//!
//! Other load: a run is compared with what the whole machine did meanwhile: the CPU time all
//! CPUs spent busy (/proc/stat) minus the CPU time of our own processes: this process and
//! every child it reaped (ovsup, ssh), every node's sshd with the sessions it reaped, and the
//! ssh masters, which ssh detaches: as a child subreaper we adopt and reap them, so their time
//! counts too. What is left was used by others (or by the kernel on nobody's behalf).

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use ovsup_testbed::TestBed;

mod sys {
    unsafe extern "C" {
        pub fn prctl(option: i32, ...) -> i32;
        pub fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
        pub fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    }
    /// `struct rusage` on 64-bit Linux: two `timeval`s, then 14 longs.
    #[repr(C)]
    #[derive(Default)]
    pub struct Rusage {
        pub utime: [i64; 2],
        pub stime: [i64; 2],
        pub rest: [i64; 14],
    }
    pub const RUSAGE_CHILDREN: i32 = -1;
    pub const PR_SET_CHILD_SUBREAPER: i32 = 36;
    pub const WNOHANG: i32 = 1;
}

pub fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only sets a flag of this process.
    let rc = unsafe { sys::prctl(sys::PR_SET_CHILD_SUBREAPER, 1u64) };
    if rc != 0 {
        println!("fanout: could not become a child subreaper; other-load figures will be high");
    }
}

/// Reaps exited processes that were reparented to us (detached ssh masters), never the
/// bed's own children (`keep`) nor children we still have a handle on (all are waited for
/// before this is called).
pub fn reap_adopted(keep: &[u32]) {
    let me = std::process::id();
    for p in procs() {
        if p.ppid == me && p.state == 'Z' && !keep.contains(&p.pid) {
            let mut status = 0;
            // SAFETY: waitpid on a zombie child of ours; `status` is a valid out pointer.
            unsafe { sys::waitpid(p.pid as i32, &mut status, sys::WNOHANG) };
        }
    }
}

/// CPU time (user + system) of every descendant this process has reaped so far: the
/// contenders, what they reaped, and the detached processes we adopted and reaped.
pub fn children_cpu() -> Duration {
    let mut r = sys::Rusage::default();
    // SAFETY: getrusage fills the struct we pass; the layout is the kernel's on x86-64/arm64.
    unsafe { sys::getrusage(sys::RUSAGE_CHILDREN, &mut r) };
    let us = |t: [i64; 2]| Duration::from_micros((t[0] * 1_000_000 + t[1]).max(0) as u64);
    us(r.utime) + us(r.stime)
}

/// CPU time (user + system, own only) of the live processes whose command line contains
/// `marker` (ssh masters, which outlive the process that started them).
pub fn cpu_of_naming(marker: &Path) -> Duration {
    let marker = marker.as_os_str().as_encoded_bytes();
    let ticks: u64 = procs()
        .filter(|p| {
            fs::read(format!("/proc/{}/cmdline", p.pid))
                .is_ok_and(|c| c.windows(marker.len()).any(|w| w == marker))
        })
        .map(|p| p.own_ticks)
        .sum();
    Duration::from_millis(ticks * 10)
}

pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    state: char,
    /// utime + stime + cutime + cstime, in clock ticks.
    ticks: u64,
    /// utime + stime, in clock ticks.
    own_ticks: u64,
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
        own_ticks: field(14)? + field(15)?,
    })
}

pub fn procs() -> impl Iterator<Item = Proc> {
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

pub fn sshd_pids(bed: &TestBed) -> Vec<u32> {
    bed.nodes().iter().filter_map(|n| n.sshd_pid()).collect()
}

/// Busy CPU time of the machine and CPU time of our processes, at one moment.
pub struct CpuSnap {
    at: Instant,
    busy: u64,
    ours: u64,
}

impl CpuSnap {
    pub fn take(bed: &TestBed) -> CpuSnap {
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
    pub fn other_load_since(&self, before: &CpuSnap) -> f64 {
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

/// Waits (bounded) until no process has `marker` in its command line: the ssh masters of a
/// contender exit after it returned, and must not load the machine during the next one.
pub fn wait_gone(marker: &Path) {
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

/// The share of all CPUs busy over `span` (from `/proc/stat`).
pub fn cpu_busy(span: Duration) -> Option<f64> {
    let (t0, i0) = machine_ticks()?;
    thread::sleep(span);
    let (t1, i1) = machine_ticks()?;
    let dt = t1.checked_sub(t0).filter(|&d| d > 0)?;
    Some(1.0 - (i1 - i0) as f64 / dt as f64)
}
