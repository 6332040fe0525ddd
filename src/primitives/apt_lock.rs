//! The dpkg and apt locks. Unattended upgrades and cron jobs hold them for seconds to minutes;
//! an operator expects a bounded wait there, not a failure at once. A command that finds a
//! lock held (`E: Could not get lock /var/lib/dpkg/lock - open (11: …)`, exit 100) is tried
//! again every few seconds, up to the node's `apt_lock_wait` (default 120 s), after saying who
//! holds it (`fuser -v` on the lock); then it fails naming the holder.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::host::{Effect, Host};
use crate::inventory::Node;
use crate::primitives::parse::fuser;
use crate::quote;
use crate::report::{Event, Level};
use crate::transport::Output;
use crate::wait::{Probe, Waited};

/// How often a command that found a lock held is tried again.
const RETRY: Duration = Duration::from_secs(2);

/// The lock file a failed apt or dpkg command says is held, if that is why it failed.
pub fn held_lock(out: &Output) -> Option<String> {
    if out.code == 0 {
        return None;
    }
    out.stderr.lines().find_map(|l| {
        let rest = l.strip_prefix("E: Could not get lock ")?;
        let path = rest.split(" - ").next()?.trim();
        (!path.is_empty()).then(|| path.to_string())
    })
}

/// Who holds `lock` on `node` (`fuser -v LOCK`, read-only), as people read it.
async fn holders(host: &Host, node: &Node, lock: &str) -> String {
    let Ok(line) = quote::join(&["fuser", "-v", lock]) else {
        return "an unknown process".into();
    };
    let found = match host.exec(node, &line, Effect::Read, None).await {
        Ok(out) => fuser::holders(&node.name, &line, lock, &out),
        Err(e) => Err(e),
    };
    match found {
        Ok(h) if !h.is_empty() => h
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        Ok(_) => "a process that has let go of it by now".into(),
        Err(e) => format!("an unknown process (fuser: {e})"),
    }
}

/// Run `line`, an apt or dpkg command that takes the dpkg or apt lock, waiting while another
/// process holds it (see the module docs). Returns the command's last output, whatever its
/// exit code; a lock still held at the deadline is an error naming the holder.
pub async fn run(host: &Host, node: &Node, line: &str, effect: Effect) -> Result<Output> {
    let mut told = false;
    let waited = host
        .poll_until(node.apt_lock_wait, RETRY, async || {
            let out = host.exec(node, line, effect, None).await?;
            let Some(lock) = held_lock(&out) else {
                return Ok(Probe::Done(out));
            };
            if !told {
                told = true;
                host.report(Event::Log {
                    level: Level::Warn,
                    message: format!(
                        "{}: {lock} is held by {}; waiting up to {} s for it",
                        node.name,
                        holders(host, node, &lock).await,
                        node.apt_lock_wait.as_secs()
                    ),
                });
            }
            Ok(Probe::NotYet((lock, out)))
        })
        .await?;
    match waited {
        Waited::Done(out) => Ok(out),
        Waited::Expired((lock, out)) => Err(Error::node_state(
            &node.name,
            format!(
                "{lock} is still held after {} s, by {}: `{line}` did not run ({}); \
                 wait for it to finish and run again (or raise apt_lock_wait)",
                node.apt_lock_wait.as_secs(),
                holders(host, node, &lock).await,
                out.stderr.lines().next().unwrap_or("").trim()
            ),
        )),
    }
}
