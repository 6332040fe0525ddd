//! The primitives as plain async Rust on a [`Host`], without Rhai: the architecture's promise
//! that the engine only adapts them to scripts. Each test builds a host over an in-process
//! simulated cluster and calls the primitives directly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ovsup::error::Error;
use ovsup::host::{Host, HostParts, all_ok};
use ovsup::inventory::Inventory;
use ovsup::primitives::{apt, cluster, services, vms};
use ovsup::report::{Event, Reporter};
use ovsup::transport::Transport;
use ovsup::transport::sim::SimTransport;
use ovsup::wait::{Probe, Waited};

/// Every event a run reported.
#[derive(Default)]
struct Events(Mutex<Vec<Event>>);

impl Reporter for Events {
    fn report(&self, event: Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event);
        }
    }
}

/// A host over a fresh in-process cluster of 3 storage nodes, and the runtime it runs on.
struct Bed {
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    host: Arc<Host>,
    events: Arc<Events>,
}

fn bed() -> Bed {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = dir.path().join("sim");
    ovsup::sim::cluster::ensure(&sim, 3).expect("seed the cluster");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let events = Arc::new(Events::default());
    let host = Arc::new(Host::new(HostParts {
        inventory: Inventory::simulated(&ovsup::sim::layout::Layout::default_for(3), "sim"),
        limit: None,
        state_dir: dir.path().to_path_buf(),
        dry_run: false,
        force: false,
        assume_yes: true,
        forks: 8,
        transport: Transport::Sim(SimTransport::new(sim)),
        reporter: events.clone(),
        journal: None,
        label: "test".into(),
        runtime: runtime.handle().clone(),
    }));
    Bed {
        _dir: dir,
        runtime,
        host,
        events,
    }
}

#[test]
fn apt_update_then_versions_see_the_candidates_on_every_node() {
    let b = bed();
    let h = &*b.host;
    let nodes = h.targets(None);
    let pkgs = vec!["alba".to_string(), "openvstorage*".to_string()];
    let before = b
        .runtime
        .block_on(apt::versions(h, &nodes, &pkgs))
        .into_iter()
        .map(|(n, r)| (n, r.expect("versions")))
        .collect::<Vec<_>>();
    assert_eq!(before.len(), 3);
    for (node, v) in &before {
        assert_eq!(
            v["alba"].installed, v["alba"].candidate,
            "{node}: before update"
        );
        assert!(
            v.contains_key("openvstorage-core"),
            "{node}: glob expanded: {v:?}"
        );
    }
    all_ok(b.runtime.block_on(apt::update(h, &nodes, false))).expect("update");
    for (node, v) in b.runtime.block_on(apt::versions(h, &nodes, &pkgs)) {
        let v = v.expect("versions");
        assert_eq!(v["alba"].installed.as_deref(), Some("0.9.17-1"), "{node}");
        assert_eq!(v["alba"].candidate.as_deref(), Some("0.9.18-1"), "{node}");
    }
    // Every command went through the reporter: one `done` per command, none failed.
    let events = b.events.0.lock().expect("events");
    let done = events
        .iter()
        .filter(|e| matches!(e, Event::Done { error: None, .. }))
        .count();
    assert!(done >= 9, "{done} commands reported");
}

#[test]
fn services_and_the_agent_without_a_script() {
    let b = bed();
    let h = &*b.host;
    let nodes = h.targets(None);
    for (node, jobs) in b
        .runtime
        .block_on(services::list(h, &nodes, "ovs-watcher-"))
    {
        assert_eq!(jobs.expect("list"), ["ovs-watcher-framework"], "{node}");
    }
    let offline = all_ok(b.runtime.block_on(cluster::set_offline(h, &nodes))).expect("offline");
    assert!(offline.iter().all(|(_, changed)| *changed), "{offline:?}");
    b.runtime
        .block_on(cluster::require_offline(h, &nodes))
        .expect("every node is offline now");
    let again = all_ok(b.runtime.block_on(cluster::set_offline(h, &nodes))).expect("again");
    assert!(again.iter().all(|(_, changed)| !changed), "{again:?}");
}

#[test]
fn a_stuck_vm_fails_its_node_with_the_node_named_and_stays_recorded() {
    let b = bed();
    let h = &*b.host;
    let node = h.targets(None).remove(0);
    let stuck = "vm-0-web".to_string();
    ovsup::sim::SimNode::open_virtual(b._dir.path().join("sim").join("node-01.json"))
        .expect("node")
        .update(|s| s.faults.stuck_vms = vec![stuck.clone()])
        .expect("fault");
    let opts = vms::StopOptions {
        timeout: Duration::from_secs(2),
        force: false,
    };
    let results = b
        .runtime
        .block_on(vms::stop(h, std::slice::from_ref(&node), opts))
        .expect("no refusal");
    let err = all_ok(results).expect_err("the stuck VM fails the node");
    assert_eq!(err.kind(), "node_state", "{err}");
    assert_eq!(err.node(), Some("node-01"), "{err}");
    assert!(err.to_string().contains(&format!("{stuck:?}")), "{err}");
    let record = b.runtime.block_on(vms::record(h)).expect("record");
    assert!(record.vms("node-01").contains(&stuck), "{record:?}");
}

#[test]
fn a_wait_ends_at_its_deadline_with_the_last_state_and_at_once_on_ctrl_c() {
    let b = bed();
    let h = &*b.host;
    let mut probes = 0;
    let waited = b
        .runtime
        .block_on(h.poll_until(
            Duration::from_millis(300),
            Duration::from_millis(100),
            async || {
                probes += 1;
                Ok(Probe::<(), u32>::NotYet(probes))
            },
        ))
        .expect("no error");
    assert!(
        matches!(waited, Waited::Expired(n) if (3..=5).contains(&n)),
        "{waited:?}"
    );
    h.cancel.cancel();
    let began = std::time::Instant::now();
    let interrupted = b.runtime.block_on(h.poll_until(
        Duration::from_secs(60),
        Duration::from_secs(10),
        async || Ok(Probe::<(), ()>::NotYet(())),
    ));
    assert!(
        matches!(interrupted, Err(Error::Interrupted)),
        "{interrupted:?}"
    );
    assert!(began.elapsed() < Duration::from_secs(2));
}
