//! Script API of the apt primitives (see `src/primitives/apt.rs`): `apt_update`,
//! `apt_versions`, `apt_install`, `apt_download`.

use rhai::plugin::*;
use rhai::{Array, Dynamic, Map};

use super::call::{arg, fan_out};
use crate::error::{Error, Result};
use crate::primitives::apt::Versions;

/// Names (or globs) from a script value: a string or an array of strings.
pub(crate) fn strings(value: Dynamic, what: &str) -> Result<Vec<String>> {
    if value.is_string() {
        return Ok(vec![value.to_string()]);
    }
    if value.is_array() {
        let items: Array = value.cast();
        return items
            .into_iter()
            .map(|v| {
                if v.is_string() {
                    Ok(v.to_string())
                } else {
                    Err(Error::argument(format!(
                        "expected {what} as strings, found {}",
                        v.type_name()
                    )))
                }
            })
            .collect();
    }
    Err(Error::argument(format!(
        "expected {what}: a string or an array of strings, found {}",
        value.type_name()
    )))
}

fn version(v: Option<String>) -> Dynamic {
    v.map_or(Dynamic::UNIT, Dynamic::from)
}

fn versions_map(m: std::collections::BTreeMap<String, Versions>) -> Dynamic {
    let map: Map = m
        .into_iter()
        .map(|(name, v)| {
            let mut entry = Map::new();
            entry.insert("pending".into(), Dynamic::from_bool(v.pending()));
            entry.insert("status".into(), v.state.as_str().into());
            entry.insert("installed".into(), version(v.installed));
            entry.insert("candidate".into(), version(v.candidate));
            (name.into(), Dynamic::from_map(entry))
        })
        .collect();
    map.into()
}

fn installed_map(i: crate::primitives::apt::Installed, key: &str) -> Dynamic {
    let mut m = Map::new();
    m.insert("changed".into(), Dynamic::from_bool(i.changed));
    let pkgs: Map = i
        .packages
        .into_iter()
        .map(|(k, v)| (k.into(), Dynamic::from(v)))
        .collect();
    m.insert(key.into(), pkgs.into());
    m.into()
}

/// The script API of the apt primitives.
#[export_module]
pub mod apt_api {
    use super::*;
    use crate::primitives::apt;

    /// Refresh the package lists: `apt-get update` on a node (a Node, a node name, or an array
    /// of them: in parallel). Returns the `W:`/`E:` lines apt printed while still exiting 0,
    /// also shown as warnings: an empty array when all went well (a map by node name for an
    /// array target). Raises when apt fails, e.g. when another process holds its lock, with the
    /// node, the command and apt's stderr; and for a node whose sources did not all refresh
    /// (older apt's `W: Failed to fetch …` with exit 0: its lists are stale). Nodes not yet
    /// started are not started. With `--dry-run` the command is only printed (empty array).
    #[rhai_fn(return_raw)]
    pub fn apt_update(ctx: NativeCallContext, t: Dynamic) -> Result<Dynamic, Box<EvalAltResult>> {
        apt_update_with(ctx, t, Map::new())
    }

    /// `apt_update(t)` with options: `allow_failed_sources` (default false) reports a source
    /// that did not refresh as a warning instead of failing its node.
    #[rhai_fn(name = "apt_update", return_raw)]
    pub fn apt_update_with(
        ctx: NativeCallContext,
        t: Dynamic,
        options: Map,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let allow = arg(
            &ctx,
            crate::engine::options::known(&options, &["allow_failed_sources"])
                .and_then(|()| crate::engine::options::flag(&options, "allow_failed_sources")),
        )?;
        fan_out(
            &ctx,
            t,
            async |host, nodes| Ok(apt::update(host, nodes, allow).await),
            |w| Dynamic::from_array(w.into_iter().map(Dynamic::from).collect()),
        )
    }

    /// Installed and candidate versions of packages: `pkgs` is a name or an array of names and
    /// globs (`"openvstorage*"`, expanded against the packages dpkg has on each node; a glob
    /// matching nothing adds nothing). Returns `#{pkg: #{installed: "1.2-1" or (), candidate:
    /// "1.3-1" or (), status: "installed" | "unpacked" | "half-configured" | … |
    /// "not-installed", pending: bool}}` (a map by node name for an array target). `pending`
    /// is true when the candidate differs from the installed version, or when dpkg left the
    /// package half-done (unpacked, half-configured…) whatever its version — a failed postinst
    /// leaves the new version "installed" but not configured. A package apt does not know has
    /// both versions `()`. Runs one `dpkg-query -W` and one `apt-cache policy`: read-only, so
    /// it runs in `--dry-run` too. Raises on output it does not recognise, naming the line.
    #[rhai_fn(return_raw)]
    pub fn apt_versions(
        ctx: NativeCallContext,
        t: Dynamic,
        pkgs: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let pkgs = arg(&ctx, strings(pkgs, "package names"))?;
        fan_out(
            &ctx,
            t,
            async |host, nodes| Ok(apt::versions(host, nodes, &pkgs).await),
            versions_map,
        )
    }

    /// Install or upgrade packages (a name or an array of names and globs) to their candidate
    /// version. Query then act: a package dpkg left half-done (a failed postinst) is configured
    /// first (`dpkg --configure -a`, checked), then only the packages whose installed version
    /// differs from the candidate are passed to `DEBIAN_FRONTEND=noninteractive apt-get install
    /// -y` (with `--force-yes` where the node's apt is older than 1.1, and keeping changed
    /// config files), so a second run changes nothing; versions and dpkg's state are checked
    /// afterwards. A dpkg or apt lock held by another process is waited for (up to the
    /// inventory's `apt_lock_wait`, default 120 s), saying who holds it.
    /// Returns `#{changed: bool, installed: #{pkg: version}}` (the packages installed and their
    /// new version; a map by node name for an array target). Raises when a plain name is
    /// unknown to apt, when dpkg is locked or an install fails (node, command, exit code, tail
    /// of stderr); nodes not yet started are not started. With `--dry-run` the versions are
    /// read and the install only printed; the result tells what would be installed.
    #[rhai_fn(return_raw)]
    pub fn apt_install(
        ctx: NativeCallContext,
        t: Dynamic,
        pkgs: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let pkgs = arg(&ctx, strings(pkgs, "package names"))?;
        fan_out(
            &ctx,
            t,
            async |host, nodes| Ok(apt::install(host, nodes, &pkgs).await),
            |i| installed_map(i, "installed"),
        )
    }

    /// Download the candidate `.deb` of packages (a name or an array of names and globs) into
    /// `/var/cache/apt/archives/` without installing them, so that a later `apt_install`
    /// downloads nothing: `apt-get install -y --download-only` (with `--force-yes` on apt older
    /// than 1.1) for the packages not at their candidate version. Returns `#{changed: bool,
    /// downloaded: #{pkg: version}}` (a map by node name for an array target). Raises as
    /// `apt_install`. With `--dry-run` the command is only printed.
    #[rhai_fn(return_raw)]
    pub fn apt_download(
        ctx: NativeCallContext,
        t: Dynamic,
        pkgs: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let pkgs = arg(&ctx, strings(pkgs, "package names"))?;
        fan_out(
            &ctx,
            t,
            async |host, nodes| Ok(apt::download(host, nodes, &pkgs).await),
            |i| installed_map(i, "downloaded"),
        )
    }
}
