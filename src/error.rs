//! The one error type of the library, and the exit code each kind of failure maps to.
//!
//! Every fallible path of ovsup ends in [`Error`]. An error keeps its facts (the node, the
//! command, the exit code, the tail of stderr, where in which runbook) from where it happened to
//! the edge, where it is rendered exactly once (`run::run`): as text for people, or as the
//! object of `--json`'s result event ([`Error::to_json`]). The exit code follows from the kind
//! ([`Error::code`]); the kinds are listed in docs/errors.md.
//!
//! The rule for the exit codes: 2 is for what is wrong before the first command runs (command
//! line, inventory, runbook syntax); anything that goes wrong while a runbook runs — a
//! primitive given a wrong argument included, since nodes may have been changed already — is
//! 1, a refused safety check 3, Ctrl-C 130.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value, json};

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

/// How many lines of a failed command's stderr an error keeps.
pub const STDERR_TAIL_LINES: usize = 20;

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

impl Location {
    /// The 1-based line and column of byte `offset` of `text`, the text of `file`.
    pub fn of(file: &std::path::Path, text: &str, offset: usize) -> Location {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        let source_line = text[line_start..].lines().next().map(str::to_string);
        Location {
            file: file.to_path_buf(),
            line,
            column,
            source_line,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Everything that can go wrong in ovsup.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command line is wrong (exit 2).
    #[error("{0}")]
    Usage(String),

    /// The inventory file is malformed (exit 2).
    #[error("{location}: {message}")]
    Inventory {
        /// Where.
        location: Location,
        /// What was expected.
        message: String,
    },

    /// A runbook does not compile: syntax error, unknown import (exit 2).
    #[error("{location}: {message}")]
    ScriptSyntax {
        /// Where.
        location: Location,
        /// What is wrong.
        message: String,
    },

    /// A primitive was given an argument it cannot take, while the runbook ran (exit 1).
    #[error("{}{message}", if function.is_empty() { String::new() } else { format!("{function}: ") })]
    Argument {
        /// The primitive (empty when not known where the argument was checked).
        function: String,
        /// What it expected and what it got.
        message: String,
    },

    /// The runbook failed by itself: its own `fail(…)`, or a runtime error of the script such
    /// as a type mismatch or an unknown function (exit 1).
    #[error("{message}")]
    Script {
        /// What happened.
        message: String,
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

    /// A node is not in the state a step needs, or did not reach it: VMs still running after
    /// their deadline, the agent still listening, a service not running after its start.
    #[error("{node}: {message}")]
    Node {
        /// The node.
        node: String,
        /// What is wrong with it.
        message: String,
    },

    /// A node of a fan-out was not started because another node failed (fail-stop).
    #[error("{node}: not started, because another node failed")]
    NotStarted {
        /// The node.
        node: String,
    },

    /// A safety check refused to go on (exit 3).
    #[error("refused: {0}")]
    Refused(String),

    /// The run was interrupted (Ctrl-C; exit 130).
    #[error("interrupted")]
    Interrupted,

    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: Arc<std::io::Error>,
    },

    /// A simulated node's own machinery failed (its state file): the simulated node is
    /// broken, not the command run on it.
    #[error("{}{message}", if node.is_empty() { "simulated cluster: ".to_string() } else { format!("simulated node {node}: ") })]
    Simulator {
        /// The node (empty when the cluster as a whole failed, e.g. its directory).
        node: String,
        /// What failed.
        message: String,
    },

    /// Several nodes failed in one fan-out.
    #[error("{}", describe_nodes(*total, failures))]
    Nodes {
        /// How many nodes were targeted.
        total: usize,
        /// One error per failed node, in node order.
        failures: Vec<Error>,
    },

    /// An error that happened at a place of a runbook: the innermost `file:line:col`.
    #[error("{location}: {error}")]
    At {
        /// Where.
        location: Location,
        /// What.
        error: Box<Error>,
    },

    /// A bug in ovsup.
    #[error("internal error, this is a bug in ovsup (please report it): {0}")]
    Internal(String),
}

/// A fan-out's failures: one line per failed node — or, when the one failure is a refusal of
/// the whole run (the environment's lock, a guard) and the other nodes were only not started
/// because of it, that refusal alone.
fn describe_nodes(total: usize, failures: &[Error]) -> String {
    let real: Vec<&Error> = failures
        .iter()
        .filter(|f| !matches!(f, Error::NotStarted { .. }))
        .collect();
    if let [refusal @ Error::Refused(_)] = real.as_slice() {
        return refusal.to_string();
    }
    format!(
        "{} of {total} nodes failed:\n{}",
        failures.len(),
        failures
            .iter()
            .map(|e| format!("  {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
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
            Error::At { error, .. } => error.code(),
            Error::Nodes { failures, .. } => failures
                .iter()
                .map(Error::code)
                .max_by_key(|c| severity(*c))
                .unwrap_or(EXIT_FAILED),
            _ => EXIT_FAILED,
        }
    }

    /// The one failure that matters, when there is one: the error itself, or — for a fan-out
    /// where exactly one node failed (the others succeeded or were not started because of
    /// it) — that node's failure. Its kind and facts are the error's.
    pub fn sole(&self) -> Option<&Error> {
        match self {
            Error::At { error, .. } => error.sole(),
            Error::Nodes { failures, .. } => {
                let mut real = failures
                    .iter()
                    .filter(|f| !matches!(f, Error::NotStarted { .. }));
                match (real.next(), real.next()) {
                    (Some(one), None) => one.sole(),
                    _ => None,
                }
            }
            other => Some(other),
        }
    }

    /// The kind of failure, as `--json` names it (the list is in docs/errors.md); a fan-out
    /// where one node failed has that node's kind, one where several did is `nodes`.
    pub fn kind(&self) -> &'static str {
        if let Some(sole) = self.sole()
            && !std::ptr::eq(sole, self)
        {
            return sole.kind();
        }
        match self {
            Error::Usage(_) => "usage",
            Error::Inventory { .. } => "inventory",
            Error::ScriptSyntax { .. } => "syntax",
            Error::Argument { .. } => "argument",
            Error::Script { .. } => "script",
            Error::Remote { .. } => "remote",
            Error::Unreachable { .. } => "unreachable",
            Error::Timeout { .. } => "timeout",
            Error::Unexpected { .. } => "unexpected_output",
            Error::Node { .. } => "node_state",
            Error::NotStarted { .. } => "not_started",
            Error::Refused(_) => "refused",
            Error::Interrupted => "interrupted",
            Error::Io { .. } => "io",
            Error::Simulator { .. } => "simulator",
            Error::Nodes { .. } => "nodes",
            Error::At { error, .. } => error.kind(),
            Error::Internal(_) => "internal",
        }
    }

    /// The node the error concerns, when it concerns one (a fan-out where one node failed
    /// counts as that node).
    pub fn node(&self) -> Option<&str> {
        match self {
            Error::Remote { node, .. }
            | Error::Unreachable { node, .. }
            | Error::Timeout { node, .. }
            | Error::Unexpected { node, .. }
            | Error::Node { node, .. }
            | Error::NotStarted { node } => Some(node),
            Error::Simulator { node, .. } => (!node.is_empty()).then_some(node.as_str()),
            Error::At { error, .. } => error.node(),
            Error::Nodes { failures, .. } => match self.nodes().as_slice() {
                [_] => failures.iter().find_map(Error::node),
                _ => None,
            },
            _ => None,
        }
    }

    /// Every node the error concerns, in order, without repeats (the failed nodes of a
    /// fan-out; the nodes not started for want of a healthy fleet are not among them).
    pub fn nodes(&self) -> Vec<&str> {
        match self {
            Error::At { error, .. } => error.nodes(),
            Error::Nodes { failures, .. } => {
                let mut out: Vec<&str> = Vec::new();
                for f in failures {
                    if matches!(f, Error::NotStarted { .. }) {
                        continue;
                    }
                    for n in f.nodes() {
                        if !out.contains(&n) {
                            out.push(n);
                        }
                    }
                }
                out
            }
            other => other.node().into_iter().collect(),
        }
    }

    /// The remote command, when a command failed, timed out or printed something unexpected.
    pub fn command(&self) -> Option<&str> {
        match self.sole()? {
            Error::Remote { command, .. }
            | Error::Timeout { command, .. }
            | Error::Unexpected { command, .. } => Some(command),
            _ => None,
        }
    }

    /// The remote command's exit code, when it exited non-zero.
    pub fn exit_code(&self) -> Option<i32> {
        match self.sole()? {
            Error::Remote { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Where in a runbook or inventory the error happened, when known.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Inventory { location, .. }
            | Error::ScriptSyntax { location, .. }
            | Error::At { location, .. } => Some(location),
            _ => None,
        }
    }

    /// The error without its location: what happened, wherever it was.
    pub fn innermost(&self) -> &Error {
        match self {
            Error::At { error, .. } => error.innermost(),
            other => other,
        }
    }

    /// The error located at `location`, unless it carries a location already (the innermost
    /// position wins).
    pub fn at(self, location: Option<Location>) -> Error {
        match (location, &self) {
            (_, Error::At { .. } | Error::Inventory { .. } | Error::ScriptSyntax { .. }) => self,
            (Some(location), _) => Error::At {
                location,
                error: Box::new(self),
            },
            (None, _) => self,
        }
    }

    /// The error as `--json` gives it: an object with `kind` and `message`, and the facts it
    /// has (`node`, `nodes`, `command`, `code`, `stderr_tail`, `location`, `function`, `line`,
    /// `seconds`, `path`, `failures`); absent facts are left out.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("kind".into(), self.kind().into());
        o.insert("message".into(), self.innermost().to_string().into());
        if let Some(node) = self.node() {
            o.insert("node".into(), node.into());
        }
        let nodes = self.nodes();
        if nodes.len() > 1 {
            o.insert("nodes".into(), nodes.into());
        }
        if let Some(command) = self.command() {
            o.insert("command".into(), command.into());
        }
        if let Some(code) = self.exit_code() {
            o.insert("code".into(), code.into());
        }
        if let Some(loc) = self.location() {
            o.insert(
                "location".into(),
                json!({"file": loc.file.display().to_string(), "line": loc.line, "column": loc.column}),
            );
        }
        if let Some(sole) = self.sole() {
            sole_facts(sole, &mut o);
        }
        if let Error::Nodes { total, failures } = self.innermost() {
            o.insert("total".into(), (*total).into());
            o.insert(
                "failures".into(),
                failures
                    .iter()
                    .map(Error::to_json)
                    .collect::<Vec<_>>()
                    .into(),
            );
        }
        Value::Object(o)
    }

    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// A node that is not in the state a step needs.
    pub fn node_state(node: &str, message: impl Into<String>) -> Self {
        Error::Node {
            node: node.to_string(),
            message: message.into(),
        }
    }

    /// A wrong argument, found where the primitive's name is not known (the script adapter
    /// adds it).
    pub fn argument(message: impl Into<String>) -> Self {
        Error::Argument {
            function: String::new(),
            message: message.into(),
        }
    }
}

/// The facts particular to one kind of error, for [`Error::to_json`].
fn sole_facts(e: &Error, o: &mut Map<String, Value>) {
    match e {
        Error::Remote { stderr, .. } if !stderr.trim().is_empty() => {
            o.insert("stderr_tail".into(), stderr.trim_end().into());
        }
        Error::Argument { function, .. } if !function.is_empty() => {
            o.insert("function".into(), function.as_str().into());
        }
        Error::Unexpected { line, .. } => {
            o.insert("line".into(), line.as_str().into());
        }
        Error::Timeout { seconds, .. } => {
            o.insert("seconds".into(), (*seconds).into());
        }
        Error::Io { path, .. } => {
            o.insert("path".into(), path.display().to_string().into());
        }
        _ => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(node: &str) -> Error {
        Error::Remote {
            node: node.into(),
            command: "apt-get install -y alba".into(),
            code: 100,
            stderr: "E: Sub-process /usr/bin/dpkg returned an error code (1)\n".into(),
        }
    }

    #[test]
    fn a_located_error_keeps_its_kind_code_and_facts() {
        let location = Location {
            file: "runbooks/alba.rhai".into(),
            line: 12,
            column: 3,
            source_line: None,
        };
        let e = remote("node-02").at(Some(location.clone()));
        assert_eq!(e.code(), EXIT_FAILED);
        assert_eq!(e.kind(), "remote");
        assert_eq!(e.node(), Some("node-02"));
        assert!(
            e.to_string()
                .starts_with("runbooks/alba.rhai:12:3: node-02: `apt-get")
        );
        let j = e.to_json();
        assert_eq!(j["kind"], "remote");
        assert_eq!(j["node"], "node-02");
        assert_eq!(j["code"], 100);
        assert_eq!(j["command"], "apt-get install -y alba");
        assert_eq!(
            j["stderr_tail"],
            "E: Sub-process /usr/bin/dpkg returned an error code (1)"
        );
        assert_eq!(j["location"]["line"], 12);
        assert!(j.get("nodes").is_none() && j.get("seconds").is_none());
        // The innermost location wins.
        let outer = Location {
            line: 1,
            ..location
        };
        assert_eq!(
            e.clone().at(Some(outer)).location().map(|l| l.line),
            Some(12)
        );
    }

    #[test]
    fn a_fan_out_names_its_failed_nodes_and_takes_the_gravest_code() {
        let one = Error::Nodes {
            total: 3,
            failures: vec![
                remote("node-01"),
                Error::NotStarted {
                    node: "node-03".into(),
                },
            ],
        };
        assert_eq!(one.node(), Some("node-01"));
        assert_eq!(one.nodes(), ["node-01"]);
        let two = Error::Nodes {
            total: 3,
            failures: vec![remote("node-01"), Error::Refused("no".into())],
        };
        assert_eq!(two.code(), EXIT_REFUSED);
        let three = Error::Nodes {
            total: 3,
            failures: vec![
                remote("node-01"),
                Error::node_state("node-02", "still online"),
            ],
        };
        assert_eq!(three.node(), None);
        assert_eq!(three.nodes(), ["node-01", "node-02"]);
        assert_eq!(three.to_json()["failures"][1]["kind"], "node_state");
        assert_eq!(
            Error::Argument {
                function: "apt_install".into(),
                message: "expected package names, found i64".into()
            }
            .to_string(),
            "apt_install: expected package names, found i64"
        );
    }
}
