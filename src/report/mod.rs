//! Everything ovsup tells the operator goes through one [`Reporter`]: live progress on a
//! terminal, plain lines otherwise, or one JSON event per line with `--json`. Primitives never
//! print; they report events.

pub mod human;
pub mod json;

use serde::Serialize;

/// Severity of a runbook message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// `info(…)`, `print(…)`.
    Info,
    /// `warn(…)`.
    Warn,
    /// Detail shown with `-v` (`debug(…)`).
    Debug,
}

/// Something that happened during a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A fan-out over `nodes` begins.
    Begin {
        /// What the fan-out does (the command, or the primitive's name).
        label: String,
        /// The nodes, in order.
        nodes: Vec<String>,
    },
    /// A command starts on a node.
    Exec {
        /// The node.
        node: String,
        /// The command (shell text).
        command: String,
    },
    /// A command ended on a node (or was only printed, in a dry run).
    Done {
        /// The node.
        node: String,
        /// The command (shell text).
        command: String,
        /// Its exit code, if it ran to an end.
        code: Option<i32>,
        /// How long it took, in milliseconds.
        ms: u64,
        /// Bytes of output (stdout + stderr).
        bytes: u64,
        /// Why it did not run to an end (unreachable, timed out).
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// True when the command was not run because of `--dry-run`.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        dry_run: bool,
    },
    /// The fan-out begun with the matching `Begin` is over.
    End {
        /// Same label as `Begin`.
        label: String,
    },
    /// A message from the runbook.
    Log {
        /// Severity.
        level: Level,
        /// Text.
        message: String,
    },
    /// The run is over: always the last event.
    Result {
        /// Whether the run succeeded.
        ok: bool,
        /// The runbook's return value (`null` when it returned nothing or failed).
        value: serde_json::Value,
        /// The process exit code.
        code: i32,
        /// The error, when it failed: an object with its `kind`, `message` and facts (see
        /// `Error::to_json` and docs/errors.md).
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<serde_json::Value>,
    },
}

/// Receives every event of a run.
pub trait Reporter: Send + Sync {
    /// Report one event.
    fn report(&self, event: Event);
}
