//! The apt primitives: refresh the package lists, read installed and candidate versions,
//! install and download packages. Installing is query-then-act: only the packages whose
//! installed version differs from the candidate are handed to `apt-get`, so a second run
//! changes nothing, and a dry run reports exactly what a real run would install.
//!
//! Every name reaches the node quoted (`quote::join`); a name beginning with `-` is refused
//! (apt would read it as an option).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::host::{Effect, Host, OnFailure, PerNode};
use crate::inventory::Node;
use crate::primitives::parse;
use crate::primitives::parse::apt::Policy;
use crate::quote;
use crate::report::{Event, Level};

/// The fact key under which a node's apt version (`1.0`, `1.2`) is cached for the run.
const APT_VERSION_FACT: &str = "apt_version";

/// Whether a package argument is a glob (`openvstorage*`) rather than a name.
pub fn is_glob(name: &str) -> bool {
    name.contains(['*', '?', '['])
}

/// Refuse names apt would take for options, and empty names.
fn check_names(names: &[String]) -> Result<()> {
    for n in names {
        if n.is_empty() || n.starts_with('-') || n.contains(char::is_whitespace) {
            return Err(Error::argument(format!("not a package name: {n:?}")));
        }
    }
    Ok(())
}

/// `apt-get update` on every node, in parallel. A held lock (or any non-zero exit) is an error
/// naming the node with apt's stderr. A node whose sources did not all refresh (older apt's
/// `W: Failed to fetch …` with exit 0) fails naming the lines — its lists are not up to date —
/// unless `allow_failed_sources`, which reports them as warnings. Other `W:` lines are
/// warnings. Returns per node the `W:`/`E:` lines. In a dry run the command is only reported,
/// and nothing is returned for the node.
pub async fn update(
    host: &Host,
    nodes: &[Node],
    allow_failed_sources: bool,
) -> PerNode<Vec<String>> {
    host.fan_out(
        "apt-get update",
        nodes,
        OnFailure::Stop,
        |node| async move {
            let out = apt_ok(host, &node, "apt-get update").await?;
            let warnings = parse::apt::update_warnings(&out.stdout, &out.stderr);
            let failed: Vec<&String> = warnings
                .iter()
                .filter(|w| parse::apt::is_refresh_failure(w))
                .collect();
            if !failed.is_empty() && !allow_failed_sources {
                return Err(Error::node_state(
                    &node.name,
                    format!(
                        "`apt-get update` did not refresh every source (apt exited 0):\n    {}\n  \
                         its package lists are stale; fix the sources, or accept them with \
                         `ovsup update --allow-failed-sources`",
                        failed
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join("\n    ")
                    ),
                ));
            }
            for w in &warnings {
                host.report(Event::Log {
                    level: Level::Warn,
                    message: format!("{}: apt-get update: {w}", node.name),
                });
            }
            Ok(warnings)
        },
    )
    .await
}

/// Run an apt or dpkg command that changes the node, waiting for the locks it needs (see
/// [`crate::primitives::apt_lock`]); a non-zero exit is an error naming the node, the command,
/// the exit code and stderr.
async fn apt_ok(host: &Host, node: &Node, line: &str) -> Result<crate::transport::Output> {
    let out = crate::primitives::apt_lock::run(host, node, line, Effect::Change).await?;
    if out.code == 0 {
        Ok(out)
    } else {
        Err(crate::host::failed(&node.name, line, &out))
    }
}

/// What dpkg knows of `pkgs` (names and globs) on one node: every package matching them
/// (`dpkg-query -W`; a pattern matching nothing is not an error). Read-only.
async fn dpkg_known(
    host: &Host,
    node: &Node,
    pkgs: &[String],
) -> Result<BTreeMap<String, parse::dpkg::DpkgPackage>> {
    let mut argv = vec![
        "dpkg-query".to_string(),
        "-W".to_string(),
        format!("--showformat={}", parse::dpkg::FORMAT),
    ];
    argv.extend(pkgs.iter().cloned());
    let line = quote::join(&argv)?;
    let out = host.exec(node, &line, Effect::Read, None).await?;
    if out.code != 0 && !(out.code == 1 && parse::dpkg::only_no_match(&out.stderr)) {
        return Err(crate::host::failed(&node.name, &line, &out));
    }
    Ok(parse::dpkg::query(&out.stdout, &node.name, &line)?
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect())
}

/// What one node has, and could have, of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    /// The installed version (`None` when not installed).
    pub installed: Option<String>,
    /// The version `apt-get install` would bring (`None` when apt knows none).
    pub candidate: Option<String>,
    /// What dpkg says of it: installed, or left half-done (unpacked, half-configured…).
    pub state: parse::dpkg::State,
}

