//! `ovsup disconnect`: close the SSH masters the environment's runs left open for the next
//! ones (`ssh -O exit` on every control socket of its control directory). Refused while a run
//! that changes the environment holds its lock, whose connections these are (unless
//! `--force`).

use crate::config::Config;
use crate::error::{Error, Result};
use crate::outcome::Outcome;
use crate::transport::ssh::disconnect_all;

/// Close every master of the environment; says how many were closed.
pub fn run(config: &Config) -> Result<Outcome> {
    let env = config.env()?;
    if env.is_simulated() {
        return Ok(Outcome::Message(
            "the simulated cluster has no SSH connections".into(),
        ));
    }
    let control = env.control_dir()?;
    if !control.path.is_dir() {
        return Ok(Outcome::Message(format!(
            "no SSH master is open ({} does not exist)",
            control.path.display()
        )));
    }
    let _lock = if config.force || !env.state_dir.is_dir() {
        None
    } else {
        Some(crate::state::lock::RunLock::acquire(
            &env.state_dir,
            "disconnect",
        )?)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("tokio runtime: {e}")))?;
    let done = runtime.block_on(disconnect_all(&control.path));
    if !done.failed.is_empty() {
        return Err(Error::io(
            &control.path,
            std::io::Error::other(format!(
                "{} SSH master(s) did not exit: {}",
                done.failed.len(),
                done.failed.join("; ")
            )),
        ));
    }
    let stale = if done.stale > 0 {
        format!(" ({} socket(s) without a master removed)", done.stale)
    } else {
        String::new()
    };
    Ok(Outcome::Message(format!(
        "closed {} SSH master(s) of this environment{stale}",
        done.closed
    )))
}
