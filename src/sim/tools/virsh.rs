//! `virsh` for the VM side of an upgrade: list, domstate, shutdown, start, destroy.
//! A shutdown takes `shutdown_secs` of wall-clock time (the state is computed from the
//! clock when read, never from how often it is polled), and a stuck guest ignores it.

use std::fmt::Write as _;

use super::{Ctx, join};
use crate::sim::SimOutput;
use crate::sim::state::{DomState, DomainRun};

fn unknown(dom: &str) -> SimOutput {
    SimOutput::fail(
        1,
        format!(
            "error: failed to get domain '{dom}'\nerror: Domain not found: no domain with matching name '{dom}'\n"
        ),
    )
}

/// `virsh list [--all] [--name]`, `virsh domstate|shutdown|start|destroy DOM`.
pub fn run(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    match args.split_first() {
        Some((&"list", flags)) => {
            let mut all = false;
            let mut name = false;
            for f in flags {
                match *f {
                    "--all" => all = true,
                    "--name" => name = true,
                    _ => return SimOutput::not_simulated(&join(argv)),
                }
            }
            list(ctx, all, name)
        }
        Some((&"domstate", [dom])) => match ctx.state.domain_state(dom, ctx.now_ms) {
            Some(s) => SimOutput::ok(format!("{}\n\n", s.as_str())),
            None => unknown(dom),
        },
        Some((&"shutdown", [dom])) => shutdown(ctx, dom),
        Some((&"start", [dom])) => start(ctx, dom),
        Some((&"destroy", [dom])) => destroy(ctx, dom),
        _ => SimOutput::not_simulated(&join(argv)),
    }
}

fn list(ctx: &Ctx<'_>, all: bool, names_only: bool) -> SimOutput {
    let mut active: Vec<(u32, &str, DomState)> = Vec::new();
    let mut inactive: Vec<(&str, DomState)> = Vec::new();
    for (name, d) in &ctx.state.domains {
        let Some(s) = ctx.state.domain_state(name, ctx.now_ms) else {
            continue;
        };
        if s.is_active() {
            active.push((d.id.unwrap_or(0), name, s));
        } else if all {
            inactive.push((name, s));
        }
    }
    active.sort_by_key(|a| (a.0, a.1));
    let mut out = String::new();
    if names_only {
        for (_, n, _) in &active {
            let _ = writeln!(out, "{n}");
        }
        for (n, _) in &inactive {
            let _ = writeln!(out, "{n}");
        }
    } else {
        out.push_str(" Id    Name                           State\n");
        out.push_str("----------------------------------------------------\n");
        for (id, n, s) in &active {
            let _ = writeln!(out, " {:<5} {:<30} {}", id, n, s.as_str());
        }
        for (n, s) in &inactive {
            let _ = writeln!(out, " {:<5} {:<30} {}", "-", n, s.as_str());
        }
    }
    out.push('\n');
    SimOutput::ok(out)
}

fn shutdown(ctx: &mut Ctx<'_>, dom: &str) -> SimOutput {
    let now = ctx.now_ms;
    let Some(state) = ctx.state.domain_state(dom, now) else {
        return unknown(dom);
    };
    if !state.is_active() {
        return SimOutput::fail(
            1,
            format!(
                "error: Failed to shutdown domain {dom}\nerror: Requested operation is not valid: domain is not running\n"
            ),
        );
    }
    if let Some(d) = ctx.state.domains.get_mut(dom)
        && d.run == DomainRun::Running
        && d.shutdown_started_ms.is_none()
    {
        d.shutdown_started_ms = Some(now);
    }
    SimOutput::ok(format!("Domain {dom} is being shutdown\n\n"))
}

fn start(ctx: &mut Ctx<'_>, dom: &str) -> SimOutput {
    let Some(state) = ctx.state.domain_state(dom, ctx.now_ms) else {
        return unknown(dom);
    };
    if state.is_active() {
        return SimOutput::fail(
            1,
            format!(
                "error: Failed to start domain {dom}\nerror: Requested operation is not valid: domain is already active\n"
            ),
        );
    }
    let id = ctx.state.next_domain_id;
    ctx.state.next_domain_id += 1;
    if let Some(d) = ctx.state.domains.get_mut(dom) {
        d.run = DomainRun::Running;
        d.shutdown_started_ms = None;
        d.id = Some(id);
    }
    SimOutput::ok(format!("Domain {dom} started\n\n"))
}

