//! What a node says of its health before and after a step (node-commands.md, "Node health"):
//! `dpkg --audit` (which exits 0 either way: only its output tells), `df --output=avail -B1`,
//! `stat -c %Y` of apt's update stamp, `ip -4 -o addr show dev backplane1`, and the package
//! sizes of `apt-cache show`.

use super::unexpected;
use crate::error::Result;

/// A package `dpkg --audit` lists, with the section it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audited {
    /// The package.
    pub package: String,
    /// What dpkg says of it: the first line of its section (`The following packages are only
    /// half configured, …`), shortened to the state (`half configured`).
    pub problem: String,
}

/// The packages `dpkg --audit` complains about (empty when it printed nothing). Section
/// headers start at the margin; package lines are `" %-20s %s"`.
pub fn dpkg_audit(stdout: &str, node: &str, command: &str) -> Result<Vec<Audited>> {
    let mut out = Vec::new();
    let mut problem: Option<String> = None;
    for line in stdout.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("The following packages ") {
            let what = rest
                .trim_start_matches("are ")
                .trim_start_matches("have been ")
                .split([',', '.'])
                .next()
                .unwrap_or(rest)
                .trim_start_matches("only ")
                .trim();
            problem = Some(what.to_string());
            continue;
        }
        match (&problem, line.strip_prefix(' ')) {
            (Some(p), Some(row)) if !row.starts_with(' ') => {
                let package = row.split_whitespace().next().unwrap_or_default();
                out.push(Audited {
                    package: package.to_string(),
                    problem: p.clone(),
                });
            }
            // The explanation lines of a section (wrapped text at the margin).
            (Some(_), None) => {}
            _ => {
                return Err(unexpected(
                    node,
                    command,
                    line,
                    "a section of dpkg --audit (The following packages …) or a package line",
                ));
            }
        }
    }
    Ok(out)
}

/// The free bytes `df --output=avail -B1 PATH` reports: a header `Avail`, then a number.
pub fn df_avail(stdout: &str, node: &str, command: &str) -> Result<u64> {
    let mut lines = stdout.lines().filter(|l| !l.trim().is_empty());
    match (lines.next().map(str::trim), lines.next(), lines.next()) {
        (Some("Avail"), Some(n), None) => n
            .trim()
            .parse()
            .map_err(|_| unexpected(node, command, n, "the free bytes")),
        (Some("Avail"), _, _) | (None, _, _) => Err(unexpected(
            node,
            command,
            stdout.trim_end(),
            "`Avail` then one number",
        )),
        (Some(other), _, _) => Err(unexpected(node, command, other, "the header `Avail`")),
    }
}

/// The epoch seconds `stat -c %Y FILE` prints.
pub fn epoch_seconds(stdout: &str, node: &str, command: &str) -> Result<u64> {
    stdout
        .trim()
        .parse()
        .map_err(|_| unexpected(node, command, stdout.trim_end(), "epoch seconds"))
}

/// The IPv4 address of `ip -4 -o addr show dev IFACE` (the word after `inet`, without its
/// prefix length); `None` when the interface has no IPv4 address (no output).
pub fn ipv4(stdout: &str, node: &str, command: &str) -> Result<Option<std::net::Ipv4Addr>> {
    let Some(line) = stdout.lines().find(|l| !l.trim().is_empty()) else {
        return Ok(None);
    };
    let mut words = line.split_whitespace();
    let addr = words
        .by_ref()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok());
    addr.map(Some)
        .ok_or_else(|| unexpected(node, command, line, "`inet A.B.C.D/N`"))
}

/// A package's sizes from `apt-cache show --no-all-versions PKG…`: per stanza `Package:`,
/// `Version:`, `Size:` (bytes of the .deb) and `Installed-Size:` (KiB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sizes {
    /// The package.
    pub package: String,
    /// The version the stanza is for.
    pub version: String,
    /// Bytes to download.
    pub download: u64,
    /// Bytes unpacked.
    pub installed: u64,
}

/// Parse `apt-cache show` stanzas (other fields are skipped; continuation lines start with a
/// space).
pub fn apt_sizes(stdout: &str, node: &str, command: &str) -> Result<Vec<Sizes>> {
    let mut out = Vec::new();
    for stanza in stdout.split("\n\n").filter(|s| !s.trim().is_empty()) {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
                .map(str::trim)
        };
        let number = |name: &str| -> Result<u64> {
            let v = field(name).ok_or_else(|| {
                unexpected(
                    node,
                    command,
                    stanza.lines().next().unwrap_or(""),
                    &format!("a `{name}:` field"),
                )
            })?;
            v.parse()
                .map_err(|_| unexpected(node, command, v, "a number"))
        };
        let package = field("Package").ok_or_else(|| {
            unexpected(
                node,
                command,
                stanza.lines().next().unwrap_or(""),
                "a `Package:` field",
            )
        })?;
        out.push(Sizes {
            package: package.to_string(),
            version: field("Version").unwrap_or_default().to_string(),
            download: number("Size")?,
            installed: number("Installed-Size")? * 1024,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::parse::assert_rejected;

    #[test]
    fn dpkg_audit_sections() {
        assert!(
            dpkg_audit("", "n", "dpkg --audit")
                .expect("clean")
                .is_empty()
        );
        let text = "The following packages are only half configured, probably due to problems\n\
            configuring them the first time.  The configuration should be retried using\n\
            dpkg --configure <package> or the configure menu option in dselect:\n \
            alba                 ALBA: the Open vStorage backend\n\
            \n\
            The following packages have been unpacked but not yet configured.\n\
            They must be configured using dpkg --configure or the configure\n\
            menu option in dselect for them to work:\n \
            arakoon              Arakoon distributed key-value store\n";
        let a = dpkg_audit(text, "n", "dpkg --audit").expect("parsed");
        assert_eq!(a.len(), 2);
        assert_eq!(
            (a[0].package.as_str(), a[0].problem.as_str()),
            ("alba", "half configured")
        );
        assert_eq!(a[1].package, "arakoon");
        assert!(a[1].problem.starts_with("unpacked"), "{a:?}");
        assert_rejected(dpkg_audit(" alba   x\n", "n", "c"), "n", "c", " alba   x");
    }

    #[test]
    fn df_stat_ip_sizes() {
        assert_eq!(
            df_avail("    Avail\n52134469632\n", "n", "c").expect("df"),
            52_134_469_632
        );
        assert!(df_avail("Filesystem 1K-blocks\n", "n", "c").is_err());
        assert_eq!(
            epoch_seconds("1764625113\n", "n", "c").expect("stat"),
            1_764_625_113
        );
        let ip = "5: backplane1    inet 10.107.1.11/24 brd 10.107.1.255 scope global backplane1\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(
            ipv4(ip, "n", "c").expect("ip"),
            Some("10.107.1.11".parse().expect("addr"))
        );
        assert_eq!(ipv4("", "n", "c").expect("none"), None);
        let show = "Package: alba\nVersion: 0.9.18-1\nInstalled-Size: 51200\nMaintainer: x\nSize: 10485760\nDescription: ALBA\n the backend\n\nPackage: arakoon\nVersion: 1.9.22-1\nSize: 2048\nInstalled-Size: 10\n";
        let s = apt_sizes(show, "n", "c").expect("sizes");
        assert_eq!(s[0].download, 10_485_760);
        assert_eq!(s[0].installed, 51_200 * 1024);
        assert_eq!(s[1].package, "arakoon");
    }
}
