//! Parsers of what the real tools print (formats in docs/node-commands.md). Pure functions
//! over text: each accepts the layouts the real tools use (apt 1.0 and newer, upstart and
//! systemd) and rejects anything else with the offending line, never guessing.

pub mod apt;
pub mod arakoon;
pub mod dpkg;
pub mod fuser;
pub mod health;
pub mod systemd;
pub mod upstart;
pub mod virsh;

use crate::error::Error;

/// The error for output a parser does not expect: the node, the command and the offending
/// line, never a guess.
pub(crate) fn unexpected(node: &str, command: &str, line: &str, message: &str) -> Error {
    Error::Unexpected {
        node: node.to_string(),
        command: command.to_string(),
        line: line.to_string(),
        message: message.to_string(),
    }
}

/// In tests: assert that a parser rejected `line` of `command`'s output on `node`, naming all
/// three.
#[cfg(test)]
pub(crate) fn assert_rejected<T: std::fmt::Debug>(
    result: crate::error::Result<T>,
    node: &str,
    command: &str,
    line: &str,
) {
    match result {
        Err(Error::Unexpected {
            node: n,
            command: c,
            line: l,
            ..
        }) => assert_eq!((n.as_str(), c.as_str(), l.as_str()), (node, command, line)),
        other => panic!("expected {line:?} of `{command}` on {node} to be rejected, got {other:?}"),
    }
}
