use super::*;
use crate::sim::state::now_ms;

/// The seeded nodes of `layout` after an `apt-get update` (candidates at the newest).
fn updated_seeds(layout: &Layout, now: u64) -> Vec<NodeState> {
    (0..layout.nodes.len())
        .filter_map(|i| seed::storage_node(layout, i, now))
        .map(|mut s| {
            for p in s.packages.values_mut() {
                p.candidate = p.newest_in_repository().map(str::to_owned);
            }
            s
        })
        .collect()
}

/// What a capture of the seeded `layout` would read, after an update.
fn observed(layout: &Layout) -> Observed {
    let now = now_ms();
    let seeds = updated_seeds(layout, now);
    let fs = VirtualFs::new(seeds[0].files.clone());
    let configs = layout
        .clusters
        .iter()
        .map(|c| {
            let text = fs.read(&arakoon::cfg_path(&c.name)).expect("config");
            (c.name.clone(), keep_config(&text).0)
        })
        .collect();
    let nodes = seeds
        .iter()
        .map(|s| ObservedNode {
            name: s.name.clone(),
            groups: vec!["storage".into()],
            init: s.init,
            apt: s.apt_variant,
            packages: s
                .packages
                .iter()
                .map(|(n, p)| {
                    let o = ObservedPackage {
                        installed: p.installed.clone(),
                        candidate: p.candidate.clone(),
                        status: p.status,
                    };
                    (n.clone(), o)
                })
                .collect(),
            jobs: s
                .jobs
                .iter()
                .map(|(n, j)| {
                    let o = ObservedJob {
                        running: j.running,
                        pid: j.running.then_some(j.pid),
                        failed: j.failed,
                        description: j.description.clone(),
                    };
                    (n.clone(), o)
                })
                .collect(),
            memcached_running: s.memcached_running,
            domains: s
                .domains
                .keys()
                .map(|d| (d.clone(), s.domain_state(d, now).expect("domain")))
                .collect(),
            agent_pid: s.agent_pid,
            backplane1: s.backplane1.clone(),
            machine_id: s.machine_id.clone(),
            apt_updated_secs: None,
            free_bytes: None,
            allowed_hosts: Some(vec!["ALLOWED_HOSTS = ['localhost']".into()]),
            arakoon_dirs: layout.clusters.iter().map(|c| c.name.clone()).collect(),
        })
        .collect();
    Observed {
        captured_ms: now,
        nodes,
        controllers: layout.controllers.clone(),
        configs,
        masters: BTreeMap::new(),
        notes: Vec::new(),
    }
}

#[test]
fn a_replica_of_a_seeded_cluster_has_its_layout_and_its_nodes() {
    let layout = Layout::five_nodes().expect("five nodes");
    let mut o = observed(&layout);
    let master = o.nodes[2].machine_id.clone().expect("id");
    o.masters.insert("voldrv".into(), master);
    let r = replicate(&o).expect("replicate");
    assert_eq!(r.layout, layout, "{:#?}", r.notes);
    assert!(r.notes.is_empty(), "{:#?}", r.notes);
    assert_eq!(r.states.len(), 5 + layout.controllers.len());
    let seeds = updated_seeds(&layout, now_ms());
    for (s, seeded) in r.states.iter().zip(&seeds) {
        assert_eq!(s.packages, seeded.packages, "{}", s.name);
        assert_eq!(s.machine_id, seeded.machine_id);
        assert_eq!(s.backplane1, seeded.backplane1);
        let running = |s: &NodeState| -> Vec<(String, u32)> {
            s.jobs.iter().map(|(n, j)| (n.clone(), j.pid)).collect()
        };
        assert_eq!(running(s), running(seeded), "{}", s.name);
        assert!(s.next_pid > seeded.jobs.values().map(|j| j.pid).max().unwrap_or(0));
        for c in layout.clusters_of(&s.name) {
            let path = arakoon::cfg_path(&c.name);
            assert!(s.files.contains_key(&path), "{} {path}", s.name);
        }
        let fs = VirtualFs::new(s.files.clone());
        assert_eq!(
            fs.read(SETTINGS_PY).expect("settings"),
            "ALLOWED_HOSTS = ['localhost']\n"
        );
        assert!(!fs.read(SETTINGS_PY).expect("settings").contains("DEBUG"));
    }
    // The master read is the longest-running member: the simulator elects it again.
    let member = |n: usize| r.states[n].jobs["ovs-arakoon-voldrv"].started_ms;
    assert!(member(2) < member(1) && member(2) < member(3));
}

