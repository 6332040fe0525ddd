//! What `dpkg-query -W --showformat='${binary:Package}\t${Version}\t${db:Status-Abbrev}\n'`
//! prints: one line per package dpkg knows that matches a pattern. Anything else is an
//! [`Error::Unexpected`] naming the line.

use super::unexpected;
use crate::error::Result;

/// The `--showformat` the parser below reads.
pub const FORMAT: &str = r"${binary:Package}\t${Version}\t${db:Status-Abbrev}\n";

/// One package as dpkg knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpkgPackage {
    /// The package name (`binary:Package`).
    pub name: String,
    /// Its version (empty for a package dpkg only knows by name).
    pub version: String,
    /// The status abbreviation: desired action, status and error flag (`ii `, `rc `, `iU `…).
    pub status: String,
}

/// The state of a package as dpkg records it (the second letter of `${db:Status-Abbrev}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// `ii`: installed and configured.
    Installed,
    /// `iU`: unpacked, not configured.
    Unpacked,
    /// `iF`: half-configured (its postinst failed).
    HalfConfigured,
    /// `iH`: half-installed (its unpacking failed).
    HalfInstalled,
    /// `iW`: waiting for another package's triggers.
    TriggersAwaited,
    /// `it`: its own triggers pending.
    TriggersPending,
    /// `rc`: removed, its config files left.
    ConfigFiles,
    /// `un`: not installed.
    NotInstalled,
}

impl State {
    /// The word scripts and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Installed => "installed",
            State::Unpacked => "unpacked",
            State::HalfConfigured => "half-configured",
            State::HalfInstalled => "half-installed",
            State::TriggersAwaited => "triggers-awaited",
            State::TriggersPending => "triggers-pending",
            State::ConfigFiles => "config-files",
            State::NotInstalled => "not-installed",
        }
    }

    /// Whether dpkg left the package half-done: it must be configured before anything is
    /// restarted, whatever its version says.
    pub fn is_broken(self) -> bool {
        matches!(
            self,
            State::Unpacked
                | State::HalfConfigured
                | State::HalfInstalled
                | State::TriggersAwaited
                | State::TriggersPending
        )
    }
}

impl DpkgPackage {
    /// The package's state.
    pub fn state(&self) -> State {
        match self.status.chars().nth(1) {
            Some('i') => State::Installed,
            Some('U') => State::Unpacked,
            Some('F') => State::HalfConfigured,
            Some('H') => State::HalfInstalled,
            Some('W') => State::TriggersAwaited,
            Some('t') => State::TriggersPending,
            Some('c') => State::ConfigFiles,
            _ => State::NotInstalled,
        }
    }

    /// Whether the package is on the system, fully or half installed (status other than
    /// `n` not-installed and `c` config-files only).
    pub fn present(&self) -> bool {
        !matches!(self.status.chars().nth(1), Some('n' | 'c') | None)
    }
}

fn valid_status(s: &str) -> bool {
    let c: Vec<char> = s.chars().collect();
    matches!(c.len(), 2 | 3)
        && "uihrp".contains(c[0])
        && "ncHUFWti".contains(c[1])
        && c.get(2).is_none_or(|e| " R".contains(*e))
}

/// Parse the lines printed with [`FORMAT`].
pub fn query(text: &str, node: &str, command: &str) -> Result<Vec<DpkgPackage>> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            [name, version, status]
                if !name.is_empty()
                    && !name.contains(char::is_whitespace)
                    && !version.contains(char::is_whitespace)
                    && valid_status(status) =>
            {
                out.push(DpkgPackage {
                    name: (*name).to_string(),
                    version: (*version).to_string(),
                    status: (*status).to_string(),
                });
            }
            _ => {
                return Err(unexpected(
                    node,
                    command,
                    line,
                    "expected `name<TAB>version<TAB>status`",
                ));
            }
        }
    }
    Ok(out)
}

/// Whether an exit 1 of `dpkg-query -W` only means that some patterns matched nothing: every
/// stderr line reads `dpkg-query: no packages found matching PATTERN`.
pub fn only_no_match(stderr: &str) -> bool {
    let mut lines = stderr.lines().filter(|l| !l.trim().is_empty()).peekable();
    lines.peek().is_some()
        && lines.all(|l| l.starts_with("dpkg-query: no packages found matching "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::parse::assert_rejected;

    #[test]
    fn installed_and_removed() {
        let text = "openvstorage\t2.7.2-rev.3735.aa53c43-1\tii \n\
                    openvstorage-core\t2.7.2-rev.3735.aa53c43-1\tii \n\
                    openvstorage-sdm\t1.0-1\trc \n\
                    openvstorage-hc\t\tun \n";
        let p = query(text, "n1", "dpkg-query").unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].name, "openvstorage");
        assert_eq!(p[0].version, "2.7.2-rev.3735.aa53c43-1");
        assert!(p[0].present() && p[1].present());
        assert!(!p[2].present() && !p[3].present());
        assert_eq!(p[0].state(), State::Installed);
        assert_eq!(p[2].state(), State::ConfigFiles);
        let half = query("alba\t0.9.18-1\tiF \n", "n1", "c").unwrap();
        assert_eq!(half[0].state(), State::HalfConfigured);
        assert!(half[0].present() && half[0].state().is_broken());
    }

    #[test]
    fn no_match_is_recognised() {
        assert!(only_no_match(
            "dpkg-query: no packages found matching foo*\n"
        ));
        assert!(!only_no_match(""));
        assert!(!only_no_match(
            "dpkg-query: error: --show needs at least one package name argument\n"
        ));
    }

    #[test]
    fn rejects_unexpected_lines() {
        for bad in [
            "openvstorage 2.7.2-1 ii",
            "alba\t0.9.17-1\tzz ",
            "alba\t0.9.17-1\tii \textra",
        ] {
            let parsed = query(&format!("{bad}\n"), "node-01", "dpkg-query -W");
            assert_rejected(parsed, "node-01", "dpkg-query -W", bad);
        }
    }
}
