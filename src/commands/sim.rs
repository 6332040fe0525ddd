//! `ovsup -i sim sim reset|show|fault`: reseed, inspect and break a simulated cluster (the
//! built-in one, or a captured one, whose reset restores the capture: see
//! `commands/capture.rs`), so that a runbook can be rehearsed (and its failure paths seen)
//! before it touches a real environment.

use crate::cli::SimAction;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::inventory::SimSpec;
use crate::outcome::Outcome;
use crate::sim::SimNode;
use crate::sim::cluster;

/// Run a `sim` subcommand.
pub fn run(config: &Config, action: &SimAction) -> Result<Outcome> {
    let env = config.env()?;
    if !env.is_simulated() {
        return Err(Error::Usage(
            "`ovsup sim` works on a simulated cluster: give -i sim, -i sim:N or -i sim:NAME \
             (`sim capture` and `sim list` work with any -i)"
                .into(),
        ));
    }
    env.ensure_state_dir()?;
    let dir = env.sim_dir();
    let (spec, layout) = env
        .sim
        .as_ref()
        .ok_or_else(|| Error::Internal("a simulated environment without a layout".into()))?;
    let sim_err = |e: crate::sim::error::SimError| Error::Simulator {
        node: String::new(),
        message: e.to_string(),
    };
    match action {
        SimAction::Reset { layout: file } if matches!(spec, SimSpec::Named(_)) => {
            reset_capture(env, spec, file.as_deref())
        }
        SimAction::Reset { layout: file } => {
            let seeded = match (file, spec) {
                (Some(file), _) => cluster::reset_from_file(&dir, file).map_err(layout_error)?,
                (None, SimSpec::Nodes(_)) => {
                    cluster::reset(&dir, layout).map_err(sim_err)?;
                    layout.clone()
                }
                (None, _) => cluster::reseed(&dir, layout.nodes.len()).map_err(sim_err)?,
            };
            Ok(Outcome::Message(format!(
                "simulated cluster reset: {} storage nodes ({}) and {} controllers in {}",
                seeded.nodes.len(),
                seeded.storage_names().join(", "),
                seeded.controllers.len(),
                dir.display()
            )))
        }
        SimAction::Show { node } => {
            cluster::ensure(&dir, layout).map_err(sim_err)?;
            let mut states = Vec::new();
            for n in &env.inventory.nodes {
                if node.as_ref().is_some_and(|want| want != &n.name) {
                    continue;
                }
                let sim =
                    SimNode::open_virtual(cluster::state_file(&dir, &n.name)).map_err(sim_err)?;
                states.push(sim.state().map_err(sim_err)?);
            }
            if let Some(want) = node
                && states.is_empty()
            {
                return Err(Error::Usage(format!("no simulated node named {want:?}")));
            }
            Ok(Outcome::SimNodes(states))
        }
        SimAction::Fault { node, key, value } => {
            cluster::ensure(&dir, layout).map_err(sim_err)?;
            if env.inventory.node(node).is_none() {
                return Err(Error::Usage(format!("no simulated node named {node:?}")));
            }
            if key == "unreachable" {
                return unreachable(&dir, node, value);
            }
            let sim = SimNode::open_virtual(cluster::state_file(&dir, node)).map_err(sim_err)?;
            sim.update(|s| crate::sim::cli::set_fault(s, key, value))
                .map_err(sim_err)?
                .map_err(|e| Error::Usage(e.to_string()))?;
            Ok(Outcome::Message(format!("{node}: {key} = {value}")))
        }
        SimAction::Capture { .. } | SimAction::List => Err(Error::Internal(
            "`sim capture` and `sim list` are dispatched by run.rs".into(),
        )),
    }
}

/// `ovsup -i sim:NAME sim reset`: a captured cluster gets back what was captured (its
/// pristine copy); `--layout` does not apply to it.
fn reset_capture(
    env: &crate::config::Environment,
    spec: &SimSpec,
    file: Option<&std::path::Path>,
) -> Result<Outcome> {
    let name = match spec {
        SimSpec::Named(n) => n,
        _ => {
            return Err(Error::Internal(
                "reset_capture of a built-in cluster".into(),
            ));
        }
    };
    if file.is_some() {
        return Err(Error::Usage(format!(
            "sim:{name} is a captured cluster: `sim reset` restores what was captured, and \
             takes no --layout (capture again to change it, or use -i sim for layouts)"
        )));
    }
    let restored = crate::sim::capture::restore(&env.state_dir).map_err(|e| Error::Simulator {
        node: String::new(),
        message: e.to_string(),
    })?;
    let Some(m) = restored else {
        return Err(Error::Usage(format!(
            "{} holds no capture ({}/{}): capture one with `ovsup -i INVENTORY sim capture {name}`",
            env.state_dir.display(),
            crate::sim::capture::CAPTURE_DIR,
            crate::sim::capture::MANIFEST_FILE
        )));
    };
    Ok(Outcome::Message(format!(
        "captured cluster sim:{name} reset to its capture of {} at {}: {} storage nodes ({}) \
         and {} controllers in {}",
        m.environment,
        m.captured_at,
        m.storage_nodes.len(),
        m.storage_nodes.join(", "),
        m.controllers.len(),
        env.sim_dir().display()
    )))
}

/// A layout file's error, at its file, line and column (exit 2), like an inventory's.
fn layout_error(e: crate::sim::error::SimError) -> Error {
    match e {
        crate::sim::error::SimError::Layout(l) => Error::Inventory {
            location: l.location,
            message: l.message,
        },
        other => Error::Simulator {
            node: String::new(),
            message: other.to_string(),
        },
    }
}

/// `sim fault NODE unreachable true|false`: the node's connection, not its model (see
/// `transport::sim::SimTransport::down_file`).
fn unreachable(dir: &std::path::Path, node: &str, value: &str) -> Result<Outcome> {
    let file = crate::transport::sim::SimTransport::down_file(dir, node);
    match value {
        "true" => std::fs::write(&file, "").map_err(|e| Error::io(&file, e))?,
        "false" => match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&file, e)),
        },
        other => {
            return Err(Error::Usage(format!(
                "unreachable: expected true or false, got {other:?}"
            )));
        }
    }
    Ok(Outcome::Message(format!("{node}: unreachable = {value}")))
}
