//! memcached's SysV init script (`/etc/init.d/memcached start|stop|restart|status`, or
//! `service memcached …`): the one non-upstart service the framework upgrade stops and starts.

use super::{Ctx, join};
use crate::sim::SimOutput;

/// Runs the memcached init script with `args` (the action).
pub fn memcached(ctx: &mut Ctx<'_>, argv: &[String], args: &[String]) -> SimOutput {
    let [action] = args else {
        return SimOutput::not_simulated(&join(argv));
    };
    match action.as_str() {
        "start" => {
            ctx.state.memcached_running = true;
            SimOutput::ok(" * Starting memcached memcached   [ OK ]\n")
        }
        "stop" => {
            ctx.state.memcached_running = false;
            SimOutput::ok(" * Stopping memcached memcached   [ OK ]\n")
        }
        "restart" => {
            ctx.state.memcached_running = true;
            SimOutput::ok(" * Restarting memcached memcached   [ OK ]\n")
        }
        "status" if ctx.state.memcached_running => SimOutput::ok(" * memcached is running\n"),
        "status" => SimOutput {
            code: 3,
            stdout: " * memcached is not running\n".into(),
            stderr: String::new(),
        },
        _ => SimOutput::not_simulated(&join(argv)),
    }
}

#[cfg(test)]
mod tests {
    use crate::sim::state::{AptVariant, Init};
    use crate::sim::tools::testutil::{node, run};

    #[test]
    fn start_stop_status() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_0);
        let o = run(&n, "/etc/init.d/memcached stop");
        assert_eq!(
            (o.code, o.stdout.as_str()),
            (0, " * Stopping memcached memcached   [ OK ]\n")
        );
        assert_eq!(run(&n, "/etc/init.d/memcached status").code, 3);
        let o = run(&n, "/etc/init.d/memcached start");
        assert_eq!(o.stdout, " * Starting memcached memcached   [ OK ]\n");
        assert!(n.state().expect("state").memcached_running);
        assert_eq!(run(&n, "service memcached restart").code, 0);
        assert_eq!(run(&n, "memcached start").code, 127);
    }
}
