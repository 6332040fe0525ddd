//! The bound on a runbook's own computation. Rhai counts operations (`set_max_operations`),
//! but an operation can get slower as the data grows (a push onto a large array re-checks the
//! size limits), so a runaway loop may take minutes within its operation budget. The wall time
//! the script thread spends outside primitives — in the script itself — is bounded too; the
//! time waiting on nodes or on the operator does not count ([`Host::time_waited`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::Dynamic;

use crate::host::Host;

/// The default bound on a runbook's own computation.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(60);

/// Environment variable overriding [`DEFAULT_LIMIT`], in seconds.
pub const LIMIT_ENV: &str = "OVSUP_SCRIPT_TIME_LIMIT";

/// The value `on_progress` ends a script with when its own computation ran past the bound.
pub const OVER_BUDGET: &str = "ovsup: script time limit";

/// How many operations pass between two looks at the clock.
const EVERY: u64 = 4096;

/// The bound in force: [`LIMIT_ENV`] when it holds a number of seconds, else the default.
pub fn limit() -> Duration {
    std::env::var(LIMIT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_LIMIT, Duration::from_secs_f64)
}

/// The clock of one script: when it started, and the host that knows how long it waited.
pub struct Budget {
    host: Arc<Host>,
    started: Instant,
    limit: Duration,
}

impl Budget {
    /// Start the clock now.
    pub fn new(host: Arc<Host>, limit: Duration) -> Budget {
        Budget {
            host,
            started: Instant::now(),
            limit,
        }
    }

    /// Rhai's progress callback: end the script on Ctrl-C (unit) or when its own computation
    /// passed the bound ([`OVER_BUDGET`]).
    pub fn check(&self, ops: u64) -> Option<Dynamic> {
        if self.host.cancel.is_cancelled() {
            return Some(Dynamic::UNIT);
        }
        if !ops.is_multiple_of(EVERY) {
            return None;
        }
        let own = self
            .started
            .elapsed()
            .saturating_sub(self.host.time_waited());
        (own > self.limit).then(|| Dynamic::from(OVER_BUDGET.to_string()))
    }
}
