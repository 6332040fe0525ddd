//! Upstart 1.12 as the legacy nodes run it: `initctl list|version` and the
//! `start|stop|status|restart JOB` front-ends, with upstart's exact lines and its
//! non-idempotent errors (starting a running job and stopping a stopped one exit 1).

use super::{Ctx, basename, join};
use crate::sim::SimOutput;
use crate::sim::state::Job;

/// The line `initctl list` and `status` print for a job.
pub fn job_line(name: &str, job: &Job) -> String {
    if job.running {
        format!("{name} start/running, process {}\n", job.pid)
    } else {
        format!("{name} stop/waiting\n")
    }
}

/// `initctl …`, `start JOB`, `stop JOB`, `status JOB`, `restart JOB`.
pub fn run(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    let prog = basename(&argv[0]);
    let (action, rest) = if prog == "initctl" {
        match argv.get(1).map(String::as_str) {
            Some("list") if argv.len() == 2 => {
                let mut out = String::new();
                for (name, job) in &ctx.state.jobs {
                    out.push_str(&job_line(name, job));
                }
                return SimOutput::ok(out);
            }
            Some("version") if argv.len() == 2 => {
                return SimOutput::ok("init (upstart 1.12.1)\n");
            }
            Some(a @ ("start" | "stop" | "status" | "restart")) => (a, &argv[2..]),
            _ => return SimOutput::not_simulated(&join(argv)),
        }
    } else {
        (prog, &argv[1..])
    };
    match rest {
        [job] => control(ctx, prog, action, job),
        [] => SimOutput::fail(
            1,
            format!("{prog}: missing job name\nTry `{prog} --help' for more information.\n"),
        ),
        _ => SimOutput::not_simulated(&join(argv)),
    }
}

/// `status|start|stop|restart JOB`, with upstart's non-idempotent errors.
fn control(ctx: &mut Ctx<'_>, prog: &str, action: &str, job: &str) -> SimOutput {
    let Some(current) = ctx.state.jobs.get(job).cloned() else {
        return SimOutput::fail(1, format!("{prog}: Unknown job: {job}\n"));
    };
    match action {
        "status" => SimOutput::ok(job_line(job, &current)),
        "start" if current.running => {
            SimOutput::fail(1, format!("{prog}: Job is already running: {job}\n"))
        }
        "stop" | "restart" if !current.running => {
            SimOutput::fail(1, format!("{prog}: Unknown instance: \n"))
        }
        "start" | "restart" => match ctx.state.start_job(job, ctx.now_ms) {
            Ok(_) => SimOutput::ok(job_line(job, &ctx.state.jobs[job])),
            Err(_) => SimOutput::fail(1, format!("{prog}: Job failed to start\n")),
        },
        _ => {
            ctx.state.stop_job(job);
            SimOutput::ok(job_line(job, &ctx.state.jobs[job]))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::sim::state::{AptVariant, Init};
    use crate::sim::tools::testutil::{node, run};

    #[test]
    fn list_status_start_stop_restart() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_0);
        let o = run(&n, "initctl version");
        assert_eq!(o.stdout, "init (upstart 1.12.1)\n");
        let o = run(&n, "initctl list");
        assert_eq!(o.code, 0);
        assert!(
            o.stdout
                .lines()
                .any(|l| l.starts_with("ovs-watcher-framework start/running, process ")),
            "{}",
            o.stdout
        );
        let pid0 = n.state().expect("state").jobs["ovs-arakoon-ovsdb"].pid;
        let o = run(&n, "status ovs-arakoon-ovsdb");
        assert_eq!(
            o.stdout,
            format!("ovs-arakoon-ovsdb start/running, process {pid0}\n")
        );
        let o = run(&n, "start ovs-arakoon-ovsdb");
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (1, "start: Job is already running: ovs-arakoon-ovsdb\n")
        );
        let o = run(&n, "stop ovs-arakoon-ovsdb");
        assert_eq!(
            (o.code, o.stdout.as_str()),
            (0, "ovs-arakoon-ovsdb stop/waiting\n")
        );
        let o = run(&n, "stop ovs-arakoon-ovsdb");
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (1, "stop: Unknown instance: \n")
        );
        let o = run(&n, "restart ovs-arakoon-ovsdb");
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (1, "restart: Unknown instance: \n")
        );
        let o = run(&n, "initctl start ovs-arakoon-ovsdb");
        assert_eq!(o.code, 0);
        let pid1 = n.state().expect("state").jobs["ovs-arakoon-ovsdb"].pid;
        assert_ne!(pid0, pid1);
        assert_eq!(
            o.stdout,
            format!("ovs-arakoon-ovsdb start/running, process {pid1}\n")
        );
        let o = run(&n, "restart ovs-arakoon-ovsdb");
        let pid2 = n.state().expect("state").jobs["ovs-arakoon-ovsdb"].pid;
        assert_ne!(pid1, pid2);
        assert_eq!(
            o.stdout,
            format!("ovs-arakoon-ovsdb start/running, process {pid2}\n")
        );
        let o = run(&n, "status foo");
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (1, "status: Unknown job: foo\n")
        );
        let o = run(&n, "systemctl is-active ovs-webapp-api");
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (127, "sh: 1: systemctl: not found\n")
        );
    }

    #[test]
    fn failing_service() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_0);
        n.update(|s| s.faults.failing_services = vec!["ovs-webapp-api".into()])
            .expect("update");
        run(&n, "stop ovs-webapp-api");
        let o = run(&n, "start ovs-webapp-api");
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (1, "start: Job failed to start\n")
        );
        assert_eq!(
            run(&n, "status ovs-webapp-api").stdout,
            "ovs-webapp-api stop/waiting\n"
        );
    }
}
