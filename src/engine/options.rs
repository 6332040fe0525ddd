//! The options maps primitives take (`stop_vms(t, #{timeout: 600, force: true})`): one way to
//! read them, so every primitive refuses an unknown key and a value of the wrong type the same
//! way, naming the known keys.

use std::time::Duration;

use rhai::Map;

use crate::error::{Error, Result};

/// Refuse a key that is not one of `known`.
pub fn known(options: &Map, known: &[&str]) -> Result<()> {
    match options.keys().find(|k| !known.contains(&k.as_str())) {
        Some(other) => Err(Error::argument(format!(
            "unknown option `{other}` (known: {})",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

/// A boolean option (false when absent).
pub fn flag(options: &Map, key: &str) -> Result<bool> {
    match options.get(key) {
        None => Ok(false),
        Some(v) => v
            .as_bool()
            .map_err(|_| Error::argument(format!("`{key}` must be true or false, found {v}"))),
    }
}

/// A number of seconds above 0 and at most a week (`default` when absent).
pub fn seconds(options: &Map, key: &str, default: Duration) -> Result<Duration> {
    let Some(value) = options.get(key) else {
        return Ok(default);
    };
    let secs = if let Ok(i) = value.as_int() {
        i as f64
    } else {
        value.as_float().unwrap_or(f64::NAN)
    };
    if !(secs > 0.0 && secs <= 7.0 * 86_400.0) {
        return Err(Error::argument(format!(
            "`{key}` must be a number of seconds above 0 and at most 604800, found {value}"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}
