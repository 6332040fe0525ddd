//! The state of one simulated node, as one serde JSON document. Everything a command can
//! observe or change lives here (packages, jobs, VMs, the agent, the virtual filesystem,
//! fault knobs), so that a node survives between commands, between processes and between
//! the in-process and the multi-call binary uses of the simulator.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::fs::FsEntry;
use super::version;

/// Which apt generation the node runs; the two print version tables and warnings differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AptVariant {
    /// apt 1.0 (Ubuntu 14.04): version lines with priority 0, needs `--force-yes`.
    #[serde(rename = "1.0")]
    V1_0,
    /// apt 1.2 (Ubuntu 16.04): real priorities, warns that `--force-yes` is deprecated.
    #[serde(rename = "1.2")]
    V1_2,
}

/// The node's init system; a node answers only its own init tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// Upstart 1.12: `initctl`, `start`, `stop`, `status`, `restart`.
    Upstart,
    /// systemd 229: `systemctl`.
    Systemd,
}

/// dpkg's state of a package (`${db:Status-Abbrev}` of `dpkg-query`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PkgStatus {
    /// `ii `: installed and configured.
    #[default]
    Installed,
    /// `iU `: unpacked, not configured.
    Unpacked,
    /// `iF `: half-configured (its postinst failed).
    HalfConfigured,
    /// `iW `: awaiting the processing of triggers.
    TriggersAwaited,
    /// `iHR`: half-installed, reinstallation required.
    HalfInstalled,
    /// `rc `: removed, configuration files left.
    ConfigFiles,
}

impl PkgStatus {
    /// Every status, for parsing.
    pub const ALL: [PkgStatus; 6] = [
        PkgStatus::Installed,
        PkgStatus::Unpacked,
        PkgStatus::HalfConfigured,
        PkgStatus::TriggersAwaited,
        PkgStatus::HalfInstalled,
        PkgStatus::ConfigFiles,
    ];

    /// The three characters `${db:Status-Abbrev}` prints.
    pub fn abbrev(self) -> &'static str {
        match self {
            PkgStatus::Installed => "ii ",
            PkgStatus::Unpacked => "iU ",
            PkgStatus::HalfConfigured => "iF ",
            PkgStatus::TriggersAwaited => "iW ",
            PkgStatus::HalfInstalled => "iHR",
            PkgStatus::ConfigFiles => "rc ",
        }
    }

    /// The `Status:` field (`${Status}`): want, error flag, state.
    pub fn status_field(self) -> &'static str {
        match self {
            PkgStatus::Installed => "install ok installed",
            PkgStatus::Unpacked => "install ok unpacked",
            PkgStatus::HalfConfigured => "install ok half-configured",
            PkgStatus::TriggersAwaited => "install ok triggers-awaited",
            PkgStatus::HalfInstalled => "install reinstreq half-installed",
            PkgStatus::ConfigFiles => "deinstall ok config-files",
        }
    }

    /// The state word dpkg uses in messages (`half-configured`).
    pub fn word(self) -> &'static str {
        self.status_field()
            .rsplit(' ')
            .next()
            .unwrap_or("installed")
    }

    /// From an abbreviation (`iF`, `iF `) or a state word (`half-configured`).
    pub fn parse(s: &str) -> Option<PkgStatus> {
        let s = s.trim();
        PkgStatus::ALL
            .into_iter()
            .find(|p| p.abbrev().trim_end() == s || p.word() == s)
    }

    /// Whether dpkg left the package in the middle of an operation (apt refuses to go on).
    pub fn interrupted(self) -> bool {
        matches!(self, PkgStatus::Unpacked | PkgStatus::HalfConfigured)
    }
}

/// One package as dpkg and apt see it on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// The installed version, if any (for `rc ` the version whose files are left).
    pub installed: Option<String>,
    /// dpkg's state of the installed version.
    #[serde(default)]
    pub status: PkgStatus,
    /// The candidate version the apt lists know (only `apt-get update` refreshes it).
    pub candidate: Option<String>,
    /// The versions the repository holds.
    pub repository: Vec<String>,
    /// How many times this node fetched a `.deb` of this package from the repository.
    pub downloads: u32,
}

impl Package {
    /// The version apt counts as installed (`Installed:` of `apt-cache policy`): none for
    /// a package removed with its configuration files left.
    pub fn apt_installed(&self) -> Option<&str> {
        match self.status {
            PkgStatus::ConfigFiles => None,
            _ => self.installed.as_deref(),
        }
    }

    /// The newest version the repository holds.
    pub fn newest_in_repository(&self) -> Option<&str> {
        self.repository
            .iter()
            .max_by(|a, b| version::compare(a, b))
            .map(String::as_str)
    }
}

