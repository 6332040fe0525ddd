//! The one way a script calls a primitive. Every script function of `src/engine/` is a thin
//! declaration (name, arguments, doc comment) over [`fan_out`] or [`call`]: reach the run's
//! host, read the target, run the primitive on the runtime, and shape what it returns — a value
//! for one node, a map by node name for an array — or raise its failure with every fact kept
//! (the nodes, the command, the exit code) and the results of the nodes that succeeded
//! (`e.kept`). A wrong argument is an [`Error::Argument`] naming the primitive.

use std::sync::Arc;

use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};

use super::error::{raise, raise_keeping};
use super::target::{Target, by_node};
use crate::error::{Error, Result};
use crate::host::{Host, PerNode, all_ok};
use crate::inventory::Node;

/// A script-side failure.
pub type Raised = Box<EvalAltResult>;

/// The host of the running script.
pub fn host(ctx: &NativeCallContext) -> Result<Arc<Host>, Raised> {
    ctx.tag()
        .and_then(|t| t.read_lock::<super::HostHandle>().map(|h| h.0.clone()))
        .ok_or_else(|| {
            raise(Error::Internal(
                "no host attached to the script engine".into(),
            ))
        })
}

/// Raise `e` from the primitive `ctx` is calling: an argument error gets the primitive's name.
pub fn raise_in(ctx: &NativeCallContext, e: Error) -> Raised {
    raise(named(ctx, e))
}

fn named(ctx: &NativeCallContext, e: Error) -> Error {
    match e {
        Error::Argument { function, message } if function.is_empty() => Error::Argument {
            function: ctx.fn_name().to_string(),
            message,
        },
        other => other,
    }
}

/// An argument check's result, raised from the primitive `ctx` is calling.
pub fn arg<T>(ctx: &NativeCallContext, r: Result<T>) -> Result<T, Raised> {
    r.map_err(|e| raise_in(ctx, e))
}

/// Run a primitive that fans out over the script's `target`, and shape its per-node results
/// with `shape`. An outer error of the primitive (before any node ran) is raised as it is.
pub fn fan_out<T>(
    ctx: &NativeCallContext,
    target: Dynamic,
    run: impl AsyncFnOnce(&Host, &[Node]) -> Result<PerNode<T>>,
    shape: impl Fn(T) -> Dynamic,
) -> Result<Dynamic, Raised> {
    let host = host(ctx)?;
    let target = arg(ctx, Target::from_dynamic(&host, target))?;
    let results = arg(ctx, host.block_on(run(&host, &target.nodes)))?;
    shaped(ctx, Some(&target), results, shape)
}

/// Run a primitive that is not a fan-out over a target (the VM record, a guard, a step mark).
pub fn call<T>(
    ctx: &NativeCallContext,
    run: impl AsyncFnOnce(&Host) -> Result<T>,
) -> Result<T, Raised> {
    let host = host(ctx)?;
    arg(ctx, host.block_on(run(&host)))
}

/// Per-node results as the script sees them: shaped by `target` (a map by node name without
/// one), or raised with the results of the nodes that succeeded kept in the error.
pub fn shaped<T>(
    ctx: &NativeCallContext,
    target: Option<&Target>,
    results: PerNode<T>,
    shape: impl Fn(T) -> Dynamic,
) -> Result<Dynamic, Raised> {
    let results: PerNode<Dynamic> = results
        .into_iter()
        .map(|(n, r)| (n, r.map(&shape)))
        .collect();
    let kept: Map = results
        .iter()
        .filter_map(|(n, r)| r.as_ref().ok().map(|v| (n.as_str().into(), v.clone())))
        .collect();
    match all_ok(results) {
        Ok(values) => Ok(match target {
            Some(t) => t.shape(values),
            None => by_node(values),
        }),
        Err(e) => Err(raise_keeping(named(ctx, e), kept)),
    }
}
