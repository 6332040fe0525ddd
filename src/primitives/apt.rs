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
/// naming the node with apt's stderr. Lines `W: …`/`E: …` printed with exit 0 (older apt's
/// `W: Failed to fetch …`) are reported as warnings and returned per node. In a dry run the
/// command is only reported, and nothing is returned for the node.
pub async fn update(host: &Host, nodes: &[Node]) -> PerNode<Vec<String>> {
    host.fan_out(
        "apt-get update",
        nodes,
        OnFailure::Stop,
        |node| async move {
            let out = host
                .exec_ok(&node, "apt-get update", Effect::Change, None)
                .await?;
            let warnings = parse::apt::update_warnings(&out.stdout, &out.stderr);
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

/// Expand the globs among `pkgs` with `dpkg-query -W` (the packages dpkg has on the node
/// matching them; none is not an error) and return every name, sorted, with the plain names.
pub async fn expand(host: &Host, node: &Node, pkgs: &[String]) -> Result<BTreeSet<String>> {
    check_names(pkgs)?;
    let (globs, mut names): (Vec<&String>, Vec<&String>) = pkgs.iter().partition(|p| is_glob(p));
    let mut all: BTreeSet<String> = names.drain(..).cloned().collect();
    if globs.is_empty() {
        return Ok(all);
    }
    let mut argv = vec![
        "dpkg-query".to_string(),
        "-W".to_string(),
        format!("--showformat={}", parse::dpkg::FORMAT),
    ];
    argv.extend(globs.into_iter().cloned());
    let line = quote::join(&argv)?;
    let out = host.exec(node, &line, Effect::Read, None).await?;
    if out.code != 0 && !(out.code == 1 && parse::dpkg::only_no_match(&out.stderr)) {
        return Err(crate::host::failed(&node.name, &line, &out));
    }
    for p in parse::dpkg::query(&out.stdout, &node.name, &line)? {
        if p.present() {
            all.insert(p.name);
        }
    }
    Ok(all)
}

/// Installed and candidate versions of `pkgs` (names and globs) on one node: globs expanded
/// with [`expand`], then one `apt-cache policy`. Read-only: runs in a dry run too. A package
/// apt does not know maps to no installed and no candidate version.
pub async fn versions_on(
    host: &Host,
    node: &Node,
    pkgs: &[String],
) -> Result<BTreeMap<String, Policy>> {
    let names = expand(host, node, pkgs).await?;
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut argv = vec!["apt-cache".to_string(), "policy".to_string()];
    argv.extend(names.iter().cloned());
    let line = quote::join(&argv)?;
    let out = host.exec_ok(node, &line, Effect::Read, None).await?;
    let known = parse::apt::policy(&out.stdout, &node.name, &line)?;
    Ok(names
        .into_iter()
        .map(|n| {
            let p = known.get(&n).cloned().unwrap_or_default();
            (n, p)
        })
        .collect())
}

/// [`versions_on`] on every node, in parallel; every node runs even if one fails.
pub async fn versions(
    host: &Host,
    nodes: &[Node],
    pkgs: &[String],
) -> PerNode<BTreeMap<String, Policy>> {
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

/// Query then act on one node: the packages to bring to their candidate version. A plain name
/// apt does not know is an error; a glob match apt has no candidate for is skipped.
async fn pending(host: &Host, node: &Node, pkgs: &[String]) -> Result<BTreeMap<String, String>> {
    let versions = versions_on(host, node, pkgs).await?;
    let mut todo = BTreeMap::new();
    for (name, p) in versions {
        match p.candidate {
            None if pkgs.contains(&name) => {
                return Err(Error::node_state(
                    &node.name,
                    format!(
                        "apt knows no package {name:?} (no candidate version; run apt_update?)"
                    ),
                ));
            }
            None => {}
            Some(c) if p.installed.as_deref() != Some(c.as_str()) => {
                todo.insert(name, c);
            }
            Some(_) => {}
        }
    }
    Ok(todo)
}

async fn install_on(host: &Host, node: &Node, pkgs: &[String], mode: Mode) -> Result<Installed> {
    let todo = pending(host, node, pkgs).await?;
    if todo.is_empty() {
        return Ok(Installed::default());
    }
    let line = install_line(host, node, mode, &todo).await?;
    host.exec_ok(node, &line, Effect::Change, None).await?;
    if mode == Mode::Install && !host.dry_run {
        // Verify: every package now at the version apt promised.
        let names: Vec<String> = todo.keys().cloned().collect();
        let now = versions_on(host, node, &names).await?;
        for (name, want) in &todo {
            let got = now.get(name).and_then(|p| p.installed.clone());
            if got.as_deref() != Some(want.as_str()) {
                return Err(Error::node_state(
                    &node.name,
                    format!(
                        "after `{line}`, {name} is at {} instead of {want}",
                        got.as_deref().unwrap_or("(none)")
                    ),
                ));
            }
        }
    }
    Ok(Installed {
        changed: true,
        packages: todo,
    })
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