/// One upstart job or systemd service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Whether its main process runs.
    pub running: bool,
    /// Its main pid when running (0 otherwise).
    pub pid: u32,
    /// Whether its last start failed (systemd shows `failed`).
    #[serde(default)]
    pub failed: bool,
    /// The unit description systemd prints.
    #[serde(default)]
    pub description: String,
    /// Wall-clock time (ms since the epoch) its main process last started.
    #[serde(default)]
    pub started_ms: u64,
}

/// Why a job did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// The node has no such job.
    Unknown,
    /// It was started and failed at once (a `failing_services` or `down` fault).
    Failed,
}

/// The stored state of a libvirt domain; what `virsh` shows is computed with [`NodeState::domain_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainRun {
    /// Running (possibly shutting down, see [`Domain::shutdown_started_ms`]).
    Running,
    /// Paused.
    Paused,
    /// Shut off.
    ShutOff,
    /// Crashed.
    Crashed,
}

/// A libvirt domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// The stored run state.
    pub run: DomainRun,
    /// Wall-clock time (ms since the epoch) a shutdown was requested, while it is in progress.
    #[serde(default)]
    pub shutdown_started_ms: Option<u64>,
    /// The libvirt domain id while active.
    #[serde(default)]
    pub id: Option<u32>,
}

/// What `virsh domstate` prints for a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomState {
    /// `running`
    Running,
    /// `in shutdown`
    InShutdown,
    /// `shut off`
    ShutOff,
    /// `paused`
    Paused,
    /// `crashed`
    Crashed,
}

impl DomState {
    /// The text virsh prints.
    pub fn as_str(self) -> &'static str {
        match self {
            DomState::Running => "running",
            DomState::InShutdown => "in shutdown",
            DomState::ShutOff => "shut off",
            DomState::Paused => "paused",
            DomState::Crashed => "crashed",
        }
    }

    /// Whether libvirt counts the domain as active (listed by `virsh list`).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            DomState::Running | DomState::InShutdown | DomState::Paused
        )
    }
}

/// How long an Arakoon election takes when a fault does not say (ms).
pub const DEFAULT_ELECTION_MS: u64 = 500;
/// Free bytes of a node's filesystem when a fault does not say (plenty: 48 GiB).
pub const DEFAULT_FREE_BYTES: u64 = 51_539_607_552;
/// The command name of the process holding the apt/dpkg locks (as `ps`/`fuser` show it).
pub const LOCK_HOLDER: &str = "unattended-upgr";
/// Its pid when no fault set one.
pub const LOCK_HOLDER_PID: u32 = 2987;

/// Fault knobs: make the node misbehave the way real nodes do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// The apt/dpkg locks are held by another process (until cleared).
    pub apt_lock: bool,
    /// The apt/dpkg locks are held by another process until this wall-clock time (ms).
    pub apt_lock_until_ms: Option<u64>,
    /// The pid of the process holding the locks.
    pub apt_lock_pid: Option<u32>,
    /// The Open vStorage apt source fails (`apt-get update` cannot fetch it).
    pub failing_sources: bool,
    /// Jobs that are down: stopped when the fault was set, and failing to start.
    pub down: Vec<String>,
    /// Arakoon clusters whose elections never end (no master, ever).
    pub stalled_elections: Vec<String>,
    /// How long an Arakoon election takes after a member starts (ms; default 500).
    pub election_ms: Option<u64>,
    /// Free bytes of the node's filesystem (default 48 GiB).
    pub free_bytes: Option<u64>,
    /// How long fetching each `.deb` takes (ms).
    pub download_ms: u64,
    /// Packages whose installation fails in dpkg.
    pub failing_installs: Vec<String>,
    /// Domains that ignore `virsh shutdown`.
    pub stuck_vms: Vec<String>,
    /// Jobs that fail to start.
    pub failing_services: Vec<String>,
    /// Tool names (e.g. `apt-get`) that hang until killed.
    pub hang: Vec<String>,
    /// Delay before every answer, in milliseconds.
    pub slow_ms: u64,
}

impl Faults {
    /// Whether another process holds the apt/dpkg locks at wall-clock time `now_ms`.
    pub fn apt_lock_held(&self, now_ms: u64) -> bool {
        self.apt_lock || self.apt_lock_until_ms.is_some_and(|until| now_ms < until)
    }

    /// The election window in force.
    pub fn election_ms(&self) -> u64 {
        self.election_ms.unwrap_or(DEFAULT_ELECTION_MS)
    }
}

