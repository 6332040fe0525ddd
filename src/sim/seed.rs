//! Ready-made node states: a realistic Open vStorage storage node of a [`Layout`] with updates
//! pending for all four components (once `apt-get update` has run), and an `ovc_*`
//! controller instance. [`materialize`] writes a seed's files into a filesystem, which is how
//! the SSH test bed prepares a real test node.

use std::collections::BTreeMap;
use std::io;

use super::arakoon;
use super::fs::{Fs, FsEntry, VirtualFs, normalize};
use super::layout::Layout;
use super::state::{
    AptVariant, Domain, DomainRun, Faults, Init, Job, NodeState, Package, PkgStatus,
};
use super::tools::apt::ARCHIVES;

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
/// The Arakoon clusters of the legacy [`Layout::uniform`] layout.
pub const ARAKOON_CLUSTERS: [&str; 4] = ["ovsdb", "voldrv", "mybackend-abm", "mybackend-nsm_0"];
/// The webapp settings file the framework upgrade patches.
pub const SETTINGS_PY: &str = "/opt/OpenvStorage/webapps/api/settings.py";
/// The node's machine id file.
pub const MACHINE_ID_FILE: &str = "/etc/openvstorage_id";

const SETTINGS_CONTENT: &str = "# Open vStorage API settings (simulated)\n\
DEBUG = False\n\
ALLOWED_HOSTS = ['localhost']\n\
TIME_ZONE = 'UTC'\n\
BASE_FOLDER = '/opt/OpenvStorage/webapps/api'\n";

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `len` characters of [A-Za-z0-9] from a seed (a linear congruential generator).
fn id_chars(mut seed: u64, len: usize) -> (String, u64) {
    let mut id = String::with_capacity(len);
    for _ in 0..len {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        id.push(char::from(
            ALPHABET[((seed >> 33) % ALPHABET.len() as u64) as usize],
        ));
    }
    (id, seed)
}

/// FNV-1a of a name.
fn hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The machine id of storage node `name` (`/etc/openvstorage_id`): 16 characters of
/// [A-Za-z0-9], stable per name. Arakoon names its members by it.
pub fn machine_id(name: &str) -> String {
    id_chars(hash(name) ^ 0x5bd1_e995_9e37_79b9, 16).0
}

/// The backplane1 address of storage node `index` (`10.107.1.11` for the first).
pub fn backplane_ip(index: usize) -> String {
    format!("10.107.1.{}", 11 + index % 240)
}

/// `count` ALBA ASD ids of storage node `index` (8 characters each, stable per index).
pub fn asd_id_list(index: usize, count: u32) -> Vec<String> {
    let mut seed = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x6a09_e667_f3bc_c908;
    (0..count)
        .map(|_| {
            let (id, next) = id_chars(seed, 8);
            seed = next;
            id
        })
        .collect()
}

/// The first two ASD ids of storage node `index` (those of the legacy layout).
pub fn asd_ids(index: usize) -> [String; 2] {
    let mut v = asd_id_list(index, 2).into_iter();
    [v.next().unwrap_or_default(), v.next().unwrap_or_default()]
}

/// What dpkg and apt know of a package: summary, section, and sizes per version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInfo {
    /// The one-line description (`dpkg --audit`, `apt-cache show`).
    pub summary: &'static str,
    /// The archive section.
    pub section: &'static str,
    /// Installed size, KiB (`Installed-Size:`).
    pub installed_kib: u64,
    /// The `.deb`'s size, bytes (`Size:`).
    pub deb_bytes: u64,
}