impl Versions {
    /// Whether the package needs work: a candidate other than the installed version, or a
    /// package dpkg left half-done whatever its version.
    pub fn pending(&self) -> bool {
        self.state.is_broken()
            || self
                .candidate
                .as_ref()
                .is_some_and(|c| self.installed.as_ref() != Some(c))
    }
}

/// Installed and candidate versions, and dpkg's state, of `pkgs` (names and globs) on one
/// node: one `dpkg-query -W` (which also expands the globs against the packages dpkg has), then
/// one `apt-cache policy`. Read-only: runs in a dry run too. A package apt does not know has
/// no installed and no candidate version.
pub async fn versions_on(
    host: &Host,
    node: &Node,
    pkgs: &[String],
) -> Result<BTreeMap<String, Versions>> {
    check_names(pkgs)?;
    let known = dpkg_known(host, node, pkgs).await?;
    let mut names: BTreeSet<String> = pkgs.iter().filter(|p| !is_glob(p)).cloned().collect();
    names.extend(
        known
            .values()
            .filter(|p| p.present())
            .map(|p| p.name.clone()),
    );
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut argv = vec!["apt-cache".to_string(), "policy".to_string()];
    argv.extend(names.iter().cloned());
    let line = quote::join(&argv)?;
    let out = host.exec_ok(node, &line, Effect::Read, None).await?;
    let policy = parse::apt::policy(&out.stdout, &node.name, &line)?;
    Ok(names
        .into_iter()
        .map(|n| {
            let p: Policy = policy.get(&n).cloned().unwrap_or_default();
            let state = known.get(&n).map_or(
                parse::dpkg::State::NotInstalled,
                parse::dpkg::DpkgPackage::state,
            );
            let v = Versions {
                installed: p.installed,
                candidate: p.candidate,
                state,
            };
            (n, v)
        })
        .collect())
}

/// [`versions_on`] on every node, in parallel; every node runs even if one fails.
pub async fn versions(
    host: &Host,
    nodes: &[Node],
    pkgs: &[String],
) -> PerNode<BTreeMap<String, Versions>> {
    host.fan_out(
        "apt versions",
        nodes,
        OnFailure::Continue,
        |node| async move { versions_on(host, &node, pkgs).await },
    )
    .await
}

/// The node's apt version as (major, minor), from `apt-get --version`, detected once per node
/// and run.
pub async fn apt_version(host: &Host, node: &Node) -> Result<(u32, u32)> {
    if let Some(v) = host.fact(node, APT_VERSION_FACT)
        && let Some((a, b)) = v.split_once('.')
        && let (Ok(a), Ok(b)) = (a.parse(), b.parse())
    {
        return Ok((a, b));
    }
    let line = "apt-get --version";
    let out = host.exec_ok(node, line, Effect::Read, None).await?;
    let v = parse::apt::version(&out.stdout, &node.name, line)?;
    host.set_fact(node, APT_VERSION_FACT, format!("{}.{}", v.0, v.1));
    Ok(v)
}

/// What an install or download did on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    /// Whether `apt-get` was run (in a dry run: would have been).
    pub changed: bool,
    /// The packages handed to apt, with the version they were brought to.
    pub packages: BTreeMap<String, String>,
}

/// Whether only downloading (`--download-only`) or installing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Install,
    Download,
}

/// The `apt-get install` line: non-interactive, keeping changed config files, and
/// `--force-yes` where apt is older than 1.1 (newer apt warns that it is deprecated).
async fn install_line(
    host: &Host,
    node: &Node,
    mode: Mode,
    pkgs: &BTreeMap<String, String>,
) -> Result<String> {
    let (major, minor) = apt_version(host, node).await?;
    let mut argv: Vec<String> = ["apt-get", "install", "-y"]
        .into_iter()
        .map(str::to_string)
        .collect();
    if (major, minor) < (1, 1) {
        argv.push("--force-yes".into());
    }
    match mode {
        Mode::Download => argv.push("--download-only".into()),
        Mode::Install => argv.extend(
            [
                "-o",
                "Dpkg::Options::=--force-confdef",
                "-o",
                "Dpkg::Options::=--force-confold",
            ]
            .map(str::to_string),
        ),
    }
    argv.extend(pkgs.keys().cloned());
    Ok(format!(
        "DEBIAN_FRONTEND=noninteractive {}",
        quote::join(&argv)?
    ))
}

/// What an install must do on one node.
#[derive(Debug, Default)]
struct Todo {
    /// Packages to bring to their candidate version, with that version.
    upgrade: BTreeMap<String, String>,
    /// Packages dpkg left half-done, with their version: configured first.
    configure: BTreeMap<String, String>,
}

