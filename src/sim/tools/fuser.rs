//! `fuser [-v] [-k] NAME…` as psmisc answers it: who listens on the cloud agent's port
//! (`4446/tcp`, how the upgrade tells "online" from "offline", and kills the agent) and who
//! holds the apt/dpkg lock files (the process a `apt_lock`/`apt_lock_secs` fault puts
//! there). The pids go to stdout (`%6d` each), the names to stderr; with `-v` the
//! `USER PID ACCESS COMMAND` table is on stderr (the pids still on stdout). Exit 1 when
//! nothing matched.

use std::fmt::Write as _;

use super::{Ctx, join};
use crate::sim::SimOutput;
use crate::sim::fs::normalize;
use crate::sim::state::{LOCK_HOLDER, LOCK_HOLDER_PID};

/// The TCP port the cloud agent listens on.
pub const AGENT_PORT: &str = "4446/tcp";
/// The lock files of apt and dpkg (a holder of the apt lock holds them all).
pub const LOCK_FILES: [&str; 4] = [
    "/var/lib/dpkg/lock",
    "/var/lib/dpkg/lock-frontend",
    "/var/lib/apt/lists/lock",
    "/var/cache/apt/archives/lock",
];
/// The width of the NAME column of `-v`.
const NAME_FIELD: usize = 20;

struct Opts {
    kill: bool,
    verbose: bool,
}

/// `fuser [-v] [-k] NAME…`.
pub fn run(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    let mut opts = Opts {
        kill: false,
        verbose: false,
    };
    let mut names = Vec::new();
    for a in &argv[1..] {
        match a.as_str() {
            "-k" | "--kill" => opts.kill = true,
            "-v" | "--verbose" => opts.verbose = true,
            o if o.starts_with('-') => return SimOutput::not_simulated(&join(argv)),
            n => names.push(n),
        }
    }
    let files_only = names.iter().all(|n| !n.ends_with("/tcp"));
    if names.is_empty() || (opts.kill && (files_only || names.len() > 1)) {
        return SimOutput::not_simulated(&join(argv));
    }
    let mut out = SimOutput::fail(1, "");
    for name in names {
        let Some(user) = holder(ctx, name, &opts) else {
            if !name.ends_with("/tcp") && ctx.fs.kind(name).is_none() && !is_lock(name) {
                let _ = writeln!(out.stderr, "Specified filename {name} does not exist.");
            }
            continue;
        };
        if opts.verbose && out.code != 0 {
            let _ = writeln!(
                out.stderr,
                "{:w$} USER        PID ACCESS COMMAND",
                "",
                w = NAME_FIELD
            );
        }
        out.code = 0;
        let _ = write!(out.stdout, "{:>6}", user.pid);
        if opts.verbose {
            let label = format!("{name}:");
            if label.len() > NAME_FIELD {
                let _ = write!(out.stderr, "{label}\n{:w$} ", "", w = NAME_FIELD);
            } else {
                let _ = write!(out.stderr, "{label:<w$} ", w = NAME_FIELD);
            }
            let _ = writeln!(out.stderr, "{:<8}  F.... {}", "root", user.command);
        } else {
            let _ = writeln!(out.stderr, "{name}:");
        }
    }
    out
}

fn is_lock(name: &str) -> bool {
    LOCK_FILES.contains(&normalize(name).as_str())
}

/// The process using `name`: its pid and command.
struct User {
    pid: u32,
    command: &'static str,
}

/// Who uses `name` now (and, with `-k` on the agent's port, kill it).
fn holder(ctx: &mut Ctx<'_>, name: &str, opts: &Opts) -> Option<User> {
    if name == AGENT_PORT {
        let pid = ctx.state.agent_pid?;
        if opts.kill {
            ctx.state.agent_pid = None;
        }
        return Some(User {
            pid,
            command: "python",
        });
    }
    if is_lock(name) && ctx.state.faults.apt_lock_held(ctx.now_ms) {
        return Some(User {
            pid: ctx.state.faults.apt_lock_pid.unwrap_or(LOCK_HOLDER_PID),
            command: LOCK_HOLDER,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::sim::state::{AptVariant, Init};
    use crate::sim::tools::testutil::{node, run};

    #[test]
    fn agent_offline_online() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_0);
        let pid = n.state().expect("state").agent_pid.expect("agent");
        let o = run(&n, "fuser 4446/tcp");
        assert_eq!(
            (o.code, o.stdout.trim(), o.stderr.as_str()),
            (0, pid.to_string().as_str(), "4446/tcp:\n")
        );
        assert_eq!(run(&n, "fuser -k 4446/tcp").code, 0);
        assert_eq!(
            run(&n, "fuser 4446/tcp"),
            crate::sim::SimOutput::fail(1, "")
        );
        assert_eq!(run(&n, "fuser -k 4446/tcp").code, 1);
        let o = run(&n, "ays start -n jsagent");
        assert_eq!(o.code, 0);
        assert_eq!(run(&n, "fuser 4446/tcp").code, 0);
        assert_ne!(n.state().expect("state").agent_pid, Some(pid));
    }
}
