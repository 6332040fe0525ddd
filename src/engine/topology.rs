//! Script API of the cluster's topology and of Arakoon restarts (see
//! `src/primitives/topology.rs` and `src/primitives/arakoon.rs`): `ovs_id`, `node_roles`,
//! `arakoon_clusters`, `require_arakoon_healthy`, `arakoon_restart`.

use rhai::plugin::*;
use rhai::{Array, Dynamic, Map};

use crate::primitives::topology::ClusterState;

fn strings(v: &[String]) -> Dynamic {
    Dynamic::from_array(v.iter().cloned().map(Dynamic::from).collect())
}

fn opt<T: ToString>(v: Option<T>) -> Dynamic {
    v.map_or(Dynamic::UNIT, |v| v.to_string().into())
}

/// A cluster's state as scripts see it.
fn cluster_map(s: &ClusterState) -> Dynamic {
    let members: Array = s
        .members
        .iter()
        .map(|m| {
            let mut e = Map::new();
            e.insert("id".into(), m.member.id.clone().into());
            e.insert("node".into(), opt(m.member.node.as_deref()));
            e.insert("ip".into(), m.member.ip.clone().into());
            e.insert(
                "client_port".into(),
                Dynamic::from_int(i64::from(m.member.client_port)),
            );
            e.insert("running".into(), Dynamic::from_bool(m.running));
            e.insert(
                "pid".into(),
                m.pid
                    .map_or(Dynamic::UNIT, |p| Dynamic::from_int(i64::from(p))),
            );
            Dynamic::from_map(e)
        })
        .collect();
    let down: Array = s
        .down()
        .iter()
        .map(|m| opt(m.member.node.as_deref().or(Some(m.member.id.as_str()))))
        .collect();
    let mut c = Map::new();
    c.insert("name".into(), s.cluster.name.clone().into());
    c.insert(
        "member_nodes".into(),
        strings(
            &s.cluster
                .member_nodes()
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>(),
        ),
    );
    c.insert("members".into(), members.into());
    c.insert("master".into(), opt(s.master.as_deref()));
    c.insert("master_node".into(), opt(s.master_node()));
    c.insert("healthy".into(), Dynamic::from_bool(s.healthy()));
    c.insert("down".into(), down.into());
    c.insert("problems".into(), s.problems().into());
    Dynamic::from_map(c)
}

fn names_of(value: Dynamic) -> crate::error::Result<Vec<String>> {
    if value.is_unit() {
        return Ok(Vec::new());
    }
    super::apt::strings(value, "cluster names")
}

/// The script API of the topology.
/// The `timeout` option of an Arakoon restart or wait (seconds, default
/// [`crate::primitives::arakoon::RESTART_TIMEOUT`]); any other option is refused.
fn arakoon_timeout(options: &Map) -> crate::error::Result<std::time::Duration> {
    crate::engine::options::known(options, &["timeout"])?;
    crate::engine::options::seconds(
        options,
        "timeout",
        crate::primitives::arakoon::RESTART_TIMEOUT,
    )
}

#[export_module]
pub mod topology_api {
    use super::*;
    use crate::engine::call::{arg, call, fan_out};
    use crate::primitives::{arakoon, topology};

    /// A node's Open vStorage id (`/etc/openvstorage_id`; Arakoon names its members by it):
    /// a string (a map by node name for an array target). Read once per run; read-only.
    #[rhai_fn(return_raw)]
    pub fn ovs_id(ctx: NativeCallContext, t: Dynamic) -> Result<Dynamic, Box<EvalAltResult>> {
        fan_out(
            &ctx,
            t,
            async |host, nodes| Ok(topology::ids(host, nodes).await),
            Dynamic::from,
        )
    }

    /// What a node serves, from its jobs: `#{vpools: [...], backends: [...], arakoon: [...],
    /// asds: [...]}` — the vpools of its `ovs-volumedriver_*`/`ovs-albaproxy_*` jobs, the ALBA
    /// backends of its maintenance/rebalancer jobs, the Arakoon clusters it runs a member of,
    /// its ASD jobs (a map by node name for an array target). Nodes are not alike: each list
    /// may be empty. Read-only.
    #[rhai_fn(return_raw)]
    pub fn node_roles(ctx: NativeCallContext, t: Dynamic) -> Result<Dynamic, Box<EvalAltResult>> {
        fan_out(
            &ctx,
            t,
            async |host, nodes| Ok(topology::roles(host, nodes).await),
            |r| {
                let mut m = Map::new();
                m.insert("vpools".into(), strings(&r.vpools));
                m.insert("backends".into(), strings(&r.backends));
                m.insert("arakoon".into(), strings(&r.arakoon));
                m.insert("asds".into(), strings(&r.asds));
                Dynamic::from_map(m)
            },
        )
    }

