//! Running commands: shell text the operator wrote, or an argument vector quoted for the
//! remote shell.

use std::time::Duration;

use crate::host::{Effect, Host, OnFailure, PerNode};
use crate::inventory::Node;
use crate::secret::CommandLine;
use crate::transport::Output;

/// Whether a non-zero exit is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Non-zero exit raises [`crate::error::Error::Remote`]; a failure stops further nodes.
    ExitZero,
    /// Every outcome is returned; every node runs.
    Nothing,
}

/// Run `line` on every node in parallel and return each node's outcome, in node order (the
/// fan-out, like everything but the node, sees the line as shown: secrets redacted).
pub async fn run(
    host: &Host,
    nodes: &[Node],
    line: &CommandLine,
    effect: Effect,
    check: Check,
    timeout: Option<Duration>,
) -> PerNode<Output> {
    let on_failure = match check {
        Check::ExitZero => OnFailure::Stop,
        Check::Nothing => OnFailure::Continue,
    };
    host.fan_out(line.shown(), nodes, on_failure, |node| async move {
        match check {
            Check::ExitZero => host.exec_ok(&node, line, effect, timeout).await,
            Check::Nothing => host.exec(&node, line, effect, timeout).await,
        }
    })
    .await
}
