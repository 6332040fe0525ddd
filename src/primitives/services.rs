//! The services primitives: list, start, stop and restart upstart jobs or systemd services by
//! their job name (`ovs-watcher-framework`, also `ovs-watcher-framework.service` on systemd),
//! and SysV init scripts (`/etc/init.d/memcached`).
//!
//! The init system is detected once per node and run (`/run/systemd/system` → systemd, else
//! `initctl version` → upstart). Every action is query-then-act: the job's status is read
//! (runs in a dry run too), the action runs only when it changes something (starting a running
//! job, stopping a stopped one, is not an error and changes nothing), and the result is
//! verified. Each primitive returns the jobs it actually changed.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::host::{Effect, Host, OnFailure, PerNode};
use crate::inventory::Node;
use crate::primitives::parse;
use crate::quote;
use crate::wait::{Probe, Waited};

/// The fact key under which a node's init system is cached for the run.
const INIT_FACT: &str = "init";

/// How long a started (stopped) job may take to show as running (stopped).
const SETTLE: Duration = Duration::from_secs(5);
const SETTLE_STEP: Duration = Duration::from_millis(250);

/// A node's init system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Upstart: `initctl`, `start`, `stop`, `status`, `restart`.
    Upstart,
    /// systemd: `systemctl`.
    Systemd,
}

impl Init {
    /// `upstart` or `systemd`.
    pub fn as_str(self) -> &'static str {
        match self {
            Init::Upstart => "upstart",
            Init::Systemd => "systemd",
        }
    }
}

/// What a job action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start it unless it runs.
    Start,
    /// Stop it if it runs.
    Stop,
    /// Restart it if it runs, start it if not.
    Restart,
}

impl Action {
    /// `start`, `stop` or `restart`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
        }
    }
}

/// A job's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Whether it runs.
    pub running: bool,
    /// Its main pid, when it runs.
    pub pid: Option<u32>,
}

/// The node's init system, detected once per node and run: `/run/systemd/system` exists →
/// systemd, else `initctl version` saying `init (upstart …)` → upstart. Neither is an error
/// naming the node. Read-only.
pub async fn init_system(host: &Host, node: &Node) -> Result<Init> {
    match host.fact(node, INIT_FACT).as_deref() {
        Some("systemd") => return Ok(Init::Systemd),
        Some("upstart") => return Ok(Init::Upstart),
        _ => {}
    }
    // One round trip, exit 0 on either kind of node: constant shell text, nothing interpolated.
    let line = "test -d /run/systemd/system && echo systemd || initctl version";
    let out = host.exec(node, line, Effect::Read, None).await?;
    let init = if out.code == 0 && out.stdout == "systemd\n" {
        Init::Systemd
    } else if out.code == 0 && parse::upstart::is_upstart_version(&out.stdout) {
        Init::Upstart
    } else {
        let said = out
            .stdout
            .lines()
            .chain(out.stderr.lines())
            .next()
            .unwrap_or("")
            .to_string();
        return Err(Error::Unexpected {
            node: node.name.clone(),
            command: line.to_string(),
            line: said,
            message: "neither systemd (no /run/systemd/system) nor upstart (initctl version)"
                .into(),
        });
    };
    host.set_fact(node, INIT_FACT, init.as_str().to_string());
    Ok(init)
}

/// [`init_system`] of every node, in parallel; every node is read even when one fails.
pub async fn init_systems(host: &Host, nodes: &[Node]) -> PerNode<Init> {
    host.fan_out(
        "init system",
        nodes,
        OnFailure::Continue,
        |node| async move { init_system(host, &node).await },
    )
    .await
}

/// A job name as given, without a `.service` suffix; names that would reach the init tool as
/// options or paths are refused.
fn job_name(name: &str) -> Result<&str> {
    let job = name.strip_suffix(".service").unwrap_or(name);
    if job.is_empty()
        || job.starts_with('-')
        || job.contains('/')
        || job.contains(char::is_whitespace)
    {
        return Err(Error::argument(format!("not a service name: {name:?}")));
    }
    Ok(job)
}

