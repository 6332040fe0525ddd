//! What `apt-cache policy`, `apt-get update` and `apt-get --version` print. Both apt 1.0
//! (version-table priorities of 0) and apt 1.2+ (real priorities, `N: Unable to locate
//! package`) layouts are accepted; any other line is an [`Error::Unexpected`] naming it.

use std::collections::BTreeMap;

use super::unexpected;
use crate::error::Result;

/// What apt knows of one package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// The installed version (`None` for `Installed: (none)`).
    pub installed: Option<String>,
    /// The version `apt-get install` would install (`None` for `Candidate: (none)`).
    pub candidate: Option<String>,
}

/// A version field value: `(none)` is no version.
fn version_field(value: &str) -> Option<String> {
    match value.trim() {
        "(none)" | "" => None,
        v => Some(v.to_string()),
    }
}

fn is_version(word: &str) -> bool {
    !word.is_empty()
        && word.chars().next().is_some_and(|c| c.is_ascii_digit())
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+-~:".contains(c))
}

/// A version-table line: `     0.9.18-1 500` or ` *** 0.9.17-1 100` (apt 1.0: priority 0).
fn is_version_line(line: &str) -> bool {
    let rest = line
        .strip_prefix(" *** ")
        .or_else(|| line.strip_prefix("     "));
    let Some(rest) = rest else {
        return false;
    };
    let mut words = rest.split_whitespace();
    matches!(
        (words.next(), words.next(), words.next()),
        (Some(v), Some(p), None) if is_version(v) && p.parse::<i64>().is_ok()
    )
}

/// A source line under a version: `        500 http://… Packages` or `        100 /var/lib/dpkg/status`.
fn is_source_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("        ") else {
        return false;
    };
    let mut words = rest.split_whitespace();
    matches!((words.next(), words.next()), (Some(p), Some(_)) if p.parse::<i64>().is_ok())
}

/// A package block being read: its name, then its `Installed:` and `Candidate:` values once seen.
struct Block {
    name: String,
    installed: Option<Option<String>>,
    candidate: Option<Option<String>>,
}

impl Block {
    fn finish(self, out: &mut BTreeMap<String, Policy>, node: &str, command: &str) -> Result<()> {
        match (self.installed, self.candidate) {
            (Some(installed), Some(candidate)) => {
                out.insert(
                    self.name,
                    Policy {
                        installed,
                        candidate,
                    },
                );
                Ok(())
            }
            _ => Err(unexpected(
                node,
                command,
                &format!("{}:", self.name),
                "a package block without its Installed: and Candidate: lines",
            )),
        }
    }
}

/// Parse `apt-cache policy PKG…` (stdout; stderr may be passed too: its
/// `N: Unable to locate package` notes are skipped). Packages apt does not know have no entry.
pub fn policy(text: &str, node: &str, command: &str) -> Result<BTreeMap<String, Policy>> {
    let mut out: BTreeMap<String, Policy> = BTreeMap::new();
    let mut current: Option<Block> = None;
    // Inside the block's version table (after `  Version table:`).
    let mut in_table = false;
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with("N: Unable to locate package ") {
            continue;
        }
        if !line.starts_with(' ') {
            match line.strip_suffix(':') {
                Some(name) if !name.is_empty() && !name.contains(char::is_whitespace) => {
                    if let Some(done) = current.take() {
                        done.finish(&mut out, node, command)?;
                    }
                    current = Some(Block {
                        name: name.to_string(),
                        installed: None,
                        candidate: None,
                    });
                    in_table = false;
                    continue;
                }
                _ => {
                    return Err(unexpected(
                        node,
                        command,
                        line,
                        "expected a package name followed by ':'",
                    ));
                }
            }
        }
        let Some(block) = current.as_mut() else {
            return Err(unexpected(
                node,
                command,
                line,
                "expected a package name before its details",
            ));
        };
        if !in_table {
            if let Some(v) = line.strip_prefix("  Installed:") {
                block.installed = Some(version_field(v));
                continue;
            }
            if let Some(v) = line.strip_prefix("  Candidate:") {
                block.candidate = Some(version_field(v));
                continue;
            }
            if line.starts_with("  Package pin:") {
                continue;
            }
            if line == "  Version table:" {
                in_table = true;
                continue;
            }
        } else if is_version_line(line) || is_source_line(line) {
            continue;
        }
        return Err(unexpected(
            node,
            command,
            line,
            "not a line of apt-cache policy",
        ));
    }
    if let Some(done) = current.take() {
        done.finish(&mut out, node, command)?;
    }
    Ok(out)
}

/// Whether a `W:`/`E:` line of `apt-get update` means that a source was not refreshed: older
/// apt reports a source it failed to fetch as `W: Failed to fetch …` and still exits 0, and
/// the lists of that source are then the old ones.
pub fn is_refresh_failure(line: &str) -> bool {
    const FAILED: [&str; 6] = [
        "Failed to fetch",
        "Some index files failed to download",
        "GPG error",
        "is not signed",
        "does not have a Release file",
        "Could not resolve",
    ];
    line.starts_with("E: ") || (line.starts_with("W: ") && FAILED.iter().any(|f| line.contains(f)))
}

/// The warnings and errors apt printed although `apt-get update` exited 0 (older apt reports
/// a source it failed to fetch as `W: Failed to fetch …` and still succeeds).
pub fn update_warnings(stdout: &str, stderr: &str) -> Vec<String> {
    stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.starts_with("W: ") || l.starts_with("E: "))
        .map(str::to_string)
        .collect()
}

