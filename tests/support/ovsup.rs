//! Running the `ovsup` binary from a test, as an operator would: a builder that reads like a
//! sentence and asserts on exit code, stdout and stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// One invocation of `ovsup`.
#[must_use]
pub struct Ovsup {
    args: Vec<String>,
    env: Vec<(String, String)>,
    state_dir: Option<PathBuf>,
}

/// What an invocation left.
pub struct Ran {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Ovsup {
    /// `ovsup -i INVENTORY`.
    pub fn with_inventory(inventory: &Path) -> Ovsup {
        Ovsup {
            args: vec!["-i".into(), inventory.display().to_string()],
            env: Vec::new(),
            state_dir: None,
        }
    }

    /// Add arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Ovsup {
        self.args
            .extend(args.into_iter().map(|s| s.as_ref().to_string()));
        self
    }

    /// Use this state directory.
    pub fn state_dir(mut self, dir: &Path) -> Ovsup {
        self.state_dir = Some(dir.to_path_buf());
        self
    }

    /// Set an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Ovsup {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The command, not started.
    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ovsup"));
        if let Some(dir) = &self.state_dir {
            c.arg("--state-dir").arg(dir);
        }
        c.args(&self.args)
            .env_remove("OVSUP_INVENTORY")
            .env_remove("OVSUP_STATE_DIR")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Run to the end.
    pub fn run(self) -> Ran {
        let out: Output = self.command().output().expect("start ovsup");
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Ran {
    /// Assert the exit code, showing the output when it differs.
    pub fn code(self, expected: i32) -> Ran {
        assert_eq!(
            self.code, expected,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Assert stderr contains `needle`.
    pub fn stderr_has(self, needle: &str) -> Ran {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stderr\n{}",
            self.stderr
        );
        self
    }

    /// Assert stdout contains `needle`.
    pub fn stdout_has(self, needle: &str) -> Ran {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The last line of `--json` output: the result event.
    pub fn json_result(&self) -> serde_json::Value {
        let last = self.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|e| {
            panic!(
                "last stdout line is not JSON ({e}):\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Every `--json` event.
    pub fn json_events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

/// Every command line of the journals of every run in a state directory, oldest run first
/// (not the first and last lines of a run, which have a `type`).
pub fn journal_lines(state_dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(state_dir.join("runs")) {
        Ok(entries) => entries.map(|e| e.expect("journal entry").path()).collect(),
        Err(_) => return Vec::new(),
    };
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("journal")
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).expect("journal line is JSON")
                })
                .filter(|l| l.get("type").is_none())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Press Ctrl-C on a running `ovsup`: send it SIGINT.
pub fn interrupt(child: &std::process::Child) {
    let pid = child.id().to_string();
    let sent = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -INT {pid} failed");
}
