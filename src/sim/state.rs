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

/// One package as dpkg and apt see it on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// The installed version, if any.
    pub installed: Option<String>,
    /// The candidate version the apt lists know (only `apt-get update` refreshes it).
    pub candidate: Option<String>,
    /// The versions the repository holds.
    pub repository: Vec<String>,
    /// How many times this node fetched a `.deb` of this package from the repository.
    pub downloads: u32,
}

impl Package {
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

/// Fault knobs: make the node misbehave the way real nodes do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// The apt/dpkg locks are held by another process.
    pub apt_lock: bool,
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