fn destroy(ctx: &mut Ctx<'_>, dom: &str) -> SimOutput {
    let Some(state) = ctx.state.domain_state(dom, ctx.now_ms) else {
        return unknown(dom);
    };
    if !state.is_active() {
        return SimOutput::fail(
            1,
            format!(
                "error: Failed to destroy domain {dom}\nerror: Requested operation is not valid: domain is not running\n"
            ),
        );
    }
    if let Some(d) = ctx.state.domains.get_mut(dom) {
        d.run = DomainRun::ShutOff;
        d.shutdown_started_ms = None;
        d.id = None;
    }
    SimOutput::ok(format!("Domain {dom} destroyed\n\n"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::sim::state::{AptVariant, Init};
    use crate::sim::tools::testutil::{node, run};

    #[test]
    fn shutdown_follows_the_clock() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_0);
        let o = run(&n, "virsh list --name");
        assert_eq!(o.stdout, "vm-0 o'brien test\nvm-0-db\nvm-0-web\n\n");
        let o = run(&n, "virsh list --all --name");
        assert_eq!(
            o.stdout,
            "vm-0 o'brien test\nvm-0-db\nvm-0-web\nvm-0-old\n\n"
        );
        let o = run(&n, "virsh shutdown vm-0-web");
        assert_eq!(
            (o.code, o.stdout.as_str()),
            (0, "Domain vm-0-web is being shutdown\n\n")
        );
        assert_eq!(run(&n, "virsh domstate vm-0-web").stdout, "in shutdown\n\n");
        // Polling many times does not speed it up.
        for _ in 0..5 {
            assert_eq!(run(&n, "virsh domstate vm-0-web").stdout, "in shutdown\n\n");
        }
        assert!(run(&n, "virsh list --name").stdout.contains("vm-0-web\n"));
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(run(&n, "virsh domstate vm-0-web").stdout, "shut off\n\n");
        assert!(!run(&n, "virsh list --name").stdout.contains("vm-0-web\n"));
        let o = run(&n, "virsh shutdown vm-0-web");
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (
                1,
                "error: Failed to shutdown domain vm-0-web\nerror: Requested operation is not valid: domain is not running\n"
            )
        );
        assert_eq!(
            run(&n, "virsh start vm-0-web").stdout,
            "Domain vm-0-web started\n\n"
        );
        let o = run(&n, "virsh start vm-0-web");
        assert_eq!(o.code, 1);
        assert!(
            o.stderr
                .ends_with("error: Requested operation is not valid: domain is already active\n")
        );
        let o = run(&n, "virsh domstate nosuch");
        assert_eq!(o.code, 1);
        assert!(
            o.stderr
                .starts_with("error: failed to get domain 'nosuch'\n")
        );
        let o = run(&n, "virsh list");
        assert!(
            o.stdout
                .starts_with(" Id    Name                           State\n---"),
            "{}",
            o.stdout
        );
        assert!(
            o.stdout
                .contains("vm-0-web                       running\n")
        );
        // Quoted name with space and quote.
        let o = run(&n, "virsh shutdown 'vm-0 o'\\''brien test'");
        assert_eq!(o.code, 0, "{o:?}");
    }

    #[test]
    fn stuck_vm_never_stops_but_destroy_works() {
        let (_d, n) = node(Init::Upstart, AptVariant::V1_0);
        n.update(|s| {
            s.shutdown_secs = 0.0;
            s.faults.stuck_vms = vec!["vm-0-db".into()];
        })
        .expect("update");
        assert_eq!(run(&n, "virsh shutdown vm-0-db").code, 0);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(run(&n, "virsh domstate vm-0-db").stdout, "running\n\n");
        assert_eq!(
            run(&n, "virsh destroy vm-0-db").stdout,
            "Domain vm-0-db destroyed\n\n"
        );
        assert_eq!(run(&n, "virsh domstate vm-0-db").stdout, "shut off\n\n");
    }
}
