//! Where an environment's SSH masters keep their control sockets: `<state-dir>/ssh/`, private
//! (0700), so that a master outlives the run that opened it and the next run of the same
//! environment finds it (see `transport::ssh`). A Unix socket path holds at most 107 bytes on
//! Linux, and an OpenSSH master first binds a temporary name 17 characters longer than the
//! final one; when the state directory is too long for that, the sockets go to a short
//! private directory keyed by a hash of the state directory instead:
//! `$TMPDIR/ovsup-<uid>/<16 hex digits>/` (both levels 0700 and ours, or refused).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A socket's file name: 16 hex digits (a hash of what the connection is).
pub const SOCKET_NAME_LEN: usize = 16;
/// What OpenSSH appends to the socket path while it binds (`.` and 16 random characters).
const OPENSSH_TEMP_SUFFIX: usize = 17;
/// The longest path a Unix socket can be bound to on Linux (`sun_path` is 108 bytes with NUL).
const SOCKET_PATH_MAX: usize = 107;

/// The directory holding an environment's control sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlDir {
    /// The directory.
    pub path: PathBuf,
    /// True when the state directory was too long and this is the short fallback.
    pub fallback: bool,
}

impl ControlDir {
    /// The control directory of the environment whose state directory is `state_dir`
    /// (nothing is created: see [`ControlDir::ensure`]).
    pub fn of(state_dir: &Path) -> Result<ControlDir> {
        let preferred = state_dir.join("ssh");
        if fits(&preferred) {
            return Ok(ControlDir {
                path: preferred,
                fallback: false,
            });
        }
        let path = fallback_base().join(format!(
            "{:016x}",
            fnv1a64(state_dir.as_os_str().as_encoded_bytes())
        ));
        if !fits(&path) {
            return Err(Error::Usage(format!(
                "no directory short enough for the SSH control sockets: {} and {} are both \
                 longer than a Unix socket path allows; give a shorter --state-dir or TMPDIR",
                preferred.display(),
                path.display()
            )));
        }
        Ok(ControlDir {
            path,
            fallback: true,
        })
    }

    /// Create the directory (and for the fallback, its parent), private to the user; refuse
    /// one that is not ours or that others can enter.
    pub fn ensure(&self) -> Result<&Path> {
        if self.fallback
            && let Some(parent) = self.path.parent()
        {
            private_dir(parent)?;
        }
        private_dir(&self.path)?;
        Ok(&self.path)
    }

    /// The socket for the connection whose identity hashes to `key`.
    pub fn socket(&self, key: u64) -> PathBuf {
        self.path.join(format!("{key:016x}"))
    }
}

/// Whether sockets named by [`SOCKET_NAME_LEN`] hex digits in `dir` can be bound by OpenSSH.
fn fits(dir: &Path) -> bool {
    dir.as_os_str().len() + 1 + SOCKET_NAME_LEN + OPENSSH_TEMP_SUFFIX <= SOCKET_PATH_MAX
}

/// `$TMPDIR/ovsup-<uid>`.
fn fallback_base() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
    std::env::temp_dir().join(format!("ovsup-{uid}"))
}

/// Create `dir` 0700 if missing; refuse it unless it is a directory of ours that nobody else
/// can enter (a shared /tmp is where someone else could have made it first).
fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::io(dir, e))?;
        }
        Err(e) => return Err(Error::io(dir, e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| Error::io(dir, e))?;
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    if !meta.is_dir() || Some(meta.uid()) != me || meta.mode() & 0o077 != 0 {
        return Err(Error::Refused(format!(
            "the SSH control directory {} is not a private directory of this user (mode {:04o}, \
             uid {}): remove it, or give another --state-dir",
            dir.display(),
            meta.mode() & 0o7777,
            meta.uid()
        )));
    }
    Ok(())
}

/// FNV-1a, 64 bits: the same on every machine and release (std's `DefaultHasher` promises
/// neither), so that a socket name means the same connection to every ovsup version.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_state_dir_holds_the_sockets_and_a_long_one_falls_back_to_a_private_dir() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let short = ControlDir::of(tmp.path()).expect("short");
        assert_eq!(short.path, tmp.path().join("ssh"));
        assert!(!short.fallback);
        short.ensure().expect("create");
        let mode = std::fs::metadata(&short.path).expect("stat").permissions();
        assert_eq!(mode.mode() & 0o777, 0o700);
        let socket = short.socket(0xabc);
        assert!(socket.as_os_str().len() + OPENSSH_TEMP_SUFFIX <= SOCKET_PATH_MAX);

        let long = tmp.path().join("x".repeat(90));
        let a = ControlDir::of(&long).expect("fallback");
        assert!(a.fallback, "{a:?}");
        assert!(fits(&a.path));
        // The same state directory always gets the same fallback, another one another.
        assert_eq!(ControlDir::of(&long).expect("again"), a);
        assert_ne!(
            ControlDir::of(&tmp.path().join("y".repeat(90)))
                .expect("other")
                .path,
            a.path
        );
    }

    #[test]
    fn a_control_dir_others_can_enter_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = ControlDir::of(tmp.path()).expect("dir");
        std::fs::create_dir(&dir.path).expect("mkdir");
        std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert!(matches!(dir.ensure(), Err(Error::Refused(_))));
    }
}
