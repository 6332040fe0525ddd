//! Script API of steps in progress (see `src/state/steps.rs`): how a runbook makes an
//! interrupted run converge when it is run again.

use rhai::plugin::*;

/// The script API of steps in progress.
#[export_module]
pub mod steps_api {
    use crate::engine::call::{arg, call, host};
    use crate::state::steps::Steps;

    /// Mark the step `name` as begun, before its first change (kept across runs until
    /// `step_done`). Does nothing in a dry run.
    #[rhai_fn(return_raw)]
    pub fn step_begin(ctx: NativeCallContext, name: &str) -> Result<(), Box<EvalAltResult>> {
        call(&ctx, async |host| {
            if host.dry_run {
                return Ok(());
            }
            host.before_change().await?;
            Steps::new(&host.state_dir).begin(name)
        })
    }

    /// Mark the step `name` as finished, after its last change. Does nothing in a dry run.
    #[rhai_fn(return_raw)]
    pub fn step_done(ctx: NativeCallContext, name: &str) -> Result<(), Box<EvalAltResult>> {
        call(&ctx, async |host| {
            if host.dry_run {
                return Ok(());
            }
            host.before_change().await?;
            Steps::new(&host.state_dir).done(name)
        })
    }

    /// True when the step `name` was begun by an earlier run that did not finish it: the
    /// runbook must then finish it even if nothing is pending any more.
    #[rhai_fn(return_raw)]
    pub fn step_in_progress(
        ctx: NativeCallContext,
        name: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        let host = host(&ctx)?;
        arg(&ctx, Steps::new(&host.state_dir).in_progress(name))
    }
}
