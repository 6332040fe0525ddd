//! The `ovs-sim` program: a multi-call binary that impersonates a node's tools (invoked as
//! `apt-get`, `virsh`, `initctl`, `arakoon`, `dpkg`, `df`… through symlinks, acting on the
//! node whose state file is `$OVS_SIM_STATE` over the real filesystem), and a small CLI to
//! seed, inspect and break a simulated node. Tools exit with their own codes; `ovs-sim`'s own
//! errors exit 2 (usage) or 1 (state file problem).
//!
//! A node's peers (the other members of its Arakoon clusters) are the state files beside its
//! own: the test bed seeds every node with `ovs-sim --state DIR/NODE.json seed --node NODE
//! --layout DIR/layout.json`, DIR being one directory every node sees at the same path.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use super::cluster;
use super::error::SimError;
use super::fs::RealFs;
use super::layout::{self, Layout};
use super::seed;
use super::state::{AptVariant, Init, NodeState, PkgStatus, now_ms};
use super::store::Store;
use super::{SimNode, SimOutput};

/// The default state file of a test node.
pub const DEFAULT_STATE: &str = "/var/lib/ovs-sim/state.json";

/// Tool names the binary answers to when invoked through a link of that name.
pub const TOOLS: [&str; 19] = [
    "apt-get",
    "apt-cache",
    "dpkg-query",
    "dpkg",
    "arakoon",
    "df",
    "stat",
    "initctl",
    "start",
    "stop",
    "status",
    "restart",
    "systemctl",
    "memcached",
    "virsh",
    "fuser",
    "ays",
    "ip",
    "python",
];

/// Links every node gets, whatever its init system.
pub const COMMON_LINKS: [&str; 12] = [
    "apt-get",
    "apt-cache",
    "dpkg-query",
    "dpkg",
    "arakoon",
    "df",
    "stat",
    "virsh",
    "fuser",
    "ays",
    "ip",
    "python",
];
/// Links of upstart nodes.
pub const UPSTART_LINKS: [&str; 5] = ["initctl", "start", "stop", "status", "restart"];
/// Links of systemd nodes.
pub const SYSTEMD_LINKS: [&str; 1] = ["systemctl"];

/// An error of `ovs-sim` itself (not of the impersonated tool).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The state file could not be used: exit 1.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// Another I/O failure (links, materializing files): exit 1.
    #[error("{what}: {source}")]
    Io {
        /// What failed.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// The exit status for this error.
    pub fn code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Sim(_) | CliError::Io { .. } => 1,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum InitArg {
    Upstart,
    Systemd,
}

impl From<InitArg> for Init {
    fn from(i: InitArg) -> Init {
        match i {
            InitArg::Upstart => Init::Upstart,
            InitArg::Systemd => Init::Systemd,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum AptArg {
    #[value(name = "1.0")]
    V10,
    #[value(name = "1.2")]
    V12,
}

impl From<AptArg> for AptVariant {
    fn from(a: AptArg) -> AptVariant {
        match a {
            AptArg::V10 => AptVariant::V1_0,
            AptArg::V12 => AptVariant::V1_2,
        }
    }
}

/// Simulated Open vStorage node (also answers as apt-get, virsh, initctl… through links).
#[derive(Debug, Parser)]
#[command(name = "ovs-sim", version)]
struct Cli {
    /// The node's state file.
    #[arg(long, global = true, env = "OVS_SIM_STATE", default_value = DEFAULT_STATE)]
    state: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a fresh node state and its files: node NODE of the layout FILE, or (without
    /// --layout) a storage node alone in a one-node legacy layout, or a controller.
    Seed {
        /// Node name.
        #[arg(long)]
        node: String,
        /// The environment's layout (TOML, or the stored `layout.json`).
        #[arg(long, conflicts_with_all = ["index", "init", "apt", "controller"])]
        layout: Option<PathBuf>,
        /// Index of the storage node (addresses, pids, VM names), without --layout.
        #[arg(long)]
        index: Option<usize>,
        /// Init system, without --layout.
        #[arg(long, value_enum)]
        init: Option<InitArg>,
        /// apt generation, without --layout.
        #[arg(long, value_enum)]
        apt: Option<AptArg>,
        /// Seed an ovc_* controller instance instead of a storage node, without --layout.
        #[arg(long)]
        controller: bool,
        /// Directory the node's files are written under.
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// Create the tool symlinks for this node kind in DIR.
    Links {
        /// Directory to create the links in.
        dir: PathBuf,
        /// Init system (default: the state file's).
        #[arg(long, value_enum)]
        init: Option<InitArg>,
    },
    /// Print the node's state as JSON.
    Show,
    /// Set a fault knob (see `set_fault`): e.g. `down ovs-arakoon-ovsdb`, `apt_lock_secs 30`,
    /// `stamp_hours_ago 48`; lists are comma-separated ("" for none).
    Fault {
        /// The knob.
        key: String,
        /// Its value.
        value: String,
    },
    /// Run a simulated tool: `ovs-sim exec virsh list --name`.
    Exec {
        /// Directory taken as the node's `/`.
        #[arg(long, env = "OVS_SIM_ROOT", default_value = "/")]
        root: PathBuf,
        /// The tool and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        argv: Vec<String>,
    },
}

fn utf8_args(args: impl IntoIterator<Item = OsString>) -> Result<Vec<String>, CliError> {
    args.into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| CliError::Usage(format!("argument is not UTF-8: {a:?}")))
        })
        .collect()
}

fn emit(out: &SimOutput) -> i32 {
    // Broken pipes are the reader's business; the exit code still tells the outcome.
    let _ = std::io::stdout().write_all(out.stdout.as_bytes());
    let _ = std::io::stderr().write_all(out.stderr.as_bytes());
    out.code
}

/// Runs the program with these arguments (argv[0] included) and returns the exit code.
pub fn main_with(args: Vec<OsString>) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ovs-sim: {e}");
            e.code()
        }
    }
}

