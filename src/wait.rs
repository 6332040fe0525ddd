//! The one way ovsup waits for something on the nodes: [`Host::poll_until`] probes, sleeps,
//! probes again until the probe says it is done or the deadline passes, and ends at once on
//! Ctrl-C. Every wait of the primitives (the agent gone, VMs off, a job running, a cluster
//! with a master again) is this loop with its own probe; none sleeps a fixed time.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::host::Host;

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe<T, S> {
    /// What was waited for holds: the wait ends with this value.
    Done(T),
    /// Not yet; this is the state seen (reported if the deadline passes).
    NotYet(S),
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited<T, S> {
    /// The probe said done.
    Done(T),
    /// The deadline passed; the last state the probe saw.
    Expired(S),
}

impl Host {
    /// Run `probe` every `every` until it returns [`Probe::Done`] or `timeout` has passed
    /// since the call (the probe runs at least once, and once more at the deadline when the
    /// interval does not divide it). A probe error ends the wait with that error; Ctrl-C ends
    /// it with [`Error::Interrupted`], also in the middle of a sleep.
    pub async fn poll_until<T, S>(
        &self,
        timeout: Duration,
        every: Duration,
        mut probe: impl AsyncFnMut() -> Result<Probe<T, S>>,
    ) -> Result<Waited<T, S>> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_cancelled()?;
            let seen = match probe().await? {
                Probe::Done(value) => return Ok(Waited::Done(value)),
                Probe::NotYet(seen) => seen,
            };
            let now = Instant::now();
            if now >= deadline {
                return Ok(Waited::Expired(seen));
            }
            tokio::select! {
                _ = tokio::time::sleep(every.min(deadline - now)) => {}
                _ = self.cancel.cancelled() => return Err(Error::Interrupted),
            }
        }
    }
}
