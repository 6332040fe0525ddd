//! Running the `ovsup` binary from a test, as an operator would: a builder that reads like a
//! sentence, and checks on what the run left (exit code, stdout, stderr, the `--json` result
//! and its error text) that show the command line and both streams whole when they fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// One invocation of `ovsup`.
#[must_use]
pub struct Ovsup {
    args: Vec<String>,
    env: Vec<(String, String)>,
    state_dir: Option<PathBuf>,
}

/// What an invocation left. Its checks ([`Ran::code`], [`Ran::stderr_has`], …) panic with the
/// command line, what was expected, and the whole of stdout and stderr.
pub struct Ran {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The command line, as failure messages show it.
    pub command: String,
}

/// An invocation running in the background, its stdout and stderr piped.
#[must_use]
pub struct Running {
    child: Child,
    command: String,
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
        Ran::from_output(self.command_line(), out)
    }

    /// Start in the background, stdout and stderr piped (see [`Running::wait`]).
    pub fn spawn(self) -> Running {
        let child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ovsup");
        Running {
            child,
            command: self.command_line(),
        }
    }

    /// `ovsup ARGS…` as a shell would read it (state directory and environment left out).
    fn command_line(&self) -> String {
        let args = shlex::try_join(self.args.iter().map(String::as_str))
            .unwrap_or_else(|_| self.args.join(" "));
        format!("ovsup {args}")
    }
}

impl Running {
    /// Press Ctrl-C: send it SIGINT.
    pub fn interrupt(&self) {
        interrupt(&self.child);
    }

    /// Wait for the end.
    pub fn wait(self) -> Ran {
        let out = self.child.wait_with_output().expect("wait for ovsup");
        Ran::from_output(self.command, out)
    }
}

impl Ran {
    fn from_output(command: String, out: Output) -> Ran {
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            command,
        }
    }

    /// Panics saying what went wrong, with the command line and both streams whole.
    #[track_caller]
    fn fail(&self, what: &str) -> ! {
        panic!(
            "`{}`: {what}\n--- stdout\n{}\n--- stderr\n{}",
            self.command, self.stdout, self.stderr
        )
    }

    /// Assert the exit code.
    #[track_caller]
    pub fn code(self, expected: i32) -> Ran {
        if self.code != expected {
            self.fail(&format!("exit code {}, expected {expected}", self.code));
        }
        self
    }

    /// Assert stdout contains `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Ran {
        if !self.stdout.contains(needle) {
            self.fail(&format!("stdout lacks {needle:?}"));
        }
        self
    }

    /// Assert stdout does not contain `needle`.
    #[track_caller]
    pub fn stdout_lacks(&self, needle: &str) -> &Ran {
        if self.stdout.contains(needle) {
            self.fail(&format!("stdout has {needle:?}, expected it not to"));
        }
        self
    }

    /// Assert stdout starts with `prefix`.
    #[track_caller]
    pub fn stdout_starts_with(&self, prefix: &str) -> &Ran {
        if !self.stdout.starts_with(prefix) {
            self.fail(&format!("stdout does not start with {prefix:?}"));
        }
        self
    }

    /// Assert stdout contains `needle` exactly `times` times.
    #[track_caller]
    pub fn stdout_has_times(&self, needle: &str, times: usize) -> &Ran {
        let found = self.stdout.matches(needle).count();
        if found != times {
            self.fail(&format!(
                "stdout has {needle:?} {found} times, expected {times}"
            ));
        }
        self
    }

    /// Assert some stdout line satisfies `line`, which `expected` describes.
    #[track_caller]
    pub fn stdout_has_line(&self, expected: &str, line: impl Fn(&str) -> bool) -> &Ran {
        if !self.stdout.lines().any(line) {
            self.fail(&format!("stdout has no line {expected}"));
        }
        self
    }

    /// The first stdout line starting with `prefix`; panics if there is none.
    #[track_caller]
    pub fn stdout_line(&self, prefix: &str) -> &str {
        match self.stdout.lines().find(|l| l.starts_with(prefix)) {
            Some(line) => line,
            None => self.fail(&format!("stdout has no line starting with {prefix:?}")),
        }
    }

    /// Assert stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Ran {
        if !self.stderr.contains(needle) {
            self.fail(&format!("stderr lacks {needle:?}"));
        }
        self
    }

    /// Assert stderr contains at least one of `needles`.
    #[track_caller]
    pub fn stderr_has_one_of(&self, needles: &[&str]) -> &Ran {
        if !needles.iter().any(|n| self.stderr.contains(n)) {
            self.fail(&format!("stderr has none of {needles:?}"));
        }
        self
    }

    /// Assert stderr does not contain `needle`.
    #[track_caller]
    pub fn stderr_lacks(&self, needle: &str) -> &Ran {
        if self.stderr.contains(needle) {
            self.fail(&format!("stderr has {needle:?}, expected it not to"));
        }
        self
    }

    /// The error message of a failed or refused `--json` run (its error object's `message`;
    /// empty when there is none).
    pub fn json_error(&self) -> String {
        self.json_result()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Assert the error text of a `--json` run contains `needle`.
    #[track_caller]
    pub fn json_error_has(&self, needle: &str) -> &Ran {
        let error = self.json_error();
        if !error.contains(needle) {
            self.fail(&format!(
                "the JSON error lacks {needle:?}\n--- error\n{error}"
            ));
        }
        self
    }

    /// Assert the error text of a `--json` run does not contain `needle`.
    #[track_caller]
    pub fn json_error_lacks(&self, needle: &str) -> &Ran {
        let error = self.json_error();
        if error.contains(needle) {
            self.fail(&format!(
                "the JSON error has {needle:?}, expected it not to\n--- error\n{error}"
            ));
        }
        self
    }

    /// The last line of `--json` output: the result event.
    #[track_caller]
    pub fn json_result(&self) -> serde_json::Value {
        let last = self.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last)
            .unwrap_or_else(|e| self.fail(&format!("the last stdout line is not JSON ({e})")))
    }

    /// Every `--json` event.
    pub fn json_events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

/// Every command of every run in a state directory, oldest run first: the journal's command
/// lines — not the lines with a `type` (a run's first and last lines, the run lock's notes).
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
fn interrupt(child: &std::process::Child) {
    let pid = child.id().to_string();
    let sent = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -INT {pid} failed");
}
