//! What `systemctl list-units --type=service --all --no-legend --plain PATTERN` and
//! `systemctl show -p PROP UNIT` print. Anything else is an [`Error::Unexpected`] naming the line.

use std::collections::BTreeMap;

use super::unexpected;
use crate::error::Result;

/// One service unit as `list-units` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The service name without `.service` (the upstart job name of older nodes).
    pub name: String,
    /// `loaded`, `not-found`, `masked`…
    pub load: String,
    /// `active`, `inactive`, `failed`, `activating`…
    pub active: String,
    /// `running`, `dead`, `exited`…
    pub sub: String,
    /// The unit's description.
    pub description: String,
}

const LOAD: [&str; 7] = [
    "loaded",
    "not-found",
    "masked",
    "error",
    "bad-setting",
    "stub",
    "merged",
];
const ACTIVE: [&str; 7] = [
    "active",
    "reloading",
    "inactive",
    "failed",
    "activating",
    "deactivating",
    "maintenance",
];

/// Parse `systemctl list-units --type=service --all --no-legend --plain …`.
pub fn list_units(text: &str, node: &str, command: &str) -> Result<Vec<Unit>> {
    let mut units = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        // Newer systemd marks failed or not-found units with a bullet even with --plain.
        let body = line.trim_start().trim_start_matches('●').trim_start();
        let mut words = body.split_whitespace();
        let parsed = match (words.next(), words.next(), words.next(), words.next()) {
            (Some(unit), Some(load), Some(active), Some(sub))
                if LOAD.contains(&load) && ACTIVE.contains(&active) =>
            {
                unit.strip_suffix(".service")
                    .filter(|n| !n.is_empty())
                    .map(|name| Unit {
                        name: name.to_string(),
                        load: load.to_string(),
                        active: active.to_string(),
                        sub: sub.to_string(),
                        description: words.collect::<Vec<_>>().join(" "),
                    })
            }
            _ => None,
        };
        match parsed {
            Some(u) => units.push(u),
            None => {
                return Err(unexpected(
                    node,
                    command,
                    line,
                    "expected `UNIT.service LOAD ACTIVE SUB DESCRIPTION`",
                ));
            }
        }
    }
    Ok(units)
}

/// Parse `systemctl show -p A -p B UNIT`: `KEY=VALUE` lines, in whatever order systemd prints them.
pub fn show(text: &str, node: &str, command: &str) -> Result<BTreeMap<String, String>> {
    let mut props = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric()) => {
                props.insert(k.to_string(), v.to_string());
            }
            _ => return Err(unexpected(node, command, line, "expected `Property=value`")),
        }
    }
    Ok(props)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::primitives::parse::assert_rejected;

    #[test]
    fn list_units_plain() {
        let text = "ovs-arakoon-ovsdb.service     loaded active   running Arakoon service for cluster ovsdb\n\
                    ovs-watcher-framework.service loaded active   running Watcher for Open vStorage framework\n\
                    ovs-webapp-api.service        loaded inactive dead    Open vStorage webapp API\n\
                    ovs-gone.service              not-found inactive dead ovs-gone.service\n\
                    ● ovs-broken.service          loaded failed   failed  Broken\n";
        let u = list_units(text, "n2", "systemctl list-units").unwrap();
        assert_eq!(u.len(), 5);
        assert_eq!(u[1].name, "ovs-watcher-framework");
        assert_eq!(u[1].active, "active");
        assert_eq!(u[1].sub, "running");
        assert_eq!(u[1].description, "Watcher for Open vStorage framework");
        assert_eq!(u[2].active, "inactive");
        assert_eq!(u[3].load, "not-found");
        assert_eq!(u[4].name, "ovs-broken");
        assert_eq!(u[4].active, "failed");
        assert!(list_units("", "n2", "c").unwrap().is_empty());
    }

    #[test]
    fn show_properties() {
        let p = show(
            "MainPID=1234\nActiveState=active\nLoadState=loaded\n",
            "n2",
            "c",
        )
        .unwrap();
        assert_eq!(p["MainPID"], "1234");
        assert_eq!(p["LoadState"], "loaded");
        let p = show("LoadState=not-found\nMainPID=0\n", "n2", "c").unwrap();
        assert_eq!(p["MainPID"], "0");
    }

    #[test]
    fn rejects_unexpected_lines() {
        for bad in [
            "UNIT LOAD ACTIVE SUB DESCRIPTION",
            "ovs-webapp-api.service loaded sleepy dead x",
            "ovs-data.mount loaded active mounted /data",
            "1 loaded units listed.",
        ] {
            let parsed = list_units(&format!("{bad}\n"), "node-02", "systemctl list-units");
            assert_rejected(parsed, "node-02", "systemctl list-units", bad);
        }
        assert!(matches!(
            show("Failed to get properties\n", "node-02", "systemctl show"),
            Err(Error::Unexpected { line, .. }) if line == "Failed to get properties"
        ));
    }
}
