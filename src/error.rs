//! The one error type of the library, and the exit code each kind of failure maps to.
//!
//! Every fallible path of ovsup ends in [`Error`]; it is rendered exactly once, by the binary's
//! edge (`run::run`). The exit codes are part of the command-line contract (see `--help`).

use std::path::PathBuf;

/// Exit code: the run succeeded.
pub const EXIT_OK: i32 = 0;
/// Exit code: a step failed (remote command, unreachable node, runtime error in a runbook).
pub const EXIT_FAILED: i32 = 1;
/// Exit code: bad usage or input (command line, inventory, runbook syntax).
pub const EXIT_USAGE: i32 = 2;
/// Exit code: refused by a safety check.
pub const EXIT_REFUSED: i32 = 3;
/// Exit code: interrupted (Ctrl-C).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Where in a source file something happened (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as the user named it.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The text of that line, for the caret display.
    pub source_line: Option<String>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Everything that can go wrong in ovsup.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),

    /// The inventory file is malformed.
    #[error("{location}: {message}")]
    Inventory {
        /// Where.
        location: Location,
        /// What was expected.
        message: String,
    },

    /// A runbook does not compile (syntax error, unknown import).
    #[error("{location}: {message}")]
    ScriptSyntax {
        /// Where.
        location: Location,
        /// What is wrong.
        message: String,
    },

    /// A runbook failed while running (its own `fail`, a type error, a failed primitive).
    #[error("{}{message}", location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default())]
    Script {
        /// Where, when known.
        location: Option<Location>,
        /// What happened.
        message: String,
        /// The exit code the failure maps to (a refused safety check inside a runbook is 3).
        code: i32,
    },

    /// A remote command exited non-zero.
    #[error("{node}: `{command}` exited with code {code}{}", stderr_suffix(stderr))]
    Remote {
        /// The node.
        node: String,
        /// The command as sent (shell text).
        command: String,
        /// Its exit code.
        code: i32,
        /// The tail of its standard error.
        stderr: String,
    },

    /// A node could not be reached (connect failed, connection lost).
    #[error("{node}: unreachable: {reason}")]
    Unreachable {
        /// The node.
        node: String,
        /// What ssh said.
        reason: String,
    },

    /// A remote command ran past its deadline (it was killed on the node by `timeout`).
    #[error("{node}: `{command}` timed out after {seconds} s")]
    Timeout {
        /// The node.
        node: String,
        /// The command as sent.
        command: String,
        /// The deadline that passed.
        seconds: u64,
    },

    /// A node printed something its parser does not expect: never guessed around.
    #[error("{node}: `{command}`: {message}: {line:?}")]
    Unexpected {
        /// The node.
        node: String,
        /// The command whose output it was.
        command: String,
        /// The offending line.
        line: String,
        /// What was expected.
        message: String,
    },

    /// A safety check refused to go on.
    #[error("refused: {0}")]
    Refused(String),

    /// The run was interrupted (Ctrl-C).
    #[error("interrupted")]
    Interrupted,

    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// Several nodes failed in one fan-out.
    #[error("{} of {total} nodes failed:\n{}", failures.len(), failures.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Nodes {
        /// How many nodes were targeted.
        total: usize,
        /// One error per failed node, in node order.
        failures: Vec<Error>,
    },

    /// A bug in ovsup.
    #[error("internal error, this is a bug in ovsup (please report it): {0}")]
    Internal(String),
}

fn stderr_suffix(stderr: &str) -> String {
    let tail = stderr.trim_end();
    if tail.is_empty() {
        String::new()
    } else {
        format!(":\n    {}", tail.replace('\n', "\n    "))
    }
}

impl Error {
    /// The process exit code for this error.
    pub fn code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Inventory { .. } | Error::ScriptSyntax { .. } => EXIT_USAGE,
            Error::Refused(_) => EXIT_REFUSED,
            Error::Interrupted => EXIT_INTERRUPTED,
            Error::Script { code, .. } => *code,
            Error::Nodes { failures, .. } => failures
                .iter()
                .map(Error::code)
                .max_by_key(|c| severity(*c))
                .unwrap_or(EXIT_FAILED),
            _ => EXIT_FAILED,
        }
    }

    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Interrupt wins over refusal, which wins over failure.
fn severity(code: i32) -> u8 {
    match code {
        EXIT_INTERRUPTED => 3,
        EXIT_REFUSED => 2,
        _ => 1,
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