/// The job names on one node starting with `prefix`, sorted: `initctl list` (upstart) or
/// `systemctl list-units --type=service --all --no-legend --plain 'PREFIX*'` (systemd; units
/// systemd cannot find are left out). Read-only.
pub async fn list_on(host: &Host, node: &Node, prefix: &str) -> Result<Vec<String>> {
    let mut names: Vec<String> = match init_system(host, node).await? {
        Init::Upstart => {
            let line = "initctl list";
            let out = host.exec_ok(node, line, Effect::Read, None).await?;
            parse::upstart::list(&out.stdout, &node.name, line)?
                .into_iter()
                .map(|j| j.name)
                .collect()
        }
        Init::Systemd => systemd_units(host, node, &format!("{prefix}*"))
            .await?
            .into_iter()
            .map(|u| u.name)
            .collect(),
    };
    names.retain(|n| n.starts_with(prefix));
    names.sort();
    names.dedup();
    Ok(names)
}

/// The service units on one node matching the glob `pattern`, as `systemctl list-units
/// --type=service --all --no-legend --plain PATTERN` lists them, less the units systemd cannot
/// find (`not-found`: a unit named by a dependency and never installed). Read-only.
pub async fn systemd_units(
    host: &Host,
    node: &Node,
    pattern: &str,
) -> Result<Vec<parse::systemd::Unit>> {
    let line = quote::join(&[
        "systemctl",
        "list-units",
        "--type=service",
        "--all",
        "--no-legend",
        "--plain",
        pattern,
    ])?;
    let out = host.exec_ok(node, &line, Effect::Read, None).await?;
    let mut units = parse::systemd::list_units(&out.stdout, &node.name, &line)?;
    units.retain(|u| u.load != "not-found");
    Ok(units)
}

/// [`list_on`] on every node, in parallel.
pub async fn list(host: &Host, nodes: &[Node], prefix: &str) -> PerNode<Vec<String>> {
    host.fan_out("services", nodes, OnFailure::Continue, |node| async move {
        list_on(host, &node, prefix).await
    })
    .await
}

/// A job's status on one node (`status JOB` / `systemctl show -p LoadState -p ActiveState -p
/// MainPID JOB.service`), or `None` when the node has no such job. Read-only.
pub async fn status_on(host: &Host, node: &Node, name: &str) -> Result<Option<Status>> {
    let job = job_name(name)?;
    match init_system(host, node).await? {
        Init::Upstart => {
            let line = quote::join(&["status", job])?;
            let out = host.exec(node, &line, Effect::Read, None).await?;
            if out.code == 1 && out.stderr.contains("Unknown job:") {
                return Ok(None);
            }
            if out.code != 0 {
                return Err(crate::host::failed(&node.name, &line, &out));
            }
            let jobs = parse::upstart::list(&out.stdout, &node.name, &line)?;
            let found: Vec<_> = jobs.iter().filter(|j| j.name == job).collect();
            if found.is_empty() {
                return Err(Error::Unexpected {
                    node: node.name.clone(),
                    command: line,
                    line: out.stdout.lines().next().unwrap_or("").to_string(),
                    message: format!("expected the status of {job}"),
                });
            }
            let running = found.iter().any(|j| j.running());
            Ok(Some(Status {
                running,
                pid: found.iter().find(|j| j.running()).and_then(|j| j.pid),
            }))
        }
        Init::Systemd => {
            let unit = format!("{job}.service");
            let line = quote::join(&[
                "systemctl",
                "show",
                "-p",
                "LoadState",
                "-p",
                "ActiveState",
                "-p",
                "MainPID",
                &unit,
            ])?;
            let out = host.exec_ok(node, &line, Effect::Read, None).await?;
            let props = parse::systemd::show(&out.stdout, &node.name, &line)?;
            let get = |k: &str| {
                props.get(k).cloned().ok_or_else(|| Error::Unexpected {
                    node: node.name.clone(),
                    command: line.clone(),
                    line: out.stdout.lines().next().unwrap_or("").to_string(),
                    message: format!("no {k}= in the output"),
                })
            };
            if get("LoadState")? == "not-found" {
                return Ok(None);
            }
            let pid_text = get("MainPID")?;
            let pid = pid_text.parse::<u32>().map_err(|_| Error::Unexpected {
                node: node.name.clone(),
                command: line.clone(),
                line: format!("MainPID={pid_text}"),
                message: "MainPID is not a number".into(),
            })?;
            let running = get("ActiveState")? == "active";
            Ok(Some(Status {
                running,
                pid: (running && pid != 0).then_some(pid),
            }))
        }
    }
}

