//! `systemctl` as systemd 229 answers it, for nodes of later Open vStorage releases whose
//! services are units with the upstart job names (`ovs-watcher-framework.service`).
//! Unlike upstart, start/stop are idempotent and silent; unknown units exit 5.

use std::fmt::Write as _;

use super::{Ctx, join};
use crate::sim::SimOutput;
use crate::sim::state::Job;

const VERSION: &str = "systemd 229\n+PAM +AUDIT +SELINUX +IMA +APPARMOR +SMACK +SYSVINIT +UTMP +LIBCRYPTSETUP +GCRYPT +GNUTLS +ACL +XZ -LZ4 +SECCOMP +BLKID +ELFUTILS +KMOD -IDN\n";

/// Maps a unit name to (job name, full unit name); `None` for non-service units.
fn unit(name: &str) -> Option<(String, String)> {
    match name.strip_suffix(".service") {
        Some(job) => Some((job.to_owned(), name.to_owned())),
        None if name.contains('.') => None,
        None => Some((name.to_owned(), format!("{name}.service"))),
    }
}

fn active_sub(job: &Job) -> (&'static str, &'static str) {
    if job.running {
        ("active", "running")
    } else if job.failed {
        ("failed", "failed")
    } else {
        ("inactive", "dead")
    }
}

/// A `systemctl` command line, split: flags, words (verb and units) and `-p` properties.
struct Args<'a> {
    flags: Vec<&'a str>,
    words: Vec<&'a str>,
    props: Vec<String>,
}

impl Args<'_> {
    /// Whether every flag given is one of `ok`.
    fn allowed(&self, ok: &[&str]) -> bool {
        self.flags.iter().all(|f| ok.contains(f))
    }
}

/// Splits the arguments; `None` for an option we do not simulate.
fn parse_args(argv: &[String]) -> Option<Args<'_>> {
    let mut args = Args {
        flags: Vec::new(),
        words: Vec::new(),
        props: Vec::new(),
    };
    let mut it = argv[1..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-p" | "--property" => args.props.extend(it.next()?.split(',').map(str::to_owned)),
            "-t" | "--type" => match it.next().map(String::as_str) {
                Some("service") => {}
                _ => return None,
            },
            o if o.starts_with("--property=") => args
                .props
                .extend(o["--property=".len()..].split(',').map(str::to_owned)),
            o if o.starts_with('-') => args.flags.push(o),
            w => args.words.push(w),
        }
    }
    Some(args)
}

/// `systemctl --version|list-units|is-active|show|start|stop|restart`.
pub fn run(ctx: &mut Ctx<'_>, argv: &[String]) -> SimOutput {
    let Some(args) = parse_args(argv) else {
        return SimOutput::not_simulated(&join(argv));
    };
    let answer = match args.words.split_first() {
        None if args.flags == ["--version"] => Some(SimOutput::ok(VERSION)),
        Some((&"list-units", patterns))
            if args.flags.contains(&"--no-legend")
                && args.allowed(&[
                    "--type=service",
                    "--all",
                    "-a",
                    "--no-legend",
                    "--plain",
                    "--no-pager",
                    "--full",
                    "-l",
                ]) =>
        {
            Some(list_units(ctx, patterns))
        }
        Some((&"is-active", units)) if !units.is_empty() && args.allowed(&["-q", "--quiet"]) => {
            Some(is_active(ctx, units, !args.flags.is_empty()))
        }
        Some((&"show", [u])) if !args.props.is_empty() && args.allowed(&["--value"]) => {
            show(ctx, u, &args.props, !args.flags.is_empty())
        }
        Some((&verb @ ("start" | "stop" | "restart"), units))
            if !units.is_empty() && args.allowed(&["--no-block"]) =>
        {
            Some(control(ctx, verb, units))
        }
        _ => None,
    };
    answer.unwrap_or_else(|| SimOutput::not_simulated(&join(argv)))
}

/// `systemctl is-active [-q] UNIT…`: exit 0 when one is active, 3 otherwise.
fn is_active(ctx: &Ctx<'_>, units: &[&str], quiet: bool) -> SimOutput {
    let mut out = SimOutput::fail(3, "");
    for u in units {
        let state = unit(u)
            .and_then(|(job, _)| ctx.state.jobs.get(&job))
            .map_or("inactive", |j| active_sub(j).0);
        if state == "active" {
            out.code = 0;
        }
        if !quiet {
            let _ = writeln!(out.stdout, "{state}");
        }
    }
    out
}

/// `systemctl show -p PROP[,PROP…] [--value] UNIT`; `None` for a property not simulated.
fn show(ctx: &Ctx<'_>, u: &str, props: &[String], value_only: bool) -> Option<SimOutput> {
    let job = unit(u).and_then(|(job, _)| ctx.state.jobs.get(&job));
    let mut out = String::new();
    for p in props {
        let v = match (p.as_str(), job) {
            ("MainPID", Some(j)) => j.pid.to_string(),
            ("MainPID", None) => "0".to_owned(),
            ("ActiveState", Some(j)) => active_sub(j).0.to_owned(),
            ("SubState", Some(j)) => active_sub(j).1.to_owned(),
            ("ActiveState", None) => "inactive".to_owned(),
            ("SubState", None) => "dead".to_owned(),
            ("LoadState", Some(_)) => "loaded".to_owned(),
            ("LoadState", None) => "not-found".to_owned(),
            _ => return None,
        };
        if value_only {
            let _ = writeln!(out, "{v}");
        } else {
            let _ = writeln!(out, "{p}={v}");
        }
    }
    Some(SimOutput::ok(out))
}