fn run(args: Vec<OsString>) -> Result<i32, CliError> {
    let argv = utf8_args(args)?;
    let argv0 = argv.first().map(String::as_str).unwrap_or("ovs-sim");
    let name = super::tools::basename(argv0);
    if TOOLS.contains(&name) {
        let state = std::env::var_os("OVS_SIM_STATE")
            .map_or_else(|| PathBuf::from(DEFAULT_STATE), PathBuf::from);
        let root =
            std::env::var_os("OVS_SIM_ROOT").map_or_else(|| PathBuf::from("/"), PathBuf::from);
        let mut tool_argv = argv.clone();
        tool_argv[0] = if name == "memcached" {
            "/etc/init.d/memcached".to_owned()
        } else {
            name.to_owned()
        };
        let node = SimNode::open_real_at(state, root)?;
        let out = node.try_run_argv(&tool_argv, None)?;
        return Ok(emit(&out));
    }
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            return Ok(code);
        }
    };
    match cli.command {
        Command::Seed {
            node,
            layout,
            index,
            init,
            apt,
            controller,
            root,
        } => {
            let mut state = match layout {
                Some(file) => seed_from_layout(&file, &node)?,
                None if controller => seed::controller_node(&node),
                None => seed_alone(&node, index, init, apt)?,
            };
            seed::materialize(&state, &RealFs::new(&root)).map_err(|source| CliError::Io {
                what: format!("writing the node's files under {}", root.display()),
                source,
            })?;
            // On a real node the real filesystem is the truth.
            state.files.clear();
            create_parent(&cli.state)?;
            Store::new(&cli.state).create(&state)?;
            Ok(0)
        }
        Command::Links { dir, init } => {
            let init = match init {
                Some(i) => i.into(),
                None => Store::new(&cli.state).read()?.init,
            };
            links(&dir, init)?;
            Ok(0)
        }
        Command::Show => {
            let state = Store::new(&cli.state).read()?;
            let json = serde_json::to_string_pretty(&state).map_err(SimError::Serialize)?;
            Ok(emit(&SimOutput::ok(format!("{json}\n"))))
        }
        Command::Fault { key, value } => {
            Store::new(&cli.state).update(|s| set_fault(s, &key, &value))??;
            Ok(0)
        }
        Command::Exec { root, argv } => {
            let node = SimNode::open_real_at(&cli.state, root)?;
            Ok(emit(&node.try_run_argv(&argv, None)?))
        }
    }
}