#[test]
fn what_cannot_be_represented_is_said() {
    let layout = Layout::default_for(3);
    let mut o = observed(&layout);
    // A member on a node outside the inventory, a backend without its abm cluster.
    o.nodes.remove(0);
    o.nodes[0].jobs.insert(
        "ovs-alba-maintenance_other".into(),
        ObservedJob {
            running: true,
            pid: Some(9999),
            ..ObservedJob::default()
        },
    );
    let r = replicate(&o).expect("replicate");
    let notes = r.notes.join("\n");
    assert!(notes.contains("runs on no target node"), "{notes}");
    assert!(notes.contains("\"other\""), "{notes}");
    assert!(r.states[0].jobs.contains_key("ovs-alba-maintenance_other"));
    assert!(r.layout.nodes[0].backends.iter().all(|b| b != "other"));
}

#[test]
fn configs_keep_ids_addresses_and_ports_only() {
    let text = "[global]\ncluster = A\ncluster_id = c\n# comment\ntls_ca_cert = /x/ca.pem\n\n\
                [A]\nname = A\nip = 10.0.0.1\nclient_port = 1\nsecret_thing = s3cr3t\n";
    let (kept, dropped) = keep_config(text);
    assert_eq!(
        kept,
        "[global]\ncluster = A\ncluster_id = c\n\n[A]\nname = A\nip = 10.0.0.1\nclient_port = 1\n"
    );
    assert_eq!(
        dropped.into_iter().collect::<Vec<_>>(),
        ["secret_thing", "tls_ca_cert"]
    );
    assert!(arakoon::parse_cfg(&kept).is_ok());
}

#[test]
fn stored_replicas_are_listed_restored_and_replaced_only_when_asked() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("sim-prod");
    let layout = Layout::default_for(3);
    let r = replicate(&observed(&layout)).expect("replicate");
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        name: "prod".into(),
        captured_at: "2024-01-01T00:00:00Z".into(),
        environment: "prod-env".into(),
        inventory: None,
        ovsup: "test".into(),
        storage_nodes: r.layout.storage_names(),
        controllers: r.layout.controllers.clone(),
        notes: Vec::new(),
    };
    store(&dir, &r, &manifest, false).expect("store");
    let e = store(&dir, &r, &manifest, false).expect_err("exists");
    assert!(e.to_string().contains("--replace"), "{e}");
    let live = dir.join("sim");
    assert_eq!(cluster::stored_layout(&live).expect("layout"), Some(layout));
    let found = list(base.path()).expect("list");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].spec, "sim:prod");
    assert_eq!(found[0].captured.as_ref(), Some(&manifest));
    // A rehearsal changes a node; a reset brings it back.
    let node = cluster::state_file(&live, "node-01");
    let before = std::fs::read_to_string(&node).expect("read");
    crate::sim::Store::new(&node)
        .update(|s| s.agent_pid = None)
        .expect("update");
    assert_ne!(std::fs::read_to_string(&node).expect("read"), before);
    assert_eq!(restore(&dir).expect("restore"), Some(manifest.clone()));
    assert_eq!(std::fs::read_to_string(&node).expect("read"), before);
    assert!(!live.join("node-01.json.lock").exists());
    // --replace throws the old one away whole.
    std::fs::write(dir.join("marker"), "old").expect("marker");
    store(&dir, &r, &manifest, true).expect("replace");
    assert!(!dir.join("marker").exists());
    let leftovers: Vec<_> = std::fs::read_dir(base.path())
        .expect("read")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers, ["sim-prod"]);
    assert_eq!(restore(&base.path().join("nothing")).expect("none"), None);
}
