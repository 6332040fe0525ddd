//! Script API of node health (see `src/primitives/health.rs`): `dpkg_audit`, `free_space`,
//! `apt_lists_age`, `package_sizes`.

use rhai::plugin::*;
use rhai::{Dynamic, Map};

/// The script API of node health.
#[export_module]
pub mod health_api {
    use super::*;
    use crate::engine::apt::strings;
    use crate::engine::call::{arg, fan_out};
    use crate::primitives::health;

    /// What `dpkg --audit` lists on a node: an array of `#{name, problem}` (`problem` as
    /// dpkg words it: `half configured`, `unpacked but not yet configured`, …; empty when
    /// every package is configured), a map by node name for an array target. `dpkg --audit`
    /// exits 0 either way: only its output tells. Read-only.
    #[rhai_fn(return_raw)]
    pub fn dpkg_audit(ctx: NativeCallContext, t: Dynamic) -> Result<Dynamic, Box<EvalAltResult>> {
        fan_out(
            &ctx,
            t,
            async |host, nodes| Ok(health::dpkg_audit(host, nodes).await),
            |list| {
                Dynamic::from_array(
                    list.into_iter()
                        .map(|a| {
                            let mut m = Map::new();
                            m.insert("name".into(), a.package.into());
                            m.insert("problem".into(), a.problem.into());
                            Dynamic::from_map(m)
                        })
                        .collect(),
                )
            },
        )
    }

    /// The free bytes of the filesystems of `paths` (a path or an array) on a node:
    /// `#{path: bytes}` (`df --output=avail -B1 PATH`; a map by node name for an array
    /// target). Read-only.
    #[rhai_fn(return_raw)]
    pub fn free_space(
        ctx: NativeCallContext,
        t: Dynamic,
        paths: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let paths = arg(&ctx, strings(paths, "paths"))?;
        fan_out(
            &ctx,
            t,
            async |host, nodes| Ok(health::free_space(host, nodes, &paths).await),
            |free| {
                let m: Map = free
                    .into_iter()
                    .map(|(p, b)| {
                        (
                            p.into(),
                            Dynamic::from_int(i64::try_from(b).unwrap_or(i64::MAX)),
                        )
                    })
                    .collect();
                Dynamic::from_map(m)
            },
        )
    }

    /// How old a node's apt lists are, in seconds since the last `apt-get update` that
    /// fetched every source (apt's update stamp), or `()` when they were never updated
    /// cleanly (a map by node name for an array target). Read-only.
    #[rhai_fn(return_raw)]
    pub fn apt_lists_age(
        ctx: NativeCallContext,
        t: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        fan_out(
            &ctx,
            t,
            async |host, nodes| Ok(health::lists_age(host, nodes).await),
            |age| {
                age.map_or(Dynamic::UNIT, |a| {
                    Dynamic::from_int(i64::try_from(a).unwrap_or(i64::MAX))
                })
            },
        )
    }

    /// The sizes of the candidate version of packages (plain names): `#{pkg: #{version,
    /// download, installed}}` in bytes (`apt-cache show --no-all-versions`; a map by node name
    /// for an array target). Read-only.
    #[rhai_fn(return_raw)]
    pub fn package_sizes(
        ctx: NativeCallContext,
        t: Dynamic,
        pkgs: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let pkgs = arg(&ctx, strings(pkgs, "package names"))?;
        fan_out(
            &ctx,
            t,
            async |host, nodes| Ok(health::sizes(host, nodes, &pkgs).await),
            |sizes| {
                let m: Map = sizes
                    .into_iter()
                    .map(|s| {
                        let mut e = Map::new();
                        e.insert("version".into(), s.version.into());
                        e.insert(
                            "download".into(),
                            Dynamic::from_int(i64::try_from(s.download).unwrap_or(i64::MAX)),
                        );
                        e.insert(
                            "installed".into(),
                            Dynamic::from_int(i64::try_from(s.installed).unwrap_or(i64::MAX)),
                        );
                        (s.package.into(), Dynamic::from_map(e))
                    })
                    .collect();
                Dynamic::from_map(m)
            },
        )
    }
}