/// Node `name` of the layout in `file`.
fn seed_from_layout(file: &Path, name: &str) -> Result<NodeState, CliError> {
    let layout = Layout::load(file).map_err(|e| CliError::Usage(e.to_string()))?;
    cluster::seed_node(&layout, name, now_ms()).ok_or_else(|| {
        CliError::Usage(format!(
            "the layout {} has no node called {name:?}",
            file.display()
        ))
    })
}

/// A storage node alone: the legacy layout of `index + 1` nodes, its node `index` renamed.
fn seed_alone(
    name: &str,
    index: Option<usize>,
    init: Option<InitArg>,
    apt: Option<AptArg>,
) -> Result<NodeState, CliError> {
    let index = index.unwrap_or(0);
    let mut layout = Layout::uniform(index + 1);
    let rename = |n: &mut String| {
        if *n == layout::storage_name(index) {
            *n = name.to_owned();
        }
    };
    for c in &mut layout.clusters {
        c.members.iter_mut().for_each(rename);
    }
    let node = &mut layout.nodes[index];
    rename(&mut node.name);
    node.init = init.map_or(Init::Upstart, Init::from);
    node.apt = apt.map_or(AptVariant::V1_0, AptVariant::from);
    seed::storage_node(&layout, index, now_ms())
        .ok_or_else(|| CliError::Usage(format!("no storage node {index}")))
}

fn create_parent(path: &Path) -> Result<(), CliError> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => {
            std::fs::create_dir_all(p).map_err(|source| CliError::Io {
                what: format!("creating {}", p.display()),
                source,
            })
        }
        _ => Ok(()),
    }
}

fn links(dir: &Path, init: Init) -> Result<(), CliError> {
    let exe = std::env::current_exe().map_err(|source| CliError::Io {
        what: "finding the ovs-sim executable".into(),
        source,
    })?;
    std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
        what: format!("creating {}", dir.display()),
        source,
    })?;
    let init_links: &[&str] = match init {
        Init::Upstart => &UPSTART_LINKS,
        Init::Systemd => &SYSTEMD_LINKS,
    };
    for name in COMMON_LINKS.iter().chain(init_links) {
        let link = dir.join(name);
        if link.symlink_metadata().is_ok() {
            std::fs::remove_file(&link).map_err(|source| CliError::Io {
                what: format!("replacing {}", link.display()),
                source,
            })?;
        }
        std::os::unix::fs::symlink(&exe, &link).map_err(|source| CliError::Io {
            what: format!("linking {}", link.display()),
            source,
        })?;
    }
    Ok(())
}

/// The fault knobs [`set_fault`] knows, for its error message and help.
pub const FAULTS: [&str; 17] = [
    "apt_lock",
    "apt_lock_secs",
    "failing_sources",
    "stamp_hours_ago",
    "failing_installs",
    "pkg_status",
    "download_ms",
    "free_bytes",
    "down",
    "failing_services",
    "stalled_elections",
    "election_ms",
    "stuck_vms",
    "hang",
    "slow_ms",
    "shutdown_secs",
    "clear",
];

