//! `fuser [-k] 4446/tcp`: how the upgrade finds and kills the cloud agent ("offline").
//! psmisc prints the pids on stdout and the name on stderr, and exits 1 when nothing listens.

use super::{Ctx, join};
use crate::sim::SimOutput;

/// The TCP port the cloud agent listens on.
pub const AGENT_PORT: &str = "4446/tcp";

/// `fuser [-k] PORT/tcp`.
pub fn run(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    let (kill, target) = match &argv[1..] {
        [k, t] if k == "-k" => (true, t.as_str()),
        [t] if !t.starts_with('-') => (false, t.as_str()),
        _ => return SimOutput::not_simulated(&join(argv)),
    };
    if !target.ends_with("/tcp") {
        return SimOutput::not_simulated(&join(argv));
    }
    let pid = if target == AGENT_PORT {
        ctx.state.agent_pid
    } else {
        None
    };
    match pid {
        Some(pid) => {
            if kill {
                ctx.state.agent_pid = None;
            }
            SimOutput {
                code: 0,
                stdout: format!("{pid:>6}"),
                stderr: format!("{target}:\n"),
            }
        }
        None => SimOutput::fail(1, ""),
    }
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