fn list_units(ctx: &Ctx<'_>, patterns: &[&str]) -> SimOutput {
    let matches = |name: &str| {
        patterns.is_empty()
            || patterns.iter().any(|p| {
                let p = if p.contains(['*', '?', '[']) || p.contains('.') {
                    (*p).to_owned()
                } else {
                    format!("{p}.service")
                };
                glob::Pattern::new(&p).map_or(p == name, |g| g.matches(name))
            })
    };
    let rows: Vec<[String; 5]> = ctx
        .state
        .jobs
        .iter()
        .map(|(name, job)| (format!("{name}.service"), job))
        .filter(|(u, _)| matches(u))
        .map(|(u, job)| {
            let (a, s) = active_sub(job);
            [
                u,
                "loaded".into(),
                a.into(),
                s.into(),
                job.description.clone(),
            ]
        })
        .collect();
    let mut w = [0usize; 4];
    for r in &rows {
        for i in 0..4 {
            w[i] = w[i].max(r[i].len());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let _ = writeln!(
            out,
            "{:<w0$} {:<w1$} {:<w2$} {:<w3$} {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        );
    }
    SimOutput::ok(out)
}

fn control(ctx: &mut Ctx<'_>, verb: &str, units: &[&str]) -> SimOutput {
    let mut out = SimOutput::ok("");
    for u in units {
        let Some((job, unit_name)) = unit(u) else {
            let _ = writeln!(out.stderr, "Failed to {verb} {u}: Unit {u} not found.");
            out.code = 5;
            continue;
        };
        if !ctx.state.jobs.contains_key(&job) {
            let why = if verb == "stop" {
                "not loaded"
            } else {
                "not found"
            };
            let _ = writeln!(
                out.stderr,
                "Failed to {verb} {unit_name}: Unit {unit_name} {why}."
            );
            out.code = 5;
            continue;
        }
        let running = ctx.state.jobs.get(&job).is_some_and(|j| j.running);
        match verb {
            "stop" => {
                ctx.state.stop_job(&job);
            }
            "start" if running => {}
            _ => {
                if ctx.state.start_job(&job, ctx.now_ms).is_err() {
                    let _ = writeln!(
                        out.stderr,
                        "Job for {unit_name} failed because the control process exited with error code. See \"systemctl status {unit_name}\" and \"journalctl -xe\" for details."
                    );
                    out.code = 1;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::sim::state::{AptVariant, Init};
    use crate::sim::tools::testutil::{node, run};

    #[test]
    fn units() {
        let (_d, n) = node(Init::Systemd, AptVariant::V1_2);
        let o = run(
            &n,
            "systemctl list-units --type=service --all --no-legend --plain 'ovs-watcher-*'",
        );
        assert_eq!(
            o.stdout,
            "ovs-watcher-framework.service loaded active running Watcher for Open vStorage framework\n"
        );
        let o = run(
            &n,
            "systemctl list-units --type=service --all --no-legend --plain 'ovs-*'",
        );
        assert_eq!(o.stdout.lines().count(), 10, "{}", o.stdout);
        let pid = n.state().expect("state").jobs["ovs-webapp-api"].pid;
        let o = run(&n, "systemctl show -p MainPID ovs-webapp-api.service");
        assert_eq!(o.stdout, format!("MainPID={pid}\n"));
        assert_eq!(
            run(&n, "systemctl is-active ovs-webapp-api").stdout,
            "active\n"
        );
        let o = run(&n, "systemctl stop ovs-webapp-api");
        assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (0, "", ""));
        assert_eq!(run(&n, "systemctl stop ovs-webapp-api").code, 0);
        let o = run(&n, "systemctl is-active ovs-webapp-api");
        assert_eq!((o.code, o.stdout.as_str()), (3, "inactive\n"));
        assert_eq!(
            run(&n, "systemctl show -p MainPID ovs-webapp-api").stdout,
            "MainPID=0\n"
        );
        assert!(
            run(
                &n,
                "systemctl list-units --type=service --all --no-legend --plain 'ovs-webapp*'"
            )
            .stdout
            .contains(" loaded inactive dead ")
        );
        assert_eq!(run(&n, "systemctl start ovs-webapp-api").code, 0);
        assert_eq!(run(&n, "systemctl start ovs-webapp-api").code, 0);
        let o = run(&n, "systemctl restart ovs-webapp-api");
        assert_eq!(o.code, 0);
        assert_ne!(n.state().expect("state").jobs["ovs-webapp-api"].pid, pid);
        let o = run(&n, "systemctl start foo");
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (
                5,
                "Failed to start foo.service: Unit foo.service not found.\n"
            )
        );
        let o = run(&n, "initctl list");
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (127, "sh: 1: initctl: not found\n")
        );
        assert_eq!(run(&n, "test -d /run/systemd/system").code, 0);
        assert!(
            run(&n, "systemctl --version")
                .stdout
                .starts_with("systemd 229\n")
        );
    }

    #[test]
    fn failing_unit() {
        let (_d, n) = node(Init::Systemd, AptVariant::V1_2);
        n.update(|s| s.faults.failing_services = vec!["ovs-webapp-api".into()])
            .expect("update");
        let o = run(&n, "systemctl restart ovs-webapp-api");
        assert_eq!(o.code, 1);
        let o = run(&n, "systemctl is-active ovs-webapp-api");
        assert_eq!((o.code, o.stdout.as_str()), (3, "failed\n"));
    }
}
