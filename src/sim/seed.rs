//! Ready-made node states: a realistic Open vStorage storage node with updates pending for
//! all four components (once `apt-get update` has run), and an `ovc_*` controller instance.
//! [`materialize`] writes a seed's files into a filesystem, which is how the SSH test bed
//! prepares a real test node.

use std::collections::BTreeMap;
use std::io;

use super::fs::{Fs, FsEntry, VirtualFs, normalize};
use super::state::{AptVariant, Domain, DomainRun, Faults, Init, Job, NodeState, Package};
use super::tools::apt::ARCHIVES;
use super::tools::python::ARAKOON_CONFIG;

/// The framework packages (`openvstorage*`), installed and newest version.
pub const FRAMEWORK: (&[&str], &str, &str) = (
    &[
        "openvstorage",
        "openvstorage-backend",
        "openvstorage-core",
        "openvstorage-webapps",
    ],
    "2.7.2-rev.3735.aa53c43-1",
    "2.7.3-rev.3802.9a4bd21-1",
);
/// The volumedriver packages, installed and newest version.
pub const VOLUMEDRIVER: (&[&str], &str, &str) = (
    &["volumedriver-base", "volumedriver-server"],
    "6.1.0-1",
    "6.2.1-1",
);
/// The ALBA package, installed and newest version.
pub const ALBA: (&[&str], &str, &str) = (&["alba"], "0.9.17-1", "0.9.18-1");
/// The Arakoon package, installed and newest version.
pub const ARAKOON: (&[&str], &str, &str) = (&["arakoon"], "1.9.17-1", "1.9.22-1");
/// The Arakoon clusters of a storage node.
pub const ARAKOON_CLUSTERS: [&str; 4] = ["ovsdb", "voldrv", "mybackend-abm", "mybackend-nsm_0"];
/// The webapp settings file the framework upgrade patches.
pub const SETTINGS_PY: &str = "/opt/OpenvStorage/webapps/api/settings.py";

const SETTINGS_CONTENT: &str = "# Open vStorage API settings (simulated)\n\
DEBUG = False\n\
ALLOWED_HOSTS = ['localhost']\n\
TIME_ZONE = 'UTC'\n\
BASE_FOLDER = '/opt/OpenvStorage/webapps/api'\n";

/// The two ALBA ASD ids of storage node `index` (8 characters each, stable per index).
pub fn asd_ids(index: usize) -> [String; 2] {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut seed = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x6a09_e667_f3bc_c908;
    let mut next = || {
        let mut id = String::with_capacity(8);
        for _ in 0..8 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            id.push(char::from(
                ALPHABET[((seed >> 33) % ALPHABET.len() as u64) as usize],
            ));
        }
        id
    };
    [next(), next()]
}

/// The job names of storage node `index` with their systemd descriptions.
pub fn storage_jobs(index: usize) -> Vec<(String, String)> {
    let mut jobs: Vec<(String, String)> = vec![
        (
            "ovs-watcher-framework".into(),
            "Watcher for Open vStorage framework".into(),
        ),
        ("ovs-webapp-api".into(), "Open vStorage webapp API".into()),
    ];
    for c in ARAKOON_CLUSTERS {
        jobs.push((
            format!("ovs-arakoon-{c}"),
            format!("Arakoon service for cluster {c}"),
        ));
    }
    jobs.push((
        "ovs-volumedriver_vpool1".into(),
        "Open vStorage volumedriver (vpool1)".into(),
    ));
    jobs.push(("ovs-albaproxy_vpool1".into(), "ALBA proxy (vpool1)".into()));
    jobs.push((
        "ovs-alba-maintenance_mybackend".into(),
        "ALBA maintenance (mybackend)".into(),
    ));
    jobs.push((
        "ovs-alba-rebalancer_mybackend".into(),
        "ALBA rebalancer (mybackend)".into(),
    ));
    for id in asd_ids(index) {
        jobs.push((format!("alba-asd-{id}"), format!("ALBA ASD {id}")));
    }
    jobs
}

/// The VMs of storage node `index`: (name, running). Node 0 has a VM whose name holds a
/// space and a single quote, for quoting tests.
pub fn storage_vms(index: usize) -> Vec<(String, bool)> {
    let mut vms = vec![
        (format!("vm-{index}-web"), true),
        (format!("vm-{index}-db"), true),
        (format!("vm-{index}-old"), false),
    ];
    if index == 0 {
        vms.push(("vm-0 o'brien test".into(), true));
    }
    vms
}

fn base(name: &str, init: Init, apt: AptVariant) -> NodeState {
    NodeState {
        name: name.to_owned(),
        apt_variant: apt,
        init,
        packages: BTreeMap::new(),
        jobs: BTreeMap::new(),
        next_pid: 1200,
        memcached_running: false,
        domains: BTreeMap::new(),
        shutdown_secs: 1.0,
        next_domain_id: 1,
        agent_pid: None,
        backplane1: None,
        history: Vec::new(),
        faults: Faults::default(),
        files: BTreeMap::new(),
    }
}

fn base_files(state: &mut NodeState) {
    let fs = VirtualFs::new(std::mem::take(&mut state.files));
    let mut dirs = vec![
        "/etc".to_owned(),
        "/tmp".to_owned(),
        "/var/lib/dpkg".to_owned(),
        format!("{ARCHIVES}/partial"),
    ];
    if state.init == Init::Systemd {
        dirs.push("/run/systemd/system".into());
    } else {
        dirs.push("/run".into());
    }
    for d in dirs {
        // A fresh VirtualFs cannot fail to create directories.
        let _ = fs.create_dir_all(&d);
    }
    state.files = fs.into_entries();
}

