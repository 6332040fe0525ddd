//! The environment's run lock as the nodes hold it: `/var/lib/ovsup/run.lock`, `flock`ed by a
//! session that lives as long as the run's connection to the node (it reads its stdin until
//! the run lets go, or until the connection dies and sshd closes it), and
//! `/var/lib/ovsup/run.lock.holder`, which says who holds it. A second run — from another
//! state directory or another controller — finds the lock taken on the nodes themselves, as
//! Open vStorage's own updater keeps its lock in the cluster. A holder whose connection died
//! leaves its holder file behind but not its lock: the next run takes the lock over and says
//! whose it was.

use std::time::Duration;

use crate::error::{Error, Result};

/// The lock file on every node.
pub const LOCK_PATH: &str = "/var/lib/ovsup/run.lock";
/// Who holds it (one line of JSON), beside it.
pub const HOLDER_PATH: &str = "/var/lib/ovsup/run.lock.holder";

/// How long a node may take to answer a lock request.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// How a node answered a request for the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockAnswer {
    /// The lock is ours now; `previous` is the holder file a gone holder left (taken over).
    Held {
        /// What the holder file said when we took the lock, if anything.
        previous: Option<String>,
    },
    /// Another run holds it; what its holder file says.
    Busy {
        /// The holder's description (JSON), possibly empty.
        holder: String,
    },
}

/// The shell text that takes the lock on a node and holds it while its stdin stays open.
/// `holder` is quoted as one word; nothing else is interpolated.
pub fn script(holder: &str) -> Result<String> {
    let holder = shlex::try_quote(holder)
        .map_err(|_| Error::argument("the lock holder contains a NUL byte"))?;
    // Builtins wherever they do (`[ -d ]`, `read` rather than `$(cat …)` and `cat >/dev/null`):
    // `flock` is the only program it starts, so that taking the lock on hundreds of nodes costs
    // them one process each beyond the shell (see bench/).
    Ok(format!(
        "umask 077 && {{ [ -d /var/lib/ovsup ] || mkdir -p /var/lib/ovsup; }} && exec 9>>{LOCK_PATH} || exit 97\n\
         prev=\n\
         if flock -n 9; then\n\
         \x20 [ -s {HOLDER_PATH} ] && read -r prev < {HOLDER_PATH}\n\
         \x20 printf '%s\\n' {holder} > {HOLDER_PATH}\n\
         \x20 printf 'LOCKED\\t%s\\n' \"$prev\"\n\
         \x20 while read -r _; do :; done\n\
         \x20 : > {HOLDER_PATH}\n\
         else\n\
         \x20 [ -s {HOLDER_PATH} ] && read -r prev < {HOLDER_PATH}\n\
         \x20 printf 'BUSY\\t%s\\n' \"$prev\"\n\
         fi\n"
    ))
}

/// Read the first line the lock script printed.
pub fn answer(node: &str, command: &str, first_line: &str) -> Result<LockAnswer> {
    let unexpected = |message: &str| Error::Unexpected {
        node: node.to_string(),
        command: command.to_string(),
        line: first_line.to_string(),
        message: message.to_string(),
    };
    let (word, rest) = first_line
        .split_once('\t')
        .ok_or_else(|| unexpected("expected LOCKED or BUSY and the holder"))?;
    let rest = rest.trim();
    match word {
        "LOCKED" => Ok(LockAnswer::Held {
            previous: (!rest.is_empty()).then(|| rest.to_string()),
        }),
        "BUSY" => Ok(LockAnswer::Busy {
            holder: rest.to_string(),
        }),
        _ => Err(unexpected("expected LOCKED or BUSY and the holder")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_quotes_the_holder_and_the_answers_parse() {
        let holder = r#"{"user":"o'brien; rm -rf /"}"#;
        let s = script(holder).expect("script");
        let line = s
            .lines()
            .find(|l| l.trim_start().starts_with("printf '%s"))
            .expect("the line writing the holder");
        let words = shlex::split(line).expect("shell words");
        assert_eq!(words[2], holder, "{s}");
        assert_eq!(
            answer("n", "c", "LOCKED\t").expect("held"),
            LockAnswer::Held { previous: None }
        );
        assert_eq!(
            answer("n", "c", "LOCKED\t{\"pid\":1}").expect("taken over"),
            LockAnswer::Held {
                previous: Some("{\"pid\":1}".into())
            }
        );
        assert_eq!(
            answer("n", "c", "BUSY\t{\"pid\":2}").expect("busy"),
            LockAnswer::Busy {
                holder: "{\"pid\":2}".into()
            }
        );
        assert!(answer("n", "c", "flock: not found").is_err());
    }
}