    /// Every Arakoon cluster of the environment, with its state now: an array of `#{name,
    /// member_nodes, members: [#{id, node, ip, client_port, running, pid}], master,
    /// master_node, healthy, down, problems}`. The clusters and their members come from the
    /// config every storage node holds (read once per run), each member matched to its
    /// inventory node by id or backplane address (`node` is `()` for a member outside the
    /// inventory); `running`/`pid` from the member's job on its node; `master` from
    /// `arakoon --who-master` (`()` when there is none, and `problems` says why). `healthy`:
    /// a master, and every member running. Read-only.
    #[rhai_fn(return_raw)]
    pub fn arakoon_clusters(ctx: NativeCallContext) -> Result<Array, Box<EvalAltResult>> {
        arakoon_clusters_named(ctx, Dynamic::UNIT)
    }

    /// `arakoon_clusters()` for the clusters named (a name or an array of names); an unknown
    /// name raises, listing the clusters there are.
    #[rhai_fn(name = "arakoon_clusters", return_raw)]
    pub fn arakoon_clusters_named(
        ctx: NativeCallContext,
        names: Dynamic,
    ) -> Result<Array, Box<EvalAltResult>> {
        let names = arg(&ctx, names_of(names))?;
        let states = call(&ctx, async |host| {
            topology::states(host, &host.targets(None), &names).await
        })?;
        Ok(states.iter().map(cluster_map).collect())
    }

    /// Refuse (exit 3) unless every cluster named (a name, an array; `[]` for all) has a
    /// master and runs every member: a restart with a member down can lose the quorum. The
    /// refusal names each cluster, its members that are down and their nodes. Put it before
    /// the first change of a step that restarts clusters. With `--force` it warns loudly
    /// instead. Read-only.
    #[rhai_fn(return_raw)]
    pub fn require_arakoon_healthy(
        ctx: NativeCallContext,
        names: Dynamic,
    ) -> Result<(), Box<EvalAltResult>> {
        let names = arg(&ctx, names_of(names))?;
        call(&ctx, async |host| {
            arakoon::require_healthy(host, &host.targets(None), &names)
                .await
                .map(|_| ())
        })
    }

    /// Wait until every cluster named (a name, an array; `[]` for all) has a master and runs
    /// every member, for a step that stopped and started members itself: the next step then
    /// finds the cluster healthy, not mid-election. Options: `timeout` (seconds, default
    /// 120). Raises after the deadline naming each cluster still unhealthy and why (no
    /// master, members down and their nodes). Read-only; with `--dry-run` it looks once.
    #[rhai_fn(return_raw)]
    pub fn arakoon_wait_healthy(
        ctx: NativeCallContext,
        names: Dynamic,
        options: Map,
    ) -> Result<(), Box<EvalAltResult>> {
        let names = arg(&ctx, names_of(names))?;
        let timeout = arg(&ctx, arakoon_timeout(&options))?;
        call(&ctx, async |host| {
            arakoon::wait_healthy(host, &host.targets(None), &names, timeout)
                .await
                .map(|_| ())
        })
    }

    /// `arakoon_restart(name, #{})`: the default deadline of 120 s.
    #[rhai_fn(name = "arakoon_restart", return_raw)]
    pub fn arakoon_restart_default(
        ctx: NativeCallContext,
        name: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        arakoon_restart(ctx, name, Map::new())
    }

    /// Restart the Arakoon cluster `name` safely: refused unless it has a master and every
    /// member runs (`--force` overrides); then the OpenvCloud hook `arakoon-restart.py
    /// --cluster NAME --address IP` on a member node (IP its backplane address), which
    /// restarts the members on their nodes; then waits until on every member node the member
    /// runs with a new pid and the cluster has a master again. Options: `timeout` (seconds,
    /// default 120). Returns `#{cluster, members: #{node: #{before, after}}, master,
    /// master_node}`. Raises naming the cluster and the members not back when the deadline
    /// passes. Non-member nodes are neither waited on nor given a member. With `--dry-run`
    /// the hook is only printed.
    #[rhai_fn(name = "arakoon_restart", return_raw)]
    pub fn arakoon_restart(
        ctx: NativeCallContext,
        name: &str,
        options: Map,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let timeout = arg(&ctx, arakoon_timeout(&options))?;
        let r = call(&ctx, async |host| {
            arakoon::restart(host, &host.targets(None), name, timeout).await
        })?;
        let members: Map = r
            .members
            .iter()
            .map(|(n, (b, a))| {
                let mut e = Map::new();
                e.insert(
                    "before".into(),
                    b.map_or(Dynamic::UNIT, |p| Dynamic::from_int(i64::from(p))),
                );
                e.insert(
                    "after".into(),
                    a.map_or(Dynamic::UNIT, |p| Dynamic::from_int(i64::from(p))),
                );
                (n.as_str().into(), Dynamic::from_map(e))
            })
            .collect();
        let mut m = Map::new();
        m.insert("cluster".into(), r.cluster.into());
        m.insert("members".into(), members.into());
        m.insert("master".into(), opt(r.master));
        m.insert("master_node".into(), opt(r.master_node));
        Ok(Dynamic::from_map(m))
    }
}