/// Sets one fault knob from its textual value (`ovs-sim fault`, `ovsup sim fault`):
/// - `apt_lock BOOL`: the apt/dpkg locks held by `unattended-upgr` until cleared;
///   `apt_lock_secs SECS`: held for SECS from now (0 releases it);
/// - `failing_sources BOOL`: `apt-get update` cannot fetch the Open vStorage source;
/// - `stamp_hours_ago HOURS|never`: the last clean `apt-get update` was HOURS ago (or never);
/// - `failing_installs LIST`: these packages' postinst fails (left half-configured);
/// - `pkg_status PKG=STATUS,…`: set dpkg states (`ii iU iF iW iHR rc` or their words);
/// - `download_ms MS`: every `.deb` fetch takes MS; `free_bytes BYTES|default`: free space;
/// - `down LIST`: these jobs stop now and fail to start until cleared (`failing_services
///   LIST`: fail to start, without stopping now);
/// - `stalled_elections LIST`: these Arakoon clusters never elect a master;
///   `election_ms MS`: how long an election takes after a member starts (default 500);
/// - `stuck_vms LIST`, `hang LIST` (tool names), `slow_ms MS`, `shutdown_secs SECS`;
/// - `clear all`: every fault knob back to its default.
pub fn set_fault(state: &mut NodeState, key: &str, value: &str) -> Result<(), CliError> {
    let list = || -> Vec<String> {
        value
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let expected = |what: &str| CliError::Usage(format!("{key}: expected {what}, got {value:?}"));
    let number = || value.parse::<u64>().map_err(|_| expected("a whole number"));
    let boolean = || value.parse::<bool>().map_err(|_| expected("true or false"));
    let now = now_ms();
    let f = &mut state.faults;
    match key {
        "apt_lock" => f.apt_lock = boolean()?,
        "apt_lock_secs" => {
            let secs = number()?;
            f.apt_lock_until_ms = (secs > 0).then(|| now + secs.saturating_mul(1000));
            if secs > 0 && f.apt_lock_pid.is_none() {
                f.apt_lock_pid = Some(state.next_pid);
                state.next_pid += 1;
            }
        }
        "failing_sources" => f.failing_sources = boolean()?,
        "stamp_hours_ago" => {
            state.apt_updated_ms = match value {
                "never" => None,
                v => {
                    let hours: f64 = v
                        .parse()
                        .ok()
                        .filter(|h: &f64| h.is_finite() && *h >= 0.0)
                        .ok_or_else(|| expected("hours (a number) or never"))?;
                    Some(now.saturating_sub((hours * 3_600_000.0) as u64))
                }
            }
        }
        "failing_installs" => f.failing_installs = list(),
        "pkg_status" => set_pkg_status(state, &list())?,
        "download_ms" => f.download_ms = number()?,
        "free_bytes" => {
            f.free_bytes = match value {
                "default" => None,
                _ => Some(number()?),
            }
        }
        "down" => {
            f.down = list();
            for job in f.down.clone() {
                if state.stop_job(&job)
                    && let Some(j) = state.jobs.get_mut(&job)
                {
                    j.failed = true;
                }
            }
        }
        "failing_services" => f.failing_services = list(),
        "stalled_elections" => f.stalled_elections = list(),
        "election_ms" => f.election_ms = Some(number()?),
        "stuck_vms" => f.stuck_vms = list(),
        "hang" => f.hang = list(),
        "slow_ms" => f.slow_ms = number()?,
        "shutdown_secs" => {
            state.shutdown_secs = value
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| expected("seconds"))?
        }
        "clear" if value == "all" => *f = Default::default(),
        _ => {
            return Err(CliError::Usage(format!(
                "unknown fault {key:?} ({})",
                FAULTS.join(", ")
            )));
        }
    }
    Ok(())
}

