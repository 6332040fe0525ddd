//! A node's health before and after a step: what dpkg left half-done (`dpkg --audit`, which
//! exits 0 either way: only its output tells), the free space where packages are unpacked,
//! how old the apt lists are (apt touches its update stamp only after a clean update; the
//! lists' own mtimes are the repository's), and how much space pending packages need. All
//! read-only: they run in a dry run too.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::host::{Effect, Host, OnFailure, PerNode};
use crate::inventory::Node;
use crate::primitives::parse::health::{self, Audited, Sizes};
use crate::quote;

/// The stamp apt touches after an update that fetched every source.
pub const UPDATE_STAMP: &str = "/var/lib/apt/periodic/update-success-stamp";

/// Where packages are downloaded to and unpacked under.
pub const PACKAGE_PATHS: [&str; 2] = ["/var/cache/apt/archives", "/"];

/// What `dpkg --audit` lists on one node.
pub async fn dpkg_audit_on(host: &Host, node: &Node) -> Result<Vec<Audited>> {
    let line = "dpkg --audit";
    let out = host.exec_ok(node, line, Effect::Read, None).await?;
    health::dpkg_audit(&out.stdout, &node.name, line)
}

/// [`dpkg_audit_on`] on every node, in parallel.
pub async fn dpkg_audit(host: &Host, nodes: &[Node]) -> PerNode<Vec<Audited>> {
    host.fan_out(
        "dpkg --audit",
        nodes,
        OnFailure::Continue,
        |node| async move { dpkg_audit_on(host, &node).await },
    )
    .await
}

/// After an install: `dpkg --audit` must be clean on the node, else it fails naming the
/// packages dpkg left half-done.
pub async fn require_clean(host: &Host, node: &Node, after: &str) -> Result<()> {
    let audited = dpkg_audit_on(host, node).await?;
    if audited.is_empty() {
        return Ok(());
    }
    Err(Error::node_state(
        &node.name,
        format!("after {after}, dpkg --audit lists {}", describe(&audited)),
    ))
}

/// `alba (half configured), arakoon (unpacked …)`.
pub fn describe(audited: &[Audited]) -> String {
    audited
        .iter()
        .map(|a| format!("{} ({})", a.package, a.problem))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The free bytes of each of `paths`' filesystems on every node (`df --output=avail -B1`).
pub async fn free_space(
    host: &Host,
    nodes: &[Node],
    paths: &[String],
) -> PerNode<BTreeMap<String, u64>> {
    host.fan_out("df", nodes, OnFailure::Continue, |node| async move {
        let mut free = BTreeMap::new();
        for path in paths {
            let line = quote::join(&["df", "--output=avail", "-B1", path])?;
            let out = host.exec_ok(&node, &line, Effect::Read, None).await?;
            free.insert(
                path.clone(),
                health::df_avail(&out.stdout, &node.name, &line)?,
            );
        }
        Ok(free)
    })
    .await
}

/// How old each node's apt lists are, in seconds: since apt's update stamp (`stat -c %Y`),
/// measured by this machine's clock; `None` when the lists were never updated cleanly (no
/// stamp).
pub async fn lists_age(host: &Host, nodes: &[Node]) -> PerNode<Option<u64>> {
    host.fan_out(
        "apt lists age",
        nodes,
        OnFailure::Continue,
        |node| async move {
            let line = quote::join(&["stat", "-c", "%Y", UPDATE_STAMP])?;
            let out = host.exec(&node, &line, Effect::Read, None).await?;
            if out.code != 0 {
                if out.stderr.contains("No such file") {
                    return Ok(None);
                }
                return Err(crate::host::failed(&node.name, &line, &out));
            }
            let stamp = health::epoch_seconds(&out.stdout, &node.name, &line)?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            Ok(Some(now.saturating_sub(stamp)))
        },
    )
    .await
}

/// The download and unpacked sizes of the candidate version of `pkgs` (plain names) on every
/// node (`apt-cache show --no-all-versions`).
pub async fn sizes(host: &Host, nodes: &[Node], pkgs: &[String]) -> PerNode<Vec<Sizes>> {
    host.fan_out(
        "package sizes",
        nodes,
        OnFailure::Continue,
        |node| async move {
            if pkgs.is_empty() {
                return Ok(Vec::new());
            }
            let mut argv = vec!["apt-cache", "show", "--no-all-versions"];
            argv.extend(pkgs.iter().map(String::as_str));
            let line = quote::join(&argv)?;
            let out = host.exec_ok(&node, &line, Effect::Read, None).await?;
            health::apt_sizes(&out.stdout, &node.name, &line)
        },
    )
    .await
}
