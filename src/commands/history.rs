//! `ovsup history` and `ovsup history show RUN [--timeline FILE.svg]`: the runs of this
//! environment as their journals tell them (see [`crate::history`]).

use std::path::Path;

use crate::config::Config;
use crate::error::Result;
use crate::history;
use crate::outcome::Outcome;

/// `ovsup history [-n N]`: every run, oldest first (the `N` latest).
pub fn list(config: &Config, last: Option<usize>) -> Result<Outcome> {
    let state_dir = &config.env()?.state_dir;
    let mut runs = history::list(state_dir)?;
    if let Some(n) = last {
        runs.drain(..runs.len().saturating_sub(n));
    }
    Ok(Outcome::History {
        runs,
        dir: history::runs_dir(state_dir),
    })
}

/// `ovsup history show RUN`: one run in full, and its timeline drawn into `timeline`.
pub fn show(config: &Config, run: &str, timeline: Option<&Path>) -> Result<Outcome> {
    let run = history::find(&config.env()?.state_dir, run)?;
    if let Some(path) = timeline {
        crate::timeline::write_svg(&run, path)?;
    }
    Ok(Outcome::Run {
        run: Box::new(run),
        timeline: timeline.map(Path::to_path_buf),
    })
}