/// The main pid of a job on one node, or `None` when it does not run. A job the node does not
/// have is an error naming node and job. Read-only.
pub async fn pid_on(host: &Host, node: &Node, name: &str) -> Result<Option<u32>> {
    match status_on(host, node, name).await? {
        Some(s) => Ok(s.pid),
        None => Err(unknown_job(node, name)),
    }
}

fn unknown_job(node: &Node, name: &str) -> Error {
    Error::node_state(&node.name, format!("no service named {name:?}"))
}

/// [`pid_on`] on every node, in parallel.
pub async fn pid(host: &Host, nodes: &[Node], name: &str) -> PerNode<Option<u32>> {
    host.fan_out(
        "service pid",
        nodes,
        OnFailure::Continue,
        |node| async move { pid_on(host, &node, name).await },
    )
    .await
}

/// The jobs `names` designates on one node, in order and without repeats: a plain name is
/// itself (checked later: a missing job is an error), an entry with `*`, `?` or `[` is a glob
/// matched against [`list_on`] (matching nothing is fine).
pub async fn resolve_on(host: &Host, node: &Node, names: &[String]) -> Result<Vec<String>> {
    let mut jobs: Vec<String> = Vec::new();
    for entry in names {
        if entry.contains(['*', '?', '[']) {
            let pattern = glob::Pattern::new(entry.strip_suffix(".service").unwrap_or(entry))
                .map_err(|e| Error::argument(format!("bad service pattern {entry:?}: {e}")))?;
            let literal: String = entry
                .chars()
                .take_while(|c| !matches!(c, '*' | '?' | '['))
                .collect();
            let mut matched = false;
            for job in list_on(host, node, &literal).await? {
                if pattern.matches(&job) {
                    matched = true;
                    if !jobs.contains(&job) {
                        jobs.push(job);
                    }
                }
            }
            if !matched {
                // Nodes are not alike: a node without ALBA proxies serves no vpool.
                host.report(crate::report::Event::Log {
                    level: crate::report::Level::Debug,
                    message: format!(
                        "{}: no job matches {entry:?} here: nothing to do",
                        node.name
                    ),
                });
            }
        } else {
            let job = job_name(entry)?.to_string();
            if !jobs.contains(&job) {
                jobs.push(job);
            }
        }
    }
    Ok(jobs)
}

fn action_line(init: Init, action: Action, job: &str) -> Result<String> {
    match init {
        Init::Upstart => quote::join(&[action.as_str(), job]),
        Init::Systemd => quote::join(&["systemctl", action.as_str(), &format!("{job}.service")]),
    }
}

/// Poll the job's status until `done` holds or [`SETTLE`] passes; return the last status.
async fn settle(
    host: &Host,
    node: &Node,
    job: &str,
    done: impl Fn(&Status) -> bool,
) -> Result<Status> {
    let waited = host
        .poll_until(SETTLE, SETTLE_STEP, async || {
            let s = status_on(host, node, job)
                .await?
                .ok_or_else(|| unknown_job(node, job))?;
            Ok(if done(&s) {
                Probe::Done(s)
            } else {
                Probe::NotYet(s)
            })
        })
        .await?;
    Ok(match waited {
        Waited::Done(s) | Waited::Expired(s) => s,
    })
}

