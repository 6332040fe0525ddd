//! Which environment a state directory belongs to: `<state-dir>/environment.json`, written by
//! the first run and checked by every later one, so that two environments never share one
//! state directory (and one VM record) — by an inventory renamed, or a `--state-dir` given to
//! the wrong environment.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The marker's file name.
pub const FILE_NAME: &str = "environment.json";

/// What the marker says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Marker {
    /// The environment's name.
    pub name: String,
    /// The inventory it was first run from (canonical path), for the operator's eyes.
    #[serde(default)]
    pub inventory: Option<String>,
}

/// Check that `state_dir` belongs to the environment `name` (write the marker if it has
/// none); refuse (exit 3) a state directory of another environment.
pub fn claim(state_dir: &Path, name: &str, inventory: Option<&Path>) -> Result<()> {
    let path = state_dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let marker: Marker = serde_json::from_str(&text).map_err(|e| {
                Error::io(
                    &path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
                )
            })?;
            if marker.name == name {
                return Ok(());
            }
            Err(Error::Refused(format!(
                "the state directory {} belongs to the environment {:?}{}, not to {name:?}: \
                 its VM record and lock are that environment's; give this environment its own \
                 --state-dir (or none, for its default)",
                state_dir.display(),
                marker.name,
                marker
                    .inventory
                    .map(|i| format!(" (inventory {i})"))
                    .unwrap_or_default()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let marker = Marker {
                name: name.to_string(),
                inventory: inventory
                    .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
                    .map(|p| p.display().to_string()),
            };
            let text =
                serde_json::to_vec_pretty(&marker).map_err(|e| Error::Internal(e.to_string()))?;
            super::write_private(&path, &text)
        }
        Err(e) => Err(Error::io(&path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_dir_is_claimed_once_and_refused_to_another_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        claim(dir.path(), "be-conv-1", None).expect("first claim");
        claim(dir.path(), "be-conv-1", None).expect("same environment");
        let e = claim(dir.path(), "be-g8-2", None).expect_err("another environment");
        assert_eq!(e.code(), crate::error::EXIT_REFUSED);
        assert!(e.to_string().contains("\"be-conv-1\""), "{e}");
    }
}
