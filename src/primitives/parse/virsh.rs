//! `virsh list --name` and `virsh domstate DOM` (libvirt 1.2 and newer).
//!
//! `virsh list --name` prints one domain name a line and then an empty line (older builds
//! may leave the empty line out; both are accepted). Names may hold spaces and quotes, so a
//! line is taken verbatim; what no domain name looks like (the table header of `virsh list`
//! without `--name`, an `error:` line, an empty line before the end, a line starting or
//! ending with whitespace) is rejected.

use super::unexpected;
use crate::error::Result;

/// The state `virsh domstate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomState {
    /// `running`.
    Running,
    /// `idle` (running, but blocked on a resource; older libvirt says `blocked`).
    Idle,
    /// `paused`.
    Paused,
    /// `in shutdown`: the guest was asked to stop and has not yet.
    InShutdown,
    /// `shut off`.
    ShutOff,
    /// `crashed`.
    Crashed,
    /// `pmsuspended`: suspended by guest power management.
    PmSuspended,
}

impl DomState {
    /// The word virsh prints.
    pub fn as_str(self) -> &'static str {
        match self {
            DomState::Running => "running",
            DomState::Idle => "idle",
            DomState::Paused => "paused",
            DomState::InShutdown => "in shutdown",
            DomState::ShutOff => "shut off",
            DomState::Crashed => "crashed",
            DomState::PmSuspended => "pmsuspended",
        }
    }

    /// True when the domain no longer runs (`shut off`, `crashed`).
    pub fn is_off(self) -> bool {
        matches!(self, DomState::ShutOff | DomState::Crashed)
    }
}

/// The domain names `virsh list --name` (or `virsh list --all --name`) printed on `node`.
pub fn list_names(node: &str, command: &str, stdout: &str) -> Result<Vec<String>> {
    let mut lines: Vec<&str> = stdout.split('\n').collect();
    // `split` leaves "" after the final newline; then comes virsh's own empty line.
    if lines.last() == Some(&"") {
        lines.pop();
    }
    if lines.last() == Some(&"") {
        lines.pop();
    }
    let mut names = Vec::with_capacity(lines.len());
    for line in lines {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            return Err(unexpected(
                node,
                command,
                line,
                "an empty line before the end of the domain list",
            ));
        }
        if line.trim() != line {
            return Err(unexpected(
                node,
                command,
                line,
                "a domain name (no leading or trailing whitespace; is `--name` missing?)",
            ));
        }
        if line.starts_with("error:") || line.chars().all(|c| c == '-') {
            return Err(unexpected(node, command, line, "a domain name"));
        }
        if line.chars().any(char::is_control) {
            return Err(unexpected(
                node,
                command,
                line,
                "a domain name without control characters",
            ));
        }
        names.push(line.to_string());
    }
    Ok(names)
}

/// The state `virsh domstate DOM` printed on `node` (one line, then an empty line).
pub fn domstate(node: &str, command: &str, stdout: &str) -> Result<DomState> {
    let mut lines = stdout.lines().map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().unwrap_or("");
    if let Some(extra) = lines.find(|l| !l.is_empty()) {
        return Err(unexpected(node, command, extra, "one domain state line"));
    }
    Ok(match first {
        "running" => DomState::Running,
        "idle" | "blocked" => DomState::Idle,
        "paused" => DomState::Paused,
        "in shutdown" => DomState::InShutdown,
        "shut off" => DomState::ShutOff,
        "crashed" => DomState::Crashed,
        "pmsuspended" => DomState::PmSuspended,
        other => {
            return Err(unexpected(
                node,
                command,
                other,
                "a domain state (running, idle, paused, in shutdown, shut off, crashed, pmsuspended)",
            ));
        }
    })
}

/// True when a failed `virsh start DOM` said the domain already runs.
pub fn already_active(stderr: &str) -> bool {
    stderr.contains("domain is already active")
}

/// True when a failed `virsh shutdown|destroy DOM` said the domain does not run.
pub fn not_running(stderr: &str) -> bool {
    stderr.contains("domain is not running")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    const CMD: &str = "virsh list --name";

    #[test]
    fn names_with_the_trailing_empty_line() {
        let names = list_names("n", CMD, "vm-0 o'brien test\nvm-0-db\nvm-0-web\n\n").unwrap();
        assert_eq!(names, ["vm-0 o'brien test", "vm-0-db", "vm-0-web"]);
    }

    #[test]
    fn without_the_trailing_empty_line_and_empty() {
        assert_eq!(list_names("n", CMD, "a\nb\n").unwrap(), ["a", "b"]);
        assert!(list_names("n", CMD, "\n").unwrap().is_empty());
        assert!(list_names("n", CMD, "").unwrap().is_empty());
    }

    #[test]
    fn rejects_what_is_not_a_name_list() {
        let table = " Id    Name                           State\n\
                     ----------------------------------------------------\n 1     vm running\n\n";
        match list_names("node-01", CMD, table) {
            Err(Error::Unexpected { node, line, .. }) => {
                assert_eq!(node, "node-01");
                assert!(line.contains("Id"), "{line}");
            }
            other => panic!("{other:?}"),
        }
        assert!(list_names("n", CMD, "a\n\nb\n\n").is_err());
        assert!(list_names("n", CMD, "error: failed to connect\n").is_err());
        assert!(list_names("n", CMD, "a\tb\n").is_err());
    }

    #[test]
    fn domstate_words() {
        assert_eq!(
            domstate("n", "virsh domstate a", "running\n\n").unwrap(),
            DomState::Running
        );
        assert_eq!(
            domstate("n", "c", "in shutdown\n\n").unwrap(),
            DomState::InShutdown
        );
        assert_eq!(domstate("n", "c", "shut off\n").unwrap(), DomState::ShutOff);
        assert!(DomState::Crashed.is_off());
        assert!(!DomState::InShutdown.is_off());
        assert!(domstate("n", "c", "running\nextra\n").is_err());
        match domstate("n", "c", "exploded\n\n") {
            Err(Error::Unexpected { line, .. }) => assert_eq!(line, "exploded"),
            other => panic!("{other:?}"),
        }
    }
}
