//! The simulated cluster answers the same on both backends: in-process and over real sshd.

use crate::on_both_backends;
use crate::support::cluster::{Backend, Cluster};

on_both_backends!(
    answers_the_real_tools_commands,
    unknown_commands_fail_clearly,
);

fn answers_the_real_tools_commands(backend: Backend) {
    let c = Cluster::new(backend, 3);
    c.ovsup()
        .args(["eval", r#"sh(nodes(), "apt-get update")"#])
        .run()
        .code(0);
    let ran = c
        .ovsup()
        .args([
            "--json",
            "eval",
            r#"#{
            apt: query(nodes(), "apt-cache policy alba"),
            init: try_query(nodes(), "test -d /run/systemd/system"),
            vms: query(nodes(), "virsh list --name"),
            agent: try_query(nodes(), "fuser 4446/tcp"),
            clusters: query(nodes()[0], "ls /opt/OpenvStorage/config/arakoon/"),
        }"#,
        ])
        .run()
        .code(0);
    let v = &ran.json_result()["value"];
    // node-01: upstart + apt 1.0; node-02: systemd + apt 1.2.
    assert!(
        v["apt"]["node-01"]
            .as_str()
            .unwrap_or("")
            .contains("     0.9.18-1 0\n"),
        "{v}"
    );
    assert!(
        v["apt"]["node-02"]
            .as_str()
            .unwrap_or("")
            .contains(" *** 0.9.17-1 100\n"),
        "{v}"
    );
    assert_eq!(v["init"]["node-01"]["code"], 1, "{v}");
    assert_eq!(v["init"]["node-02"]["code"], 0, "{v}");
    assert!(
        v["vms"]["node-01"]
            .as_str()
            .unwrap_or("")
            .contains("vm-0-web\n"),
        "{v}"
    );
    assert_eq!(v["agent"]["node-03"]["code"], 0, "{v}");
    assert_eq!(
        v["clusters"], "mybackend-abm\nmybackend-nsm_0\novsdb\nvoldrv\n",
        "{v}"
    );
    // Controllers are excluded from nodes(), and were never sent a command.
    assert!(v["vms"].get("ovc_master").is_none(), "{v}");
    assert!(c.state("ovc_master").history.is_empty());
    // What a command changed, the next one (and the test) sees.
    for name in c.storage_names() {
        let alba = &c.state(&name).packages["alba"];
        assert_eq!(alba.candidate.as_deref(), Some("0.9.18-1"), "{name}");
    }
}

fn unknown_commands_fail_clearly(backend: Backend) {
    let c = Cluster::new(backend, 1);
    let ran = c
        .ovsup()
        .args(["eval", r#"sh(nodes(), "apt-get frobnicate")"#])
        .run()
        .code(1);
    ran.stderr_has("node-01")
        .stderr_has("exited with code 127")
        .stderr_has("not simulated");
}

// -------------------------------------------------------------------------------------------
// Topology: layouts, Arakoon across nodes, node health (both backends, so over sshd the
// nodes reach each other's state through the bed's shared directory).

mod topology {
    use std::collections::BTreeMap;

    use ovsup::sim::layout::Layout;
    use ovsup::sim::seed::machine_id;
    use serde_json::Value;

    use crate::on_both_backends;
    use crate::support::cluster::{Backend, Cluster};

    const HOOK: &str = "/opt/code/git/0-complexity/openvcloud/scripts/ovs/arakoon-restart.py";

    fn cfg(cluster: &str) -> String {
        format!("/opt/OpenvStorage/config/arakoon/{cluster}/{cluster}.cfg")
    }

    /// (pid, start) of a cluster's member job on every storage node that runs one.
    fn members(c: &Cluster, cluster: &str) -> BTreeMap<String, (u32, u64)> {
        c.storage_names()
            .into_iter()
            .filter_map(|n| {
                let j = c
                    .state(&n)
                    .jobs
                    .get(&format!("ovs-arakoon-{cluster}"))?
                    .clone();
                Some((n, (j.pid, j.started_ms)))
            })
            .collect()
    }

    fn texts(v: &Value) -> BTreeMap<String, String> {
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"))
    }

    on_both_backends!(
        every_node_holds_every_config_and_only_members_run_them,
        the_hook_restarts_members_on_other_nodes,
        a_restarted_member_leaves_no_master_for_a_moment,
        the_five_node_example_and_node_health
    );

    fn every_node_holds_every_config_and_only_members_run_them(backend: Backend) {
        let c = Cluster::with_layout(backend, Layout::default_for(3));
        let v = c.eval_value(
            &[],
            &format!(
                r#"#{{
                ids: query(nodes(), ["cat", "/etc/openvstorage_id"]),
                dirs: query(nodes(), ["ls", "/opt/OpenvStorage/config/arakoon/"]),
                abm: query(nodes(), ["cat", "{}"]),
                master: query(nodes(), ["arakoon", "--who-master", "-config", "{}"]),
            }}"#,
                cfg("mybackend-abm"),
                cfg("mybackend-nsm_0")
            ),
        );
        for (node, id) in texts(&v["ids"]) {
            assert_eq!(id, format!("{}\n", machine_id(&node)), "{node}");
        }
        for (node, ls) in texts(&v["dirs"]) {
            assert_eq!(
                ls, "mybackend-abm\nmybackend-nsm_0\novsdb\nvoldrv\n",
                "{node}"
            );
        }
        let abm = texts(&v["abm"]);
        assert!(
            abm.values().all(|t| t == &abm["node-01"]),
            "identical: {abm:?}"
        );
        let ids = [machine_id("node-02"), machine_id("node-03")].join(",");
        assert!(
            abm["node-01"].contains(&format!("cluster = {ids}\n")),
            "{}",
            abm["node-01"]
        );
        // The master of a cluster node-01 is no member of, answered on every node.
        for (node, m) in texts(&v["master"]) {
            assert_eq!(m, format!("{}\n", machine_id("node-03")), "{node}");
        }
        assert_eq!(
            members(&c, "mybackend-abm").keys().collect::<Vec<_>>(),
            ["node-02", "node-03"]
        );
        assert!(
            !c.state("node-01")
                .jobs
                .keys()
                .any(|j| j.contains("mybackend"))
        );
    }

    fn the_hook_restarts_members_on_other_nodes(backend: Backend) {
        let c = Cluster::with_layout(backend, Layout::default_for(3));
        let before = members(&c, "ovsdb");
        let abm_before = members(&c, "mybackend-abm");
        // Through node-01, which is no member of mybackend-abm.
        let out = c.eval_value(&[], &format!(
                r#"query("node-01", ["python", "{HOOK}", "--cluster", "mybackend-abm", "--address", "10.107.1.11"])"#
            ));
        assert!(
            out.as_str()
                .unwrap_or("")
                .ends_with("Cluster mybackend-abm restarted\n"),
            "{out}"
        );
        let abm_after = members(&c, "mybackend-abm");
        assert_eq!(
            abm_after.keys().collect::<Vec<_>>(),
            ["node-02", "node-03"],
            "no job created"
        );
        for n in ["node-02", "node-03"] {
            assert_ne!(abm_after[n].0, abm_before[n].0, "{n}: a new pid");
            assert!(abm_after[n].1 > abm_before[n].1, "{n}: a new start");
            let h = c.state(n).history;
            assert!(
                !h.iter().any(|l| l.contains("arakoon-restart.py")),
                "{n}: {h:?}"
            );
        }
        // Three members: one at a time, each start half a second or more after the other.
        let out = c.eval_value(&[], &format!(
                r#"query("node-02", ["python", "{HOOK}", "--cluster", "ovsdb", "--address", "10.107.1.13"])"#
            ));
        assert_eq!(
            out.as_str()
                .unwrap_or("")
                .matches("Master of ovsdb: ")
                .count(),
            3,
            "{out}"
        );
        let after = members(&c, "ovsdb");
        let starts: Vec<u64> = after.values().map(|m| m.1).collect();
        assert!(starts.windows(2).all(|w| w[1] >= w[0] + 500), "{starts:?}");
        for (n, m) in &after {
            assert_ne!(m.0, before[n].0, "{n}");
        }
        // A member that stays down makes the hook fail, naming it.
        c.update("node-03", |s| {
            ovsup::sim::cli::set_fault(s, "down", "ovs-arakoon-voldrv")
        })
        .expect("knob");
        let ran = c.ovsup().args(["eval", &format!(
                r#"cmd("node-01", ["python", "{HOOK}", "--cluster", "voldrv", "--address", "10.107.1.11"])"#
            )]).run().code(1);
        assert!(
            ran.stderr.contains("on node-03 did not come back"),
            "{}",
            ran.stderr
        );
    }

    fn a_restarted_member_leaves_no_master_for_a_moment(backend: Backend) {
        let c = Cluster::with_layout(backend, Layout::default_for(3));
        let ovsdb = cfg("ovsdb");
        let v = c.eval_value(&[], &format!(r#"
                let ask = || try_query("node-01", ["arakoon", "--who-master", "-config", "{ovsdb}"]);
                let before = ask.call();
                cmd("node-02", ["systemctl", "restart", "ovs-arakoon-ovsdb"]);
                let during = ask.call();
                sleep(1);
                #{{ before: before, during: during, after: ask.call() }}
            "#));
        assert_eq!(v["before"]["code"], 0, "{v}");
        assert_eq!(v["during"]["code"], 2, "{v}");
        assert_eq!(v["during"]["stdout"], "", "{v}");
        assert_eq!(
            v["during"]["stderr"], "Fatal error: exception Failure(\"No Master\")\n",
            "{v}"
        );
        assert_eq!(v["after"]["code"], 0, "{v}");
    }

    fn the_five_node_example_and_node_health(backend: Backend) {
        let layout = Layout::five_nodes().expect("the example");
        let c = Cluster::with_layout(backend, layout.clone());
        for cl in &layout.clusters {
            let on: Vec<String> = members(&c, &cl.name).into_keys().collect();
            assert_eq!(
                on,
                cl.members
                    .iter()
                    .cloned()
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>(),
                "{}",
                cl.name
            );
        }
        let v = c.eval_value(&[], &format!(r#"#{{
                nsm1: query("node-02", ["arakoon", "--who-master", "-config", "{}"]),
                audit: try_query(nodes(), ["dpkg", "--audit"]),
                stamp: try_query(nodes(), ["stat", "-c", "%Y", "/var/lib/apt/periodic/update-success-stamp"]),
                df: query(nodes(), ["df", "--output=avail", "-B1", "/var/cache/apt/archives"]),
                hook: query("node-05", ["python", "{HOOK}", "--cluster", "mybackend-nsm_1", "--address", "10.107.1.11"]),
            }}"#, cfg("mybackend-nsm_1")));
        assert_eq!(v["nsm1"], format!("{}\n", machine_id("node-04")), "{v}");
        for n in c.storage_names() {
            assert_eq!(v["audit"][&n]["code"], 0, "{v}");
            assert_eq!(v["audit"][&n]["stdout"], "", "{v}");
            assert_eq!(v["stamp"][&n]["code"], 1, "never updated: {v}");
            assert_eq!(v["df"][&n], "      Avail\n51539607552\n", "{v}");
        }
        assert!(
            v["hook"].as_str().unwrap_or("").contains(" on node-04: "),
            "{v}"
        );
        c.update("node-02", |s| {
            s.faults.failing_installs = vec!["alba".into()]
        });
        let v = c.eval_value(&[], r#"
                sh(nodes(), "apt-get update");
                let failed = try_sh("node-02", "DEBIAN_FRONTEND=noninteractive apt-get install -y --force-yes alba");
                #{
                    failed: failed,
                    audit: query("node-02", ["dpkg", "--audit"]),
                    stamp: try_query(nodes(), ["stat", "-c", "%Y", "/var/lib/apt/periodic/update-success-stamp"]),
                }
            "#);
        assert_eq!(v["failed"]["code"], 100, "{v}");
        assert!(
            v["audit"]
                .as_str()
                .unwrap_or("")
                .contains("\n alba                 ALBA: the Open vStorage backend\n"),
            "{v}"
        );
        for n in c.storage_names() {
            assert_eq!(v["stamp"][&n]["code"], 0, "{v}");
        }
    }
}
