//! Errors of the simulator itself (as opposed to the simulated tools' failures, which are
//! ordinary command output). A `SimError` means the node's state could not be read or
//! written: the simulated node is broken, not the command run on it.

use std::path::PathBuf;

/// A failure of the simulator's own machinery: the state file, its lock, or a seed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The state file (or its lock file) could not be opened, locked, read or written.
    #[error("state file {path}: {action}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the simulator was doing ("lock", "read", "write", …).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The state file exists but is not a valid node state document.
    #[error("state file {path}: not a valid node state: {source}")]
    Parse {
        /// The file concerned.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A layout file (TOML, or the stored JSON) cannot be used.
    #[error(transparent)]
    Layout(#[from] super::layout::LayoutError),
    /// A cluster directory cannot be used as asked.
    #[error("simulated cluster in {dir}: {message}")]
    Cluster {
        /// The cluster directory.
        dir: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// Serializing the state failed (a bug: the state model always serializes).
    #[error("internal error serializing node state, this is a bug: {0}")]
    Serialize(#[source] serde_json::Error),
}
