//! `ays` (the OpenvCloud AtYourService CLI) for the three calls the upgrade makes: starting
//! the cloud agent (`start -n jsagent`, "online"), restarting nginx and re-applying branding.

use super::{Ctx, join};
use crate::sim::SimOutput;

/// `ays start|stop -n jsagent`, `ays restart -n nginx`, `ays install -r -n ovs_branding`.
pub fn run(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    match args.as_slice() {
        ["start", "-n", "jsagent"] => {
            if ctx.state.agent_pid.is_none() {
                let pid = ctx.state.alloc_pid();
                ctx.state.agent_pid = Some(pid);
            }
            SimOutput::ok("start jsagent\n  jsagent started\n")
        }
        ["stop", "-n", "jsagent"] => {
            ctx.state.agent_pid = None;
            SimOutput::ok("stop jsagent\n  jsagent stopped\n")
        }
        ["restart", "-n", "nginx"] => SimOutput::ok("restart nginx\n  nginx restarted\n"),
        ["install", "-r", "-n", "ovs_branding"] => {
            SimOutput::ok("install ovs_branding (reinstall)\n  ovs_branding installed\n")
        }
        _ => SimOutput::not_simulated(&join(argv)),
    }
}