/// A storage node: OVS packages one release behind the repository (the apt lists learn it
/// with `apt-get update`), all OVS jobs and ASDs running, memcached and the agent running,
/// backplane1 `10.107.1.(11+index)/24`, VMs running plus one shut off, and the Arakoon
/// config dirs and `settings.py` in its virtual filesystem.
pub fn storage_node(name: &str, index: usize, init: Init, apt: AptVariant) -> NodeState {
    let mut s = base(name, init, apt);
    for (names, old, new) in [FRAMEWORK, VOLUMEDRIVER, ALBA, ARAKOON] {
        for n in names {
            s.packages.insert(
                (*n).to_owned(),
                Package {
                    installed: Some(old.to_owned()),
                    candidate: Some(old.to_owned()),
                    repository: vec![old.to_owned(), new.to_owned()],
                    downloads: 0,
                },
            );
        }
    }
    s.packages.insert(
        "memcached".into(),
        Package {
            installed: Some("1.4.25-2ubuntu1".into()),
            candidate: Some("1.4.25-2ubuntu1".into()),
            repository: vec!["1.4.25-2ubuntu1".into()],
            downloads: 0,
        },
    );
    s.next_pid = 1200 + 100 * u32::try_from(index % 300).unwrap_or(0);
    for (job, description) in storage_jobs(index) {
        let pid = s.alloc_pid();
        s.jobs.insert(
            job,
            Job {
                running: true,
                pid,
                failed: false,
                description,
            },
        );
    }
    s.memcached_running = true;
    s.agent_pid = Some(s.alloc_pid());
    s.backplane1 = Some(format!("10.107.1.{}/24", 11 + index % 240));
    let mut vms = storage_vms(index);
    vms.sort();
    for (vm, running) in vms {
        let id = running.then(|| {
            let id = s.next_domain_id;
            s.next_domain_id += 1;
            id
        });
        s.domains.insert(
            vm,
            Domain {
                run: if running {
                    DomainRun::Running
                } else {
                    DomainRun::ShutOff
                },
                shutdown_started_ms: None,
                id,
            },
        );
    }
    base_files(&mut s);
    let fs = VirtualFs::new(std::mem::take(&mut s.files));
    for c in ARAKOON_CLUSTERS {
        let dir = format!("{ARAKOON_CONFIG}/{c}");
        let _ = fs.create_dir_all(&dir);
        let _ = fs.write(
            &format!("{dir}/{c}.cfg"),
            &format!("[global]\ncluster_id = {c}\ncluster = {name}\n"),
        );
    }
    let _ = fs.create_dir_all("/opt/OpenvStorage/webapps/api");
    let _ = fs.write(SETTINGS_PY, SETTINGS_CONTENT);
    s.files = fs.into_entries();
    s
}

/// An `ovc_*` controller instance: no Open vStorage packages, jobs or VMs.
pub fn controller_node(name: &str) -> NodeState {
    let mut s = base(name, Init::Upstart, AptVariant::V1_0);
    base_files(&mut s);
    s
}

/// Writes the seed's files (its virtual filesystem) into `fs`: directories first, then files.
pub fn materialize(state: &NodeState, fs: &dyn Fs) -> io::Result<()> {
    for (path, entry) in &state.files {
        if *entry == FsEntry::Dir {
            fs.create_dir_all(path)?;
        }
    }
    for (path, entry) in &state.files {
        if let FsEntry::File(content) = entry {
            let p = normalize(path);
            if let Some((parent, _)) = p.rsplit_once('/')
                && !parent.is_empty()
            {
                fs.create_dir_all(parent)?;
            }
            fs.write(&p, content)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::fs::RealFs;

    #[test]
    fn seeds_are_distinct_and_materialize() {
        let a = storage_node("node1", 0, Init::Upstart, AptVariant::V1_0);
        let b = storage_node("node2", 1, Init::Systemd, AptVariant::V1_2);
        assert_ne!(asd_ids(0), asd_ids(1));
        assert_eq!(a.jobs.len(), 12);
        assert_eq!(b.backplane1.as_deref(), Some("10.107.1.12/24"));
        assert!(a.jobs.values().all(|j| j.running));
        assert!(b.files.contains_key("/run/systemd/system"));
        assert!(!a.files.contains_key("/run/systemd/system"));
        let pids: std::collections::BTreeSet<u32> = a.jobs.values().map(|j| j.pid).collect();
        assert_eq!(pids.len(), 12);
        let c = controller_node("ovc_master");
        assert!(c.packages.is_empty() && c.jobs.is_empty() && c.domains.is_empty());
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = RealFs::new(dir.path());
        materialize(&b, &fs).expect("materialize");
        assert!(
            dir.path()
                .join("opt/OpenvStorage/config/arakoon/ovsdb")
                .is_dir()
        );
        assert!(dir.path().join("run/systemd/system").is_dir());
        let settings =
            std::fs::read_to_string(dir.path().join("opt/OpenvStorage/webapps/api/settings.py"))
                .expect("settings");
        assert!(settings.contains("ALLOWED_HOSTS = ['localhost']\n"));
    }
}
