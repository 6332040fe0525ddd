//! The `ovs-sim` program: a multi-call binary that impersonates a node's tools (invoked as
//! `apt-get`, `virsh`, `initctl`… through symlinks, acting on the node whose state file is
//! `$OVS_SIM_STATE` over the real filesystem), and a small CLI to seed, inspect and break a
//! simulated node. Tools exit with their own codes; `ovs-sim`'s own errors exit 2 (usage)
//! or 1 (state file problem).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use super::error::SimError;
use super::fs::RealFs;
use super::seed;
use super::state::{AptVariant, Init, NodeState};
use super::store::Store;
use super::{SimNode, SimOutput};

/// The default state file of a test node.
pub const DEFAULT_STATE: &str = "/var/lib/ovs-sim/state.json";

/// Tool names the binary answers to when invoked through a link of that name.
pub const TOOLS: [&str; 15] = [
    "apt-get",
    "apt-cache",
    "dpkg-query",
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
const COMMON_LINKS: [&str; 8] = [
    "apt-get",
    "apt-cache",
    "dpkg-query",
    "virsh",
    "fuser",
    "ays",
    "ip",
    "python",
];
const UPSTART_LINKS: [&str; 5] = ["initctl", "start", "stop", "status", "restart"];
const SYSTEMD_LINKS: [&str; 1] = ["systemctl"];

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
    /// Write a fresh node state and its files.
    Seed {
        /// Node name.
        #[arg(long)]
        node: String,
        /// Index of the storage node (addresses, pids, VM names).
        #[arg(long, default_value_t = 0)]
        index: usize,
        /// Init system.
        #[arg(long, value_enum, default_value = "upstart")]
        init: InitArg,
        /// apt generation.
        #[arg(long, value_enum, default_value = "1.0")]
        apt: AptArg,
        /// Seed an ovc_* controller instance instead of a storage node.
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
    /// Set a fault knob: apt_lock BOOL, slow_ms MS, or failing_installs / stuck_vms /
    /// failing_services / hang with a comma-separated list ("" for none).
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
            index,
            init,
            apt,
            controller,
            root,
        } => {
            let mut state = if controller {
                seed::controller_node(&node)
            } else {
                seed::storage_node(&node, index, init.into(), apt.into())
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
            let store = Store::new(&cli.state);
            let mut state = store.read()?;
            set_fault(&mut state, &key, &value)?;
            store.update(|s| s.faults = state.faults)?;
            Ok(0)
        }
        Command::Exec { root, argv } => {
            let node = SimNode::open_real_at(&cli.state, root)?;
            Ok(emit(&node.try_run_argv(&argv, None)?))
        }
    }
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

/// Sets one fault knob from its textual value.
pub fn set_fault(state: &mut NodeState, key: &str, value: &str) -> Result<(), CliError> {
    let list = || -> Vec<String> {
        value
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let f = &mut state.faults;
    match key {
        "apt_lock" => {
            f.apt_lock = value.parse().map_err(|_| {
                CliError::Usage(format!("apt_lock: expected true or false, got {value:?}"))
            })?
        }
        "slow_ms" => {
            f.slow_ms = value.parse().map_err(|_| {
                CliError::Usage(format!("slow_ms: expected milliseconds, got {value:?}"))
            })?
        }
        "failing_installs" => f.failing_installs = list(),
        "stuck_vms" => f.stuck_vms = list(),
        "failing_services" => f.failing_services = list(),
        "hang" => f.hang = list(),
        _ => {
            return Err(CliError::Usage(format!(
                "unknown fault {key:?} (apt_lock, slow_ms, failing_installs, stuck_vms, failing_services, hang)"
            )));
        }
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
    }
}