/// The apt version from `apt-get --version` (`apt 1.0.1ubuntu2 for amd64 compiled on …`,
/// `apt 1.2.35 (amd64)`): (major, minor).
pub fn version(text: &str, node: &str, command: &str) -> Result<(u32, u32)> {
    let first = text.lines().next().unwrap_or("");
    let parsed = first
        .strip_prefix("apt ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| {
            let mut parts = v.split('.');
            let major = parts.next()?.parse::<u32>().ok()?;
            let minor: String = parts
                .next()?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            Some((major, minor.parse::<u32>().ok()?))
        });
    parsed.ok_or_else(|| unexpected(node, command, first, "expected `apt X.Y…`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::primitives::parse::assert_rejected;

    const APT12: &str = "alba:
  Installed: 0.9.17-1
  Candidate: 0.9.18-1
  Version table:
     0.9.18-1 500
        500 http://apt.openvstorage.org unstable/main amd64 Packages
 *** 0.9.17-1 100
        100 /var/lib/dpkg/status
arakoon:
  Installed: (none)
  Candidate: 1.9.22-1
  Version table:
     1.9.22-1 500
        500 http://apt.openvstorage.org unstable/main amd64 Packages
N: Unable to locate package nosuch
";

    const APT10: &str = "alba:
  Installed: 0.9.17-1
  Candidate: 0.9.18-1
  Version table:
     0.9.18-1 0
        500 http://apt.openvstorage.org/ unstable/main amd64 Packages
 *** 0.9.17-1 0
        100 /var/lib/dpkg/status
openvstorage-core:
  Installed: 2.7.2-rev.3735.aa53c43-1
  Candidate: 2.7.2-rev.3735.aa53c43-1
  Package pin: 2.7.2-rev.3735.aa53c43-1
  Version table:
 *** 2.7.2-rev.3735.aa53c43-1 0
        500 http://apt.openvstorage.org/ unstable/main amd64 Packages
        100 /var/lib/dpkg/status
";

    fn p(installed: Option<&str>, candidate: Option<&str>) -> Policy {
        Policy {
            installed: installed.map(str::to_string),
            candidate: candidate.map(str::to_string),
        }
    }

    #[test]
    fn apt12_layout_none_and_unknown() {
        let m = policy(APT12, "n1", "apt-cache policy alba arakoon nosuch").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["alba"], p(Some("0.9.17-1"), Some("0.9.18-1")));
        assert_eq!(m["arakoon"], p(None, Some("1.9.22-1")));
        assert!(!m.contains_key("nosuch"));
    }

    #[test]
    fn apt10_layout() {
        let m = policy(APT10, "n1", "c").unwrap();
        assert_eq!(m["alba"], p(Some("0.9.17-1"), Some("0.9.18-1")));
        assert_eq!(
            m["openvstorage-core"],
            p(
                Some("2.7.2-rev.3735.aa53c43-1"),
                Some("2.7.2-rev.3735.aa53c43-1")
            )
        );
    }

    #[test]
    fn empty_and_virtual() {
        assert!(policy("", "n1", "c").unwrap().is_empty());
        let m = policy(
            "mail-transport-agent:\n  Installed: (none)\n  Candidate: (none)\n  Version table:\n",
            "n1",
            "c",
        )
        .unwrap();
        assert_eq!(m["mail-transport-agent"], p(None, None));
    }

    #[test]
    fn rejects_unexpected_lines() {
        for (text, bad) in [
            (
                "alba:\n  Installed: 1\n  Candidate: 1\n  Surprise: x\n",
                "  Surprise: x",
            ),
            ("  Installed: 1\n", "  Installed: 1"),
            ("E: Something broke\n", "E: Something broke"),
            (
                "alba:\n  Installed: 1\n  Candidate: 1\n  Version table:\n  garbage\n",
                "  garbage",
            ),
            ("alba:\n  Version table:\n", "alba:"),
        ] {
            let parsed = policy(text, "node-01", "apt-cache policy alba");
            assert_rejected(parsed, "node-01", "apt-cache policy alba", bad);
        }
    }

    #[test]
    fn warnings_of_update() {
        let out = "Hit http://archive.ubuntu.com trusty Release\nFetched 2,389 B in 0s (5,012 B/s)\nReading package lists... Done\n";
        assert!(update_warnings(out, "").is_empty());
        let err = "W: Failed to fetch http://apt.openvstorage.org/dists/unstable/Release  Unable to find expected entry\n\nE: Some index files failed to download. They have been ignored, or old ones used instead.\n";
        let w = update_warnings(out, err);
        assert_eq!(w.len(), 2);
        assert!(w.iter().all(|l| is_refresh_failure(l)), "{w:?}");
        assert!(!is_refresh_failure(
            "W: --force-yes is deprecated, use one of the options starting with --allow instead."
        ));
        assert!(w[0].starts_with("W: Failed to fetch http://apt.openvstorage.org"));
    }

    #[test]
    fn apt_versions() {
        assert_eq!(
            version(
                "apt 1.0.1ubuntu2 for amd64 compiled on Jan 23 2019 18:56:44\nSupported modules:\n",
                "n",
                "c"
            )
            .unwrap(),
            (1, 0)
        );
        assert_eq!(version("apt 1.2.35 (amd64)\n", "n", "c").unwrap(), (1, 2));
        assert!(matches!(
            version("sh: 1: apt-get: not found", "n", "c"),
            Err(Error::Unexpected { line, .. }) if line == "sh: 1: apt-get: not found"
        ));
    }
}