/// `pkg_status alba=iF,arakoon=rc`.
fn set_pkg_status(state: &mut NodeState, items: &[String]) -> Result<(), CliError> {
    for item in items {
        let parsed = item
            .split_once('=')
            .and_then(|(p, st)| Some((p.trim(), PkgStatus::parse(st)?)));
        let Some((pkg, status)) = parsed else {
            return Err(CliError::Usage(format!(
                "pkg_status: expected PKG=STATUS with STATUS one of ii, iU, iF, iW, iHR, rc, got {item:?}"
            )));
        };
        let Some(p) = state
            .packages
            .get_mut(pkg)
            .filter(|p| p.installed.is_some())
        else {
            return Err(CliError::Usage(format!(
                "pkg_status: {pkg:?} is not installed on {}",
                state.name
            )));
        };
        p.status = status;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn seed_fault_exec_on_a_real_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state/state.json");
        let root = dir.path().join("root");
        let st = state.to_str().expect("utf8");
        let rt = root.to_str().expect("utf8");
        let code = main_with(os(&[
            "ovs-sim", "--state", st, "seed", "--node", "n1", "--index", "1", "--init", "systemd",
            "--apt", "1.2", "--root", rt,
        ]));
        assert_eq!(code, 0);
        assert!(root.join("run/systemd/system").is_dir());
        let node = SimNode::open_real_at(&state, &root).expect("open");
        let o = node.run_line("ls /opt/OpenvStorage/config/arakoon", None);
        assert_eq!(o.stdout, "mybackend-abm\nmybackend-nsm_0\novsdb\nvoldrv\n");
        assert_eq!(
            main_with(os(&[
                "ovs-sim",
                "--state",
                st,
                "fault",
                "hang",
                "apt-get,virsh"
            ])),
            0
        );
        assert_eq!(
            node.state().expect("state").faults.hang,
            vec!["apt-get", "virsh"]
        );
        assert_eq!(
            main_with(os(&["ovs-sim", "--state", st, "fault", "nope", "1"])),
            2
        );
        assert_eq!(
            main_with(os(&[
                "ovs-sim", "--state", st, "exec", "--root", rt, "fuser", "4446/tcp"
            ])),
            0
        );
        let missing = dir.path().join("missing.json");
        assert_eq!(
            main_with(os(&[
                "ovs-sim",
                "--state",
                missing.to_str().expect("utf8"),
                "show"
            ])),
            1
        );
        assert_eq!(main_with(os(&["ovs-sim", "bogus"])), 2);
        let links_dir = dir.path().join("bin");
        assert_eq!(
            main_with(os(&[
                "ovs-sim",
                "--state",
                st,
                "links",
                links_dir.to_str().expect("utf8")
            ])),
            0
        );
        assert!(links_dir.join("systemctl").symlink_metadata().is_ok());
        assert!(links_dir.join("initctl").symlink_metadata().is_err());
        for tool in ["arakoon", "dpkg", "df", "stat", "fuser"] {
            assert!(links_dir.join(tool).symlink_metadata().is_ok(), "{tool}");
        }
        for tool in COMMON_LINKS
            .iter()
            .chain(&UPSTART_LINKS)
            .chain(&SYSTEMD_LINKS)
        {
            assert!(TOOLS.contains(tool), "{tool} is linked but not answered");
        }
    }

    #[test]
    fn seed_from_a_layout_into_one_shared_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = dir.path().join("nodes");
        std::fs::create_dir_all(&shared).expect("mkdir");
        let layout_file = shared.join("layout.json");
        std::fs::write(&layout_file, Layout::default_for(3).to_json()).expect("layout");
        for name in ["node-01", "node-02", "node-03", "ovc_master"] {
            let root = dir.path().join(name);
            let state = shared.join(format!("{name}.json"));
            let code = main_with(os(&[
                "ovs-sim",
                "--state",
                state.to_str().expect("utf8"),
                "seed",
                "--node",
                name,
                "--layout",
                layout_file.to_str().expect("utf8"),
                "--root",
                root.to_str().expect("utf8"),
            ]));
            assert_eq!(code, 0, "{name}");
        }
        let state = |n: &str| shared.join(format!("{n}.json"));
        let n1 = SimNode::open_real_at(state("node-01"), dir.path().join("node-01")).expect("open");
        assert_eq!(
            n1.run_line("cat /etc/openvstorage_id", None).stdout,
            format!("{}\n", seed::machine_id("node-01"))
        );
        // The peers' state is reached through the shared directory, their files stay theirs.
        let o = n1.run_line(
            "arakoon --who-master -config /opt/OpenvStorage/config/arakoon/mybackend-nsm_0/mybackend-nsm_0.cfg",
            None,
        );
        assert_eq!(
            o.stdout,
            format!("{}\n", seed::machine_id("node-03")),
            "{o:?}"
        );
        assert!(
            !n1.state()
                .expect("state")
                .jobs
                .contains_key("ovs-arakoon-mybackend-abm")
        );
        // Faults set through the CLI change the state file (a down job stops now).
        let st = state("node-03");
        let st = st.to_str().expect("utf8");
        let fault = |k: &str, v: &str| main_with(os(&["ovs-sim", "--state", st, "fault", k, v]));
        assert_eq!(fault("down", "ovs-arakoon-mybackend-nsm_0"), 0);
        let o = n1.run_line(
            "arakoon --who-master -config /opt/OpenvStorage/config/arakoon/mybackend-nsm_0/mybackend-nsm_0.cfg",
            None,
        );
        assert_eq!(
            o.stderr,
            "Fatal error: exception Failure(\"too many nodes down\")\n"
        );
        assert_eq!(fault("free_bytes", "12"), 0);
        assert_eq!(fault("free_bytes", "lots"), 2);
        assert_eq!(fault("clear", "all"), 0);
        let bad = main_with(os(&[
            "ovs-sim",
            "--state",
            st,
            "seed",
            "--node",
            "node-09",
            "--layout",
            layout_file.to_str().expect("utf8"),
        ]));
        assert_eq!(bad, 2);
    }
}
