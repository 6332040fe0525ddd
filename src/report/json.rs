//! `--json`: one JSON object per line on stdout, nothing else on stdout.

use std::io::Write;
use std::sync::Mutex;

use super::{Event, Reporter};

/// Writes each event as one line of JSON.
pub struct JsonReporter {
    out: Mutex<Box<dyn Write + Send>>,
}

impl JsonReporter {
    /// A reporter writing to standard output.
    pub fn stdout() -> JsonReporter {
        JsonReporter {
            out: Mutex::new(Box::new(std::io::stdout())),
        }
    }
}

impl Reporter for JsonReporter {
    fn report(&self, event: Event) {
        // An event is plain data: serialising it cannot fail.
        let Ok(line) = serde_json::to_string(&event) else {
            return;
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}