/// Query then act on one node: the packages to bring to their candidate version, and those to
/// configure. A plain name apt does not know is an error; a glob match apt has no candidate
/// for is skipped.
async fn pending(host: &Host, node: &Node, pkgs: &[String]) -> Result<Todo> {
    let mut todo = Todo::default();
    for (name, v) in versions_on(host, node, pkgs).await? {
        if v.candidate.is_none() && !v.state.is_broken() && pkgs.contains(&name) {
            return Err(Error::node_state(
                &node.name,
                format!("apt knows no package {name:?} (no candidate version; run apt_update?)"),
            ));
        }
        if v.state.is_broken() {
            todo.configure
                .insert(name.clone(), v.installed.clone().unwrap_or_default());
        }
        if let Some(c) = v.candidate.filter(|c| v.installed.as_ref() != Some(c)) {
            todo.upgrade.insert(name, c);
        }
    }
    Ok(todo)
}

/// `dpkg --configure -a`, then check that the packages dpkg had left half-done are installed
/// now: a package that does not configure fails its node, before anything is restarted.
async fn configure(host: &Host, node: &Node, broken: &BTreeMap<String, String>) -> Result<()> {
    let line = "dpkg --configure -a";
    let names: Vec<&str> = broken.keys().map(String::as_str).collect();
    host.report(Event::Log {
        level: Level::Warn,
        message: format!(
            "{}: dpkg left {} half-done; configuring it first (`{line}`)",
            node.name,
            names.join(", ")
        ),
    });
    apt_ok(host, node, line).await?;
    if host.dry_run {
        return Ok(());
    }
    let names: Vec<String> = broken.keys().cloned().collect();
    for (name, v) in versions_on(host, node, &names).await? {
        if v.state.is_broken() {
            return Err(Error::node_state(
                &node.name,
                format!("{name} is still {} after `{line}`", v.state.as_str()),
            ));
        }
    }
    Ok(())
}

/// After an install: every package at the version apt promised, and configured.
async fn verify(
    host: &Host,
    node: &Node,
    line: &str,
    want: &BTreeMap<String, String>,
) -> Result<()> {
    let names: Vec<String> = want.keys().cloned().collect();
    let now = versions_on(host, node, &names).await?;
    for (name, want) in want {
        let got = now.get(name);
        let version = got.and_then(|v| v.installed.as_deref());
        if version != Some(want.as_str()) {
            return Err(Error::node_state(
                &node.name,
                format!(
                    "after `{line}`, {name} is at {} instead of {want}",
                    version.unwrap_or("(none)")
                ),
            ));
        }
        if let Some(v) = got.filter(|v| v.state.is_broken()) {
            return Err(Error::node_state(
                &node.name,
                format!("after `{line}`, {name} {want} is {}", v.state.as_str()),
            ));
        }
    }
    Ok(())
}

async fn install_on(host: &Host, node: &Node, pkgs: &[String], mode: Mode) -> Result<Installed> {
    let todo = pending(host, node, pkgs).await?;
    let mut done = Installed::default();
    if mode == Mode::Install && !todo.configure.is_empty() {
        configure(host, node, &todo.configure).await?;
        done.changed = true;
        done.packages.extend(todo.configure.clone());
    }
    if todo.upgrade.is_empty() {
        return Ok(done);
    }
    let line = install_line(host, node, mode, &todo.upgrade).await?;
    apt_ok(host, node, &line).await?;
    if mode == Mode::Install && !host.dry_run {
        verify(host, node, &line, &todo.upgrade).await?;
    }
    done.changed = true;
    done.packages.extend(todo.upgrade);
    Ok(done)
}

/// Install or upgrade `pkgs` (names and globs) on every node, in parallel, bringing each to its
/// candidate version: only packages whose installed version differs are passed to
/// `DEBIAN_FRONTEND=noninteractive apt-get install -y [--force-yes] …` (so a re-run changes
/// nothing), and the installed versions are checked afterwards. A dpkg lock or failing
/// install is an error naming node, command, exit code and stderr tail; a failure stops nodes
/// not yet started. In a dry run the versions are read and the install only reported.
pub async fn install(host: &Host, nodes: &[Node], pkgs: &[String]) -> PerNode<Installed> {
    host.fan_out("apt install", nodes, OnFailure::Stop, |node| async move {
        install_on(host, &node, pkgs, Mode::Install).await
    })
    .await
}

/// Download into `/var/cache/apt/archives/` (`apt-get install -y --download-only`) the
/// candidate `.deb` of every package of `pkgs` that is not at its candidate version, without
/// installing; apt downloads nothing it already holds. Otherwise as [`install`].
pub async fn download(host: &Host, nodes: &[Node], pkgs: &[String]) -> PerNode<Installed> {
    host.fan_out("apt download", nodes, OnFailure::Stop, |node| async move {
        install_on(host, &node, pkgs, Mode::Download).await
    })
    .await
}
