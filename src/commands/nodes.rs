//! `ovsup nodes`: the target set, and with `--ping` reachability and round-trip time.

use super::record::{self, Ran};
use crate::config::Config;
use crate::error::Error;
use crate::host::{Effect, OnFailure};
use crate::outcome::{CommandResult, Failure, NodeRow, Outcome};
use crate::report::Reporter;
use crate::session::Session;
use crate::state::journal::RunJournals;

/// `ovsup nodes [--ping]`: the target set, and with `--ping` whether and how fast each answers
/// (journaled as a run of `ping`). Unreachable nodes fail the command, after the table is shown.
pub fn list(
    config: &Config,
    reporter: std::sync::Arc<dyn Reporter>,
    ping: bool,
    journals: &RunJournals,
) -> CommandResult {
    let session = Session::open(config, reporter, ping.then_some("ping"))?;
    let ran = Ran {
        runbooks: vec!["ping"],
        scripts: Vec::new(),
        set: &[],
    };
    if let Err(e) = record::begin(config, &session.host, &ran, journals) {
        session.close();
        return Err(e.into());
    }
    let host = &session.host;
    let targets = host.targets(None);
    let pings = ping.then(|| {
        host.block_on(
            host.fan_out("ping", &targets, OnFailure::Continue, |node| async move {
                let connect = host.connect(&node).await?;
                let began = std::time::Instant::now();
                host.exec_ok(&node, "true", Effect::Read, None).await?;
                Ok((connect, began.elapsed()))
            }),
        )
    });
    session.close();
    let mut outcomes = pings.map(Vec::into_iter);
    let mut unreachable = Vec::new();
    let rows: Vec<NodeRow> = targets
        .iter()
        .map(|node| {
            let ping = outcomes.as_mut().and_then(Iterator::next).map(|(_, r)| {
                r.map_err(|e| {
                    let text = e.to_string();
                    unreachable.push(e);
                    text
                })
            });
            NodeRow {
                name: node.name.clone(),
                host: node.host.clone(),
                groups: node.groups.clone(),
                ping,
            }
        })
        .collect();
    if unreachable.is_empty() {
        return Ok(Outcome::Nodes(rows));
    }
    Err(Failure {
        error: Error::Nodes {
            total: targets.len(),
            failures: unreachable,
        },
        shown: Some(Box::new(Outcome::Nodes(rows))),
    })
}