/// Apply `action` to one job on one node; true when it changed something.
async fn act_on_job(
    host: &Host,
    node: &Node,
    init: Init,
    action: Action,
    job: &str,
) -> Result<bool> {
    let Some(before) = status_on(host, node, job).await? else {
        return Err(unknown_job(node, job));
    };
    let verb = match (action, before.running) {
        (Action::Start, true) | (Action::Stop, false) => return Ok(false),
        (Action::Restart, false) => Action::Start,
        (a, _) => a,
    };
    let line = action_line(init, verb, job)?;
    let out = host.exec(node, &line, Effect::Change, None).await?;
    if out.code != 0 {
        // Upstart is not idempotent: a job that changed state since the query is fine.
        let raced = init == Init::Upstart
            && ((verb == Action::Start && out.stderr.contains("Job is already running"))
                || (verb == Action::Stop && out.stderr.contains("Unknown instance")));
        if raced {
            return Ok(false);
        }
        return Err(crate::host::failed(&node.name, &line, &out));
    }
    if host.dry_run {
        return Ok(true);
    }
    match verb {
        Action::Stop => {
            let s = settle(host, node, job, |s| !s.running).await?;
            if s.running {
                return Err(Error::node_state(
                    &node.name,
                    format!(
                        "`{line}` succeeded but {job} still runs (pid {})",
                        s.pid.map_or("?".into(), |p| p.to_string())
                    ),
                ));
            }
        }
        Action::Start | Action::Restart => {
            let fresh = |s: &Status| {
                s.running && s.pid.is_some() && (verb == Action::Start || s.pid != before.pid)
            };
            let s = settle(host, node, job, fresh).await?;
            if !(s.running && s.pid.is_some()) {
                return Err(Error::node_state(
                    &node.name,
                    format!("`{line}` succeeded but {job} is not running"),
                ));
            }
        }
    }
    Ok(true)
}

/// Apply `action` to the jobs `names` designates on one node (see [`resolve_on`]), one job
/// after the other in the given order; return the jobs actually changed.
pub async fn control_on(
    host: &Host,
    node: &Node,
    action: Action,
    names: &[String],
) -> Result<Vec<String>> {
    let init = init_system(host, node).await?;
    let mut changed = Vec::new();
    for job in resolve_on(host, node, names).await? {
        if act_on_job(host, node, init, action, &job).await? {
            changed.push(job);
        }
    }
    Ok(changed)
}

/// [`control_on`] on every node, in parallel; a failure stops nodes not yet started.
pub async fn control(
    host: &Host,
    nodes: &[Node],
    action: Action,
    names: &[String],
) -> PerNode<Vec<String>> {
    let label = format!("service {} {}", action.as_str(), names.join(" "));
    host.fan_out(&label, nodes, OnFailure::Stop, |node| async move {
        control_on(host, &node, action, names).await
    })
    .await
}

/// Run a SysV init script, `/etc/init.d/NAME ACTION`, on one node. Idempotent where the script
/// tells its status: `/etc/init.d/NAME status` is read first (exit 0 running, 3 stopped; other
/// answers mean unknown and the action runs); `start` of a running and `stop` of a stopped
/// service do nothing. `restart` always runs. Returns whether it ran the action.
pub async fn sysv_on(host: &Host, node: &Node, name: &str, action: Action) -> Result<bool> {
    if name.is_empty() || name.starts_with(['-', '.']) || name.contains(['/', '\0']) {
        return Err(Error::argument(format!(
            "not an init script name: {name:?}"
        )));
    }
    let script = format!("/etc/init.d/{name}");
    if action != Action::Restart {
        let line = quote::join(&[script.as_str(), "status"])?;
        let out = host.exec(node, &line, Effect::Read, None).await?;
        let running = match out.code {
            0 => Some(true),
            3 => Some(false),
            _ => None,
        };
        if running == Some(action == Action::Start) {
            return Ok(false);
        }
    }
    let line = quote::join(&[script.as_str(), action.as_str()])?;
    host.exec_ok(node, &line, Effect::Change, None).await?;
    Ok(true)
}

/// [`sysv_on`] on every node, in parallel; a failure stops nodes not yet started.
pub async fn sysv(host: &Host, nodes: &[Node], name: &str, action: Action) -> PerNode<bool> {
    let label = format!("/etc/init.d/{name} {}", action.as_str());
    host.fan_out(&label, nodes, OnFailure::Stop, |node| async move {
        sysv_on(host, &node, name, action).await
    })
    .await
}