/// The package facts of `name` at `version` (sizes vary a little between versions).
pub fn package_info(name: &str, version: &str) -> PackageInfo {
    let (summary, section, kib): (&'static str, &'static str, u64) = match name {
        "openvstorage" => ("Open vStorage", "python", 112),
        "openvstorage-core" => ("Open vStorage core", "python", 41_250),
        "openvstorage-backend" => ("Open vStorage backend plugin", "python", 4_310),
        "openvstorage-webapps" => ("Open vStorage Web Applications", "python", 26_880),
        "volumedriver-base" => ("VolumeDriver common files", "misc", 15_620),
        "volumedriver-server" => ("VolumeDriver server", "misc", 187_400),
        "alba" => ("ALBA: the Open vStorage backend", "misc", 98_700),
        "arakoon" => ("Arakoon: a distributed key-value store", "database", 31_900),
        "memcached" => ("high-performance memory object caching system", "web", 206),
        _ => ("simulated package", "misc", 1_024),
    };
    let wobble = hash(version) % 97;
    let installed_kib = kib + kib * wobble / 1000;
    PackageInfo {
        summary,
        section,
        installed_kib,
        deb_bytes: installed_kib * 1024 * 31 / 100 + 4_096 + wobble,
    }
}

/// The job names of storage node `index` of `layout` with their systemd descriptions:
/// the framework's, a member per Arakoon cluster it belongs to, a volume driver and an ALBA
/// proxy per vpool it serves, maintenance and rebalancer per backend, one per ASD.
pub fn storage_jobs(layout: &Layout, index: usize) -> Vec<(String, String)> {
    let Some(node) = layout.nodes.get(index) else {
        return Vec::new();
    };
    let mut jobs: Vec<(String, String)> = vec![
        (
            "ovs-watcher-framework".into(),
            "Watcher for Open vStorage framework".into(),
        ),
        ("ovs-webapp-api".into(), "Open vStorage webapp API".into()),
    ];
    for c in layout.clusters_of(&node.name) {
        jobs.push((
            arakoon::job_name(&c.name),
            format!("Arakoon service for cluster {}", c.name),
        ));
    }
    for vp in &node.vpools {
        jobs.push((
            format!("ovs-volumedriver_{vp}"),
            format!("Open vStorage volumedriver ({vp})"),
        ));
        jobs.push((format!("ovs-albaproxy_{vp}"), format!("ALBA proxy ({vp})")));
    }
    for b in &node.backends {
        jobs.push((
            format!("ovs-alba-maintenance_{b}"),
            format!("ALBA maintenance ({b})"),
        ));
        jobs.push((
            format!("ovs-alba-rebalancer_{b}"),
            format!("ALBA rebalancer ({b})"),
        ));
    }
    for id in asd_id_list(index, node.asds) {
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

/// When the jobs of a freshly seeded node started: about a day before `now_ms`, on a whole
/// hour (so that nodes seeded one after the other agree), minus a per-node offset of whole
/// seconds (so that the longest-running member, the master, is not always the first node).
pub fn boot_ms(name: &str, now_ms: u64) -> u64 {
    const HOUR: u64 = 3_600_000;
    (now_ms / HOUR * HOUR).saturating_sub(24 * HOUR + (hash(name) % 3_000) * 1000)
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
        machine_id: None,
        apt_updated_ms: None,
        history: Vec::new(),
        faults: Faults::default(),
        files: BTreeMap::new(),
    }
}

/// The directories every simulated node has (`/etc`, `/tmp`, apt's and dpkg's, and
/// `/run/systemd/system` on a systemd node, which is how its init system is detected).
pub fn base_files(state: &mut NodeState) {
    let fs = VirtualFs::new(std::mem::take(&mut state.files));
    let mut dirs = vec![
        "/etc".to_owned(),
        "/tmp".to_owned(),
        "/var/lib/dpkg".to_owned(),
        "/var/lib/apt/lists".to_owned(),
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

fn seed_packages(s: &mut NodeState) {
    for (names, old, new) in [FRAMEWORK, VOLUMEDRIVER, ALBA, ARAKOON] {
        for n in names {
            s.packages.insert(
                (*n).to_owned(),
                Package {
                    installed: Some(old.to_owned()),
                    status: PkgStatus::Installed,
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
            status: PkgStatus::Installed,
            candidate: Some("1.4.25-2ubuntu1".into()),
            repository: vec!["1.4.25-2ubuntu1".into()],
            downloads: 0,
        },
    );
}

fn seed_vms(s: &mut NodeState, index: usize) {
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
}

/// The files of storage node `index`: its machine id, the config of every Arakoon cluster of
/// the environment (members or not), and the webapp settings.
fn seed_files(s: &mut NodeState, layout: &Layout) {
    base_files(s);
    let fs = VirtualFs::new(std::mem::take(&mut s.files));
    if let Some(id) = &s.machine_id {
        let _ = fs.write(MACHINE_ID_FILE, &format!("{id}\n"));
    }
    for (k, c) in layout.clusters.iter().enumerate() {
        let dir = format!("{}/{}", arakoon::CONFIG_DIR, c.name);
        let _ = fs.create_dir_all(&dir);
        if let Some(cfg) = arakoon::render_cfg(layout, k) {
            let _ = fs.write(&arakoon::cfg_path(&c.name), &cfg);
        }
    }
    let _ = fs.create_dir_all("/opt/OpenvStorage/webapps/api");
    let _ = fs.write(SETTINGS_PY, SETTINGS_CONTENT);
    s.files = fs.into_entries();
}

/// Storage node `index` of `layout`, seeded at wall-clock time `now_ms`: OVS packages one
/// release behind the repository (the apt lists learn it with `apt-get update`; the lists
/// were never updated, so there is no update stamp), the jobs of [`storage_jobs`] running
/// since [`boot_ms`], memcached and the agent running, backplane1 `10.107.1.(11+index)/24`,
/// VMs running plus one shut off, and its files (see `seed_files`) in its virtual
/// filesystem. `None` when the layout has no node `index`.
pub fn storage_node(layout: &Layout, index: usize, now_ms: u64) -> Option<NodeState> {
    let node = layout.nodes.get(index)?;
    let mut s = base(&node.name, node.init, node.apt);
    seed_packages(&mut s);
    s.next_pid = 1200 + 100 * u32::try_from(index % 300).unwrap_or(0);
    let started_ms = boot_ms(&node.name, now_ms);
    for (job, description) in storage_jobs(layout, index) {
        let pid = s.alloc_pid();
        s.jobs.insert(
            job,
            Job {
                running: true,
                pid,
                failed: false,
                description,
                started_ms,
            },
        );
    }
    s.memcached_running = true;
    s.agent_pid = Some(s.alloc_pid());
    s.backplane1 = Some(format!("{}/24", backplane_ip(index)));
    s.machine_id = Some(machine_id(&node.name));
    seed_vms(&mut s, index);
    seed_files(&mut s, layout);
    Some(s)
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
        let layout = Layout::uniform(2);
        let now = crate::sim::state::now_ms();
        let a = storage_node(&layout, 0, now).expect("node 0");
        let b = storage_node(&layout, 1, now).expect("node 1");
        assert!(storage_node(&layout, 2, now).is_none());
        assert_ne!(asd_ids(0), asd_ids(1));
        assert_eq!(asd_id_list(0, 3)[..2], asd_ids(0));
        assert_eq!(a.jobs.len(), 12);
        assert_eq!(b.backplane1.as_deref(), Some("10.107.1.12/24"));
        assert!(a.jobs.values().all(|j| j.running && j.started_ms < now));
        assert!(b.files.contains_key("/run/systemd/system"));
        assert!(!a.files.contains_key("/run/systemd/system"));
        let pids: std::collections::BTreeSet<u32> = a.jobs.values().map(|j| j.pid).collect();
        assert_eq!(pids.len(), 12);
        let c = controller_node("ovc_master");
        assert!(c.packages.is_empty() && c.jobs.is_empty() && c.domains.is_empty());
        assert!(c.machine_id.is_none());
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = RealFs::new(dir.path());
        materialize(&b, &fs).expect("materialize");
        assert!(
            dir.path()
                .join("opt/OpenvStorage/config/arakoon/ovsdb/ovsdb.cfg")
                .is_file()
        );
        assert!(dir.path().join("run/systemd/system").is_dir());
        let settings =
            std::fs::read_to_string(dir.path().join("opt/OpenvStorage/webapps/api/settings.py"))
                .expect("settings");
        assert!(settings.contains("ALLOWED_HOSTS = ['localhost']\n"));
        let id = std::fs::read_to_string(dir.path().join("etc/openvstorage_id")).expect("id");
        assert_eq!(id, format!("{}\n", machine_id("node-02")));
    }

    #[test]
    fn machine_ids_are_16_alphanumerics_stable_and_distinct() {
        let id = machine_id("node-01");
        assert_eq!(id.len(), 16);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
        assert_eq!(id, machine_id("node-01"));
        let ids: std::collections::BTreeSet<String> = (0..64)
            .map(|i| machine_id(&crate::sim::layout::storage_name(i)))
            .collect();
        assert_eq!(ids.len(), 64);
    }

    #[test]
    fn member_jobs_only_on_members() {
        let layout = Layout::default_for(3);
        let now = crate::sim::state::now_ms();
        let jobs = |i: usize| -> Vec<String> {
            storage_node(&layout, i, now)
                .expect("node")
                .jobs
                .into_keys()
                .collect()
        };
        let n1 = jobs(0);
        assert!(n1.contains(&"ovs-arakoon-ovsdb".to_owned()));
        assert!(!n1.iter().any(|j| j.contains("mybackend")), "{n1:?}");
        assert!(!n1.iter().any(|j| j.starts_with("alba-asd-")), "{n1:?}");
        assert!(n1.contains(&"ovs-volumedriver_vpool1".to_owned()));
        assert!(!n1.contains(&"ovs-volumedriver_vpool2".to_owned()));
        let n3 = jobs(2);
        for j in [
            "ovs-arakoon-mybackend-abm",
            "ovs-arakoon-mybackend-nsm_0",
            "ovs-alba-maintenance_mybackend",
            "ovs-alba-rebalancer_mybackend",
            "ovs-albaproxy_vpool2",
            "ovs-webapp-api",
            "ovs-watcher-framework",
        ] {
            assert!(n3.contains(&j.to_owned()), "{j}: {n3:?}");
        }
        assert!(!jobs(1).contains(&"ovs-arakoon-mybackend-nsm_0".to_owned()));
        assert_eq!(n3.iter().filter(|j| j.starts_with("alba-asd-")).count(), 2);
    }

    #[test]
    fn every_storage_node_holds_every_config_identically() {
        let layout = Layout::five_nodes().expect("five nodes");
        let now = crate::sim::state::now_ms();
        let nodes: Vec<NodeState> = (0..5)
            .map(|i| storage_node(&layout, i, now).expect("node"))
            .collect();
        for c in &layout.clusters {
            let path = arakoon::cfg_path(&c.name);
            let first = &nodes[0].files[&path];
            for n in &nodes {
                assert_eq!(&n.files[&path], first, "{} on {}", c.name, n.name);
            }
        }
        let fs = VirtualFs::new(nodes[0].files.clone());
        assert_eq!(
            fs.list_dir(arakoon::CONFIG_DIR).expect("ls"),
            vec![
                "mybackend-abm",
                "mybackend-nsm_0",
                "mybackend-nsm_1",
                "ovsdb",
                "voldrv"
            ]
        );
    }

    #[test]
    fn package_sizes_are_realistic() {
        let a = package_info("alba", "0.9.18-1");
        assert!(
            a.installed_kib > 90_000 && a.deb_bytes > 20_000_000,
            "{a:?}"
        );
        assert_eq!(a, package_info("alba", "0.9.18-1"));
        assert_eq!(a.summary, "ALBA: the Open vStorage backend");
    }
}