/// The whole state of one simulated node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    /// The node's name.
    pub name: String,
    /// The apt generation.
    pub apt_variant: AptVariant,
    /// The init system.
    pub init: Init,
    /// Packages by name.
    pub packages: BTreeMap<String, Package>,
    /// Upstart jobs / systemd services by name (without `.service`).
    pub jobs: BTreeMap<String, Job>,
    /// The next pid handed to a started process.
    pub next_pid: u32,
    /// Whether memcached (a SysV service) runs.
    pub memcached_running: bool,
    /// libvirt domains by name.
    pub domains: BTreeMap<String, Domain>,
    /// How long a guest takes to shut down, in seconds of wall-clock time.
    pub shutdown_secs: f64,
    /// The next libvirt domain id.
    #[serde(default = "one")]
    pub next_domain_id: u32,
    /// The pid of the cloud agent listening on 4446/tcp, if it runs.
    pub agent_pid: Option<u32>,
    /// The IPv4 address and prefix of `backplane1` (`10.107.1.11/24`), if the node has one.
    pub backplane1: Option<String>,
    /// The node's machine id (`/etc/openvstorage_id`); storage nodes only.
    #[serde(default)]
    pub machine_id: Option<String>,
    /// Wall-clock time (ms) of the last `apt-get update` that fetched every source: what
    /// `stat -c %Y /var/lib/apt/periodic/update-success-stamp` shows. `None`: never.
    #[serde(default)]
    pub apt_updated_ms: Option<u64>,
    /// Every command line the node received, in order.
    #[serde(default)]
    pub history: Vec<String>,
    /// Fault knobs.
    #[serde(default)]
    pub faults: Faults,
    /// The virtual filesystem (used by in-process nodes; empty for nodes on a real filesystem).
    #[serde(default)]
    pub files: BTreeMap<String, FsEntry>,
}

fn one() -> u32 {
    1
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl NodeState {
    /// Hands out a fresh pid.
    pub fn alloc_pid(&mut self) -> u32 {
        let pid = self.next_pid;
        self.next_pid += 1;
        pid
    }

    /// The backplane1 address without its prefix (`10.107.1.11`).
    pub fn backplane_ip(&self) -> Option<&str> {
        self.backplane1
            .as_deref()
            .map(|a| a.split_once('/').map_or(a, |(ip, _)| ip))
    }

    /// Whether `job` cannot start (a `failing_services` or `down` fault names it).
    pub fn job_blocked(&self, job: &str) -> bool {
        self.faults.failing_services.iter().any(|j| j == job)
            || self.faults.down.iter().any(|j| j == job)
    }

    /// Starts `job` (a running one gets a new process): a new pid and start time, or the
    /// failure a fault makes it. A failed start leaves the job stopped and `failed`.
    pub fn start_job(&mut self, job: &str, now_ms: u64) -> Result<u32, StartError> {
        if !self.jobs.contains_key(job) {
            return Err(StartError::Unknown);
        }
        let blocked = self.job_blocked(job);
        let pid = if blocked { 0 } else { self.alloc_pid() };
        let j = self.jobs.get_mut(job).ok_or(StartError::Unknown)?;
        j.running = !blocked;
        j.pid = pid;
        j.failed = blocked;
        if blocked {
            return Err(StartError::Failed);
        }
        j.started_ms = now_ms;
        Ok(pid)
    }

    /// Stops `job` (clearing a failed state); false when the node has no such job.
    pub fn stop_job(&mut self, job: &str) -> bool {
        match self.jobs.get_mut(job) {
            Some(j) => {
                j.running = false;
                j.pid = 0;
                j.failed = false;
                true
            }
            None => false,
        }
    }

    /// The state `virsh domstate` shows for a domain at wall-clock time `now_ms`.
    pub fn domain_state(&self, name: &str, now_ms: u64) -> Option<DomState> {
        let d = self.domains.get(name)?;
        Some(match d.run {
            DomainRun::Running => match d.shutdown_started_ms {
                Some(_) if self.faults.stuck_vms.iter().any(|v| v == name) => DomState::Running,
                Some(started) => {
                    let elapsed = now_ms.saturating_sub(started) as f64 / 1000.0;
                    if elapsed >= self.shutdown_secs {
                        DomState::ShutOff
                    } else {
                        DomState::InShutdown
                    }
                }
                None => DomState::Running,
            },
            DomainRun::Paused => DomState::Paused,
            DomainRun::ShutOff => DomState::ShutOff,
            DomainRun::Crashed => DomState::Crashed,
        })
    }

    /// Stores the clock-derived state of every domain (a finished shutdown becomes `ShutOff`).
    pub fn settle_domains(&mut self, now_ms: u64) {
        let names: Vec<String> = self.domains.keys().cloned().collect();
        for name in names {
            if self.domain_state(&name, now_ms) == Some(DomState::ShutOff)
                && let Some(d) = self.domains.get_mut(&name)
            {
                d.run = DomainRun::ShutOff;
                d.shutdown_started_ms = None;
                d.id = None;
            }
        }
    }
}
