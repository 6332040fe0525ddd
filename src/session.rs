//! A session with an environment: the tokio runtime, the transport to its nodes (SSH or the
//! in-process simulator), and the [`Host`] the primitives run on, opened from a [`Config`]
//! and closed in order (connections first, then the runtime). Ctrl-C is wired here: the first
//! cancels the host's token, a second exits at once.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, Environment};
use crate::error::{EXIT_INTERRUPTED, Error, Result};
use crate::host::{Host, HostParts};
use crate::inventory::Backend;
use crate::report::{Event, Level, Reporter};
use crate::state::journal::Journal;
use crate::transport::Transport;
use crate::transport::sim::SimTransport;
use crate::transport::ssh::{SshOptions, SshTransport};

/// Everything a run holds open; closed in order by [`Session::close`].
pub struct Session {
    runtime: tokio::runtime::Runtime,
    /// The run's host.
    pub host: Arc<Host>,
}

impl Session {
    /// Open a session on the configured environment. With `journal`, every command is
    /// recorded in `<state-dir>/runs/<time>-<journal>.jsonl`.
    pub fn open(
        config: &Config,
        reporter: Arc<dyn Reporter>,
        journal: Option<&str>,
    ) -> Result<Session> {
        let env = config.env()?;
        let state_dir = env.ensure_state_dir()?.to_path_buf();
        let journal_label = journal;
        let journal = journal
            .map(|n| Journal::create(&state_dir, n))
            .transpose()?;
        let transport = transport(env, config)?;
        if env.inventory.backend == Backend::Ssh {
            raise_open_files_limit(env.inventory.nodes.len(), config.forks, &reporter);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("ovsup")
            .build()
            .map_err(|e| Error::Internal(format!("tokio runtime: {e}")))?;
        let host = Arc::new(Host::new(HostParts {
            inventory: env.inventory.clone(),
            limit: config.limit.clone(),
            state_dir,
            dry_run: config.dry_run,
            force: config.force,
            assume_yes: config.assume_yes,
            forks: config.forks,
            transport,
            reporter: reporter.clone(),
            journal,
            label: journal_label.unwrap_or("run").to_string(),
            runtime: runtime.handle().clone(),
        }));
        watch_ctrl_c(&runtime, &host, reporter);
        Ok(Session { runtime, host })
    }

    /// Close the connections, then the runtime.
    pub fn close(self) {
        let Session { runtime, host } = self;
        runtime.block_on(host.close());
        drop(host);
        runtime.shutdown_timeout(Duration::from_secs(5));
    }
}

/// How the environment's nodes are reached.
fn transport(env: &Environment, config: &Config) -> Result<Transport> {
    Ok(match env.inventory.backend {
        Backend::Ssh => {
            let control = env.control_dir()?;
            Transport::Ssh(SshTransport::new(SshOptions {
                ssh_config: env.inventory.ssh_config.clone(),
                control_dir: control.ensure()?.to_path_buf(),
                persist: config.control_persist,
            })?)
        }
        Backend::Sim => {
            let dir = env.sim_dir();
            let layout = env.sim.as_ref().map(|(_, l)| l).ok_or_else(|| {
                Error::Internal("a simulated environment without a layout".into())
            })?;
            crate::sim::cluster::ensure(&dir, layout).map_err(|e| Error::Simulator {
                node: String::new(),
                message: e.to_string(),
            })?;
            Transport::Sim(SimTransport::new(dir))
        }
    })
}

/// Every node whose run lock is held keeps three descriptors open (the lock session's socket
/// and pipes), and every command in flight three more: 500 nodes need more than the common
/// soft limit of 1024. Raise the soft limit to the hard one, and warn when even that is short.
fn raise_open_files_limit(nodes: usize, forks: usize, reporter: &Arc<dyn Reporter>) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let need = 3 * nodes + 3 * forks + 64;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft < hard {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    if hard < need as u64 {
        reporter.report(Event::Log {
            level: Level::Warn,
            message: format!(
                "at most {hard} open files (ulimit -Hn): {nodes} nodes and --forks {forks} may need {need}; lower --forks or raise the limit"
            ),
        });
    }
}

/// The first Ctrl-C stops new work (the script at its next operation, waits at once, no new
/// command); a second one exits at once (the commands on the nodes are bounded by `timeout`).
fn watch_ctrl_c(runtime: &tokio::runtime::Runtime, host: &Arc<Host>, reporter: Arc<dyn Reporter>) {
    let cancel = host.cancel.clone();
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        cancel.cancel();
        reporter.report(Event::Log {
            level: Level::Warn,
            message: "interrupted: no new command starts; waiting for the commands in flight (Ctrl-C again to quit now)".into(),
        });
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(EXIT_INTERRUPTED);
        }
    });
}
