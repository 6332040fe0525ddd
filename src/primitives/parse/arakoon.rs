//! Arakoon: a cluster's config file (`/opt/OpenvStorage/config/arakoon/<c>/<c>.cfg`, an INI
//! file whose keys come in any order and whose sections hold more keys than we read) and the
//! answers of `arakoon --who-master`, `--expect-progress-possible` and `--node-state`
//! (formats in node-commands.md, "Cluster topology"). Anything else is an error naming the
//! node, the file or command, and the line.

use std::collections::BTreeMap;

use super::unexpected;
use crate::error::Result;

/// One member of a cluster, as its config says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's id: the Open vStorage id of the node that runs it.
    pub id: String,
    /// Its (backplane) address.
    pub ip: String,
    /// Its client port.
    pub client_port: u16,
}

/// A cluster's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `cluster_id`.
    pub name: String,
    /// The members, in the order of `cluster =`.
    pub members: Vec<Member>,
}

/// Parse an INI text into sections of key → value (`;`/`#` comments and blank lines skipped).
fn sections(
    text: &str,
    node: &str,
    file: &str,
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            current = Some(name.trim().to_string());
            out.entry(name.trim().to_string()).or_default();
            continue;
        }
        let (Some(section), Some((key, value))) = (&current, t.split_once('=')) else {
            return Err(unexpected(
                node,
                file,
                line,
                "an INI `[section]` or `key = value` line",
            ));
        };
        out.entry(section.clone())
            .or_default()
            .insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(out)
}

/// Parse a cluster's config file (`file` names it in errors).
pub fn config(text: &str, node: &str, file: &str) -> Result<Config> {
    let s = sections(text, node, file)?;
    let global = s
        .get("global")
        .ok_or_else(|| unexpected(node, file, "", "a [global] section"))?;
    let get = |sec: &BTreeMap<String, String>, key: &str, line: &str| {
        sec.get(key)
            .cloned()
            .ok_or_else(|| unexpected(node, file, line, &format!("a `{key} =` line")))
    };
    let name = get(global, "cluster_id", "[global]")?;
    let ids = get(global, "cluster", "[global]")?;
    let mut members = Vec::new();
    for id in ids.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let header = format!("[{id}]");
        let sec = s.get(id).ok_or_else(|| {
            unexpected(
                node,
                file,
                &header,
                "a section for every member of `cluster =`",
            )
        })?;
        let port = get(sec, "client_port", &header)?;
        members.push(Member {
            id: id.to_string(),
            ip: get(sec, "ip", &header)?,
            client_port: port.parse().map_err(|_| {
                unexpected(
                    node,
                    file,
                    &format!("client_port = {port}"),
                    "a port number",
                )
            })?,
        });
    }
    if members.is_empty() || members.len() > 5 {
        return Err(unexpected(
            node,
            file,
            &format!("cluster = {ids}"),
            "1 to 5 member ids",
        ));
    }
    Ok(Config { name, members })
}

/// What `arakoon --who-master` (or `--expect-progress-possible`) said when it found no
/// master: `No Master` (no majority, or an election going on), or `too many nodes down`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoMaster {
    /// `Failure("No Master")`.
    NoMaster,
    /// `Failure("too many nodes down")`: no member answered at all.
    TooManyDown,
}

impl NoMaster {
    /// As people read it.
    pub fn as_str(&self) -> &'static str {
        match self {
            NoMaster::NoMaster => "no master (no majority, or an election going on)",
            NoMaster::TooManyDown => "no member answers (too many nodes down)",
        }
    }
}

/// Why a query found no master, from its exit code and stderr; `None` when the failure is
/// another one (a usage error, a missing config).
pub fn no_master(code: i32, stderr: &str) -> Option<NoMaster> {
    if code != 2 {
        return None;
    }
    if stderr.contains("Failure(\"No Master\")") {
        Some(NoMaster::NoMaster)
    } else if stderr.contains("Failure(\"too many nodes down\")") {
        Some(NoMaster::TooManyDown)
    } else {
        None
    }
}

/// The master's id from `arakoon --who-master` (exit 0): one id and a newline.
pub fn master(stdout: &str, node: &str, command: &str) -> Result<String> {
    let id = stdout.trim();
    if id.is_empty() || id.contains(char::is_whitespace) {
        return Err(unexpected(node, command, stdout.trim_end(), "one node id"));
    }
    Ok(id.to_string())
}

/// The answer of `arakoon --expect-progress-possible` (exit 0): `true` or `false`.
pub fn progress_possible(stdout: &str, node: &str, command: &str) -> Result<bool> {
    match stdout.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(unexpected(node, command, other, "true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::parse::assert_rejected;

    const CFG: &str = "[global]\n\
        cluster = JDyVRCypsKVzbXH2,cRNyY9B3hKUTQsHp,tGLpPNHEDxNOOqOZ\n\
        cluster_id = ovsdb\n\
        plugins =\n\
        \n\
        [JDyVRCypsKVzbXH2]\n\
        name = JDyVRCypsKVzbXH2\n\
        ip = 10.107.1.11\n\
        client_port = 26400\n\
        messaging_port = 26401\n\
        home = /opt/OpenvStorage/db/arakoon/ovsdb/db\n\
        log_level = info\n\
        \n\
        [tGLpPNHEDxNOOqOZ]\n\
        client_port = 26400\n\
        log_level = info\n\
        ip = 10.107.1.13\n\
        \n\
        [cRNyY9B3hKUTQsHp]\n\
        ip = 10.107.1.12\n\
        name = cRNyY9B3hKUTQsHp\n\
        client_port = 26402\n";

    #[test]
    fn a_config_in_any_key_order() {
        let c = config(CFG, "node-02", "ovsdb.cfg").expect("parsed");
        assert_eq!(c.name, "ovsdb");
        let ids: Vec<&str> = c.members.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(
            ids,
            ["JDyVRCypsKVzbXH2", "cRNyY9B3hKUTQsHp", "tGLpPNHEDxNOOqOZ"]
        );
        assert_eq!(c.members[1].ip, "10.107.1.12");
        assert_eq!(c.members[1].client_port, 26402);
    }

    #[test]
    fn a_config_without_a_member_section_is_rejected() {
        let broken = CFG.replace("[tGLpPNHEDxNOOqOZ]", "[someoneElse]");
        assert_rejected(
            config(&broken, "node-02", "ovsdb.cfg"),
            "node-02",
            "ovsdb.cfg",
            "[tGLpPNHEDxNOOqOZ]",
        );
        assert_rejected(
            config("cluster = a\n", "node-02", "x.cfg"),
            "node-02",
            "x.cfg",
            "cluster = a",
        );
    }

    #[test]
    fn master_answers() {
        assert_eq!(
            master("JDyVRCypsKVzbXH2\n", "n", "c").expect("id"),
            "JDyVRCypsKVzbXH2"
        );
        assert_eq!(
            no_master(2, "Fatal error: exception Failure(\"No Master\")\n"),
            Some(NoMaster::NoMaster)
        );
        assert_eq!(
            no_master(
                2,
                "Fatal error: exception Failure(\"too many nodes down\")\n"
            ),
            Some(NoMaster::TooManyDown)
        );
        assert_eq!(no_master(2, "arakoon: unknown option '--config'\n"), None);
        assert!(progress_possible("true\n", "n", "c").expect("bool"));
        assert!(progress_possible("maybe\n", "n", "c").is_err());
    }
}
