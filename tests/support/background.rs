//! A run of `ovsup` in the background, for the tests that interrupt or kill it at a moment of
//! their choosing: its output goes to files beside the state directory (so a run that is
//! killed still leaves what it said), `kill_when` SIGKILLs it as soon as a condition holds.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::ovsup::Ovsup;

/// The longest any single wait of a background run may take before it is a failure.
pub const WAIT: Duration = Duration::from_secs(60);

/// A run in the background.
pub struct Background {
    /// The process.
    pub child: Child,
    what: String,
    out: PathBuf,
    err: PathBuf,
}

impl Background {
    /// Start `ovsup` (as built) in the background, its output in files under `dir`.
    pub fn start(ovsup: Ovsup, dir: &Path, what: &str) -> Background {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let out = dir.join(format!("bg-{n}.out"));
        let err = dir.join(format!("bg-{n}.err"));
        let child = ovsup
            .command()
            .stdout(Stdio::from(File::create(&out).expect("stdout file")))
            .stderr(Stdio::from(File::create(&err).expect("stderr file")))
            .spawn()
            .expect("start ovsup");
        Background {
            child,
            what: what.to_string(),
            out,
            err,
        }
    }

    /// What it printed so far.
    pub fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            std::fs::read_to_string(&self.out).unwrap_or_default(),
            std::fs::read_to_string(&self.err).unwrap_or_default()
        )
    }

    /// Poll `moment` (every 10 ms, at most [`WAIT`]) and SIGKILL the run as soon as it holds.
    /// Panics when the run ends first or the moment never comes.
    pub fn kill_when(mut self, what: &str, mut moment: impl FnMut() -> bool) {
        let began = Instant::now();
        while !moment() {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "`ovsup {}` ended ({status}) before {what}\n{}",
                    self.what,
                    self.output()
                );
            }
            assert!(
                began.elapsed() < WAIT,
                "`ovsup {}`: {what} did not happen within {WAIT:?}\n{}",
                self.what,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // Child::kill is SIGKILL: no cleanup, no Ctrl-C handling.
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("wait");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "`ovsup {}` was not killed by {what} ({status})\n{}",
            self.what,
            self.output()
        );
    }

    /// Wait (at most [`WAIT`]) for the run to end; its exit code and output.
    pub fn finish(mut self) -> (i32, String) {
        let began = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status.code().unwrap_or(-1), self.output());
            }
            if began.elapsed() > WAIT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "`ovsup {}` did not end within {WAIT:?}\n{}",
                    self.what,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Wait (bounded by [`WAIT`]) until `cond` holds.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let began = Instant::now();
    while !cond() {
        assert!(began.elapsed() < WAIT, "{what}: not within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
