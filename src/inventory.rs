//! The inventory: which nodes exist, how to reach them, and which of them a run targets.
//!
//! The file is TOML (`[defaults]` and `[nodes.NAME]`); every problem is reported with the file,
//! line and column and what was expected, and exits 2. Host names and users are screened here,
//! once, because the `openssh` crate hands them to `ssh` without `--`: a host name such as
//! `-oProxyCommand=…` would otherwise become an ssh option (the bug class of CVE-2017-1000117).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Location, Result};
use crate::name::{MAX_NAME_LEN, check_name};

/// The controller-side instances the legacy script never targeted.
pub const LEGACY_EXCLUDES: [&str; 4] = ["ovc_master", "ovc_proxy", "ovc_reflector", "ovc_dcpm"];

/// How strictly the node's host key is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyCheck {
    /// The key must already be in known_hosts (the default).
    #[default]
    Strict,
    /// An unknown key is added; a changed key is still refused.
    AcceptNew,
}

/// How ovsup talks to the nodes of an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Real nodes over SSH.
    Ssh,
    /// The built-in simulated cluster, run in-process.
    Sim,
}

/// One node of the inventory, with the defaults already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node's name (the inventory key); nodes are ordered by it.
    pub name: String,
    /// An address, or a `Host` alias of the ssh config.
    pub host: String,
    /// The SSH port, if not the ssh config's.
    pub port: Option<u16>,
    /// The remote user, if not the ssh config's.
    pub user: Option<String>,
    /// The private key, if not the ssh config's.
    pub identity_file: Option<PathBuf>,
    /// The groups the node belongs to.
    pub groups: Vec<String>,
    /// Host-key policy.
    pub host_key_check: HostKeyCheck,
    /// Bound on establishing the connection.
    pub connect_timeout: Duration,
    /// Bound on each remote command.
    pub command_timeout: Duration,
    /// How long an apt or dpkg command waits for a lock another process holds.
    pub apt_lock_wait: Duration,
}

/// A parsed inventory.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The environment's name: `[environment] name`, else derived from the inventory file's
    /// canonical path ([`derived_name`]); it keys the default state directory.
    pub name: String,
    /// The file it came from (`None` for the built-in simulated cluster).
    pub path: Option<PathBuf>,
    /// The OpenSSH client config passed as `ssh -F`.
    pub ssh_config: Option<PathBuf>,
    /// Names never targeted by `nodes()`.
    pub exclude: Vec<String>,
    /// Every node, ordered by name (excluded ones too: they exist, they are just not targets).
    pub nodes: Vec<Node>,
    /// How the nodes are reached.
    pub backend: Backend,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    environment: Option<RawEnvironment>,
    #[serde(default)]
    defaults: RawSettings,
    #[serde(default)]
    nodes: BTreeMap<Spanned<String>, RawNode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    name: Spanned<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    user: Option<Spanned<String>>,
    port: Option<u16>,
    identity_file: Option<Spanned<String>>,
    ssh_config: Option<Spanned<String>>,
    host_key_check: Option<HostKeyCheck>,
    exclude: Option<Vec<String>>,
    connect_timeout: Option<Spanned<u64>>,
    command_timeout: Option<Spanned<u64>>,
    apt_lock_wait: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    host: Spanned<String>,
    user: Option<Spanned<String>>,
    port: Option<u16>,
    identity_file: Option<Spanned<String>>,
    host_key_check: Option<HostKeyCheck>,
    connect_timeout: Option<Spanned<u64>>,
    command_timeout: Option<Spanned<u64>>,
    #[serde(default)]
    groups: Vec<String>,
}

const DEFAULT_CONNECT_TIMEOUT: u64 = 10;
const DEFAULT_COMMAND_TIMEOUT: u64 = 600;
const DEFAULT_APT_LOCK_WAIT: u64 = 120;

/// The text being parsed, for errors at a span.
struct Parser<'a> {
    path: &'a Path,
    text: &'a str,
}

/// What `[defaults]` gives every node.
struct Defaults<'a> {
    connect: Duration,
    command: Duration,
    identity_file: Option<PathBuf>,
    raw: &'a RawSettings,
}

impl Parser<'_> {
    fn at(&self, span: Option<Range<usize>>, message: String) -> Error {
        Error::Inventory {
            location: Location::of(self.path, self.text, span.map(|s| s.start).unwrap_or(0)),
            message,
        }
    }

    fn seconds(&self, v: &Option<Spanned<u64>>, fallback: u64) -> Result<Duration> {
        match v {
            Some(s) if *s.get_ref() == 0 => Err(self.at(
                Some(s.span()),
                "expected a timeout of at least 1 second".into(),
            )),
            Some(s) => Ok(Duration::from_secs(*s.get_ref())),
            None => Ok(Duration::from_secs(fallback)),
        }
    }

    /// A file the inventory names, resolved against the inventory's directory; it must be
    /// readable now.
    fn file(&self, value: &Spanned<String>) -> Result<PathBuf> {
        let base = self.path.parent().unwrap_or(Path::new("."));
        let resolved = resolve_path(base, value.get_ref());
        match std::fs::File::open(&resolved) {
            Ok(_) => Ok(resolved),
            Err(e) => Err(self.at(
                Some(value.span()),
                format!("cannot read {}: {e}", resolved.display()),
            )),
        }
    }

    /// One `[nodes.NAME]` table, with the defaults applied and every word screened.
    fn node(&self, name: Spanned<String>, n: RawNode, d: &Defaults<'_>) -> Result<Node> {
        check_name(name.get_ref()).map_err(|m| self.at(Some(name.span()), m))?;
        check_word("host", n.host.get_ref()).map_err(|m| self.at(Some(n.host.span()), m))?;
        let user = n.user.or_else(|| d.raw.user.clone());
        if let Some(u) = &user {
            check_word("user", u.get_ref()).map_err(|m| self.at(Some(u.span()), m))?;
        }
        for g in &n.groups {
            check_name(g).map_err(|m| self.at(Some(n.host.span()), format!("group: {m}")))?;
        }
        let identity_file = match &n.identity_file {
            Some(f) => Some(self.file(f)?),
            None => d.identity_file.clone(),
        };
        Ok(Node {
            name: name.into_inner(),
            host: n.host.into_inner(),
            port: n.port.or(d.raw.port),
            user: user.map(Spanned::into_inner),
            identity_file,
            groups: n.groups,
            host_key_check: n
                .host_key_check
                .or(d.raw.host_key_check)
                .unwrap_or_default(),
            connect_timeout: match n.connect_timeout {
                Some(_) => self.seconds(&n.connect_timeout, DEFAULT_CONNECT_TIMEOUT)?,
                None => d.connect,
            },
            command_timeout: match n.command_timeout {
                Some(_) => self.seconds(&n.command_timeout, DEFAULT_COMMAND_TIMEOUT)?,
                None => d.command,
            },
            apt_lock_wait: Duration::from_secs(
                d.raw.apt_lock_wait.unwrap_or(DEFAULT_APT_LOCK_WAIT),
            ),
        })
    }
}

/// The name of an environment whose inventory does not say (`[environment] name`): the
/// inventory's directory and file names, and a hash of its canonical path — every
/// environment's inventory tends to be called `inventory.toml`, so the file stem alone would
/// make two environments share one state directory. `/srv/envs/be-conv-1/inventory.toml`
/// gives `be-conv-1-inventory-<8 hex digits>`.
pub fn derived_name(path: &Path) -> String {
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let word = |p: Option<&std::ffi::OsStr>| {
        p.map(|s| {
            s.to_string_lossy()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .filter(|s| !s.is_empty() && !s.starts_with(['-', '.']))
    };
    let stem = word(canonical.file_stem()).unwrap_or_else(|| "inventory".into());
    let dir = word(canonical.parent().and_then(Path::file_name));
    let base = match dir {
        Some(dir) => format!("{dir}-{stem}"),
        None => stem,
    };
    let base: String = base.chars().take(64).collect();
    format!(
        "{base}-{:08x}",
        fnv1a(canonical.as_os_str().as_encoded_bytes())
    )
}

/// FNV-1a, 32 bits: a tiny hash that is the same on every machine and release (std's
/// `DefaultHasher` promises neither).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

impl Inventory {
    /// Read and validate an inventory file.
    pub fn load(path: &Path) -> Result<Inventory> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &text)
    }

    /// Parse inventory text; `path` names it in errors and anchors relative paths. The files
    /// it names (`ssh_config`, `identity_file`) must exist now: a missing one is an error at
    /// its key, not a failed connect later.
    pub fn parse(path: &Path, text: &str) -> Result<Inventory> {
        let p = Parser { path, text };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let message = e.message().to_string();
            p.at(e.span(), message)
        })?;
        let d = raw.defaults;
        if let Some(user) = &d.user {
            check_word("user", user.get_ref()).map_err(|m| p.at(Some(user.span()), m))?;
        }
        let defaults = Defaults {
            connect: p.seconds(&d.connect_timeout, DEFAULT_CONNECT_TIMEOUT)?,
            command: p.seconds(&d.command_timeout, DEFAULT_COMMAND_TIMEOUT)?,
            identity_file: d.identity_file.as_ref().map(|f| p.file(f)).transpose()?,
            raw: &d,
        };
        let nodes = raw
            .nodes
            .into_iter()
            .map(|(name, n)| p.node(name, n, &defaults))
            .collect::<Result<Vec<_>>>()?;
        let name = match &raw.environment {
            Some(env) => {
                check_name(env.name.get_ref()).map_err(|m| p.at(Some(env.name.span()), m))?;
                env.name.get_ref().clone()
            }
            None => derived_name(path),
        };
        Ok(Inventory {
            name,
            path: Some(path.to_path_buf()),
            ssh_config: d.ssh_config.as_ref().map(|f| p.file(f)).transpose()?,
            exclude: d
                .exclude
                .clone()
                .unwrap_or_else(|| LEGACY_EXCLUDES.iter().map(|s| s.to_string()).collect()),
            nodes,
            backend: Backend::Ssh,
        })
    }

    /// The nodes a runbook may target: not excluded, inside `limit`, optionally in `group`.
    pub fn targets<'a>(
        &'a self,
        limit: Option<&'a Limit>,
        group: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes.iter().filter(move |n| {
            !self.exclude.iter().any(|x| x == &n.name)
                && limit.is_none_or(|l| l.matches(n))
                && group.is_none_or(|g| n.groups.iter().any(|ng| ng == g))
        })
    }

    /// A simulated cluster's inventory: the storage nodes and controllers of `layout` (the
    /// controllers are excluded, as `update-ovs.py` never targeted them: the built-in layouts'
    /// are the legacy ones, a captured cluster's are the nodes its inventory excluded), for
    /// the environment `name`.
    pub fn simulated(layout: &crate::sim::layout::Layout, name: &str) -> Inventory {
        let mut nodes: Vec<Node> = layout
            .inventory()
            .into_iter()
            .map(|(name, groups)| Node {
                name,
                host: "sim".into(),
                port: None,
                user: None,
                identity_file: None,
                groups,
                host_key_check: HostKeyCheck::Strict,
                connect_timeout: Duration::from_secs(DEFAULT_CONNECT_TIMEOUT),
                command_timeout: Duration::from_secs(DEFAULT_COMMAND_TIMEOUT),
                apt_lock_wait: Duration::from_secs(DEFAULT_APT_LOCK_WAIT),
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Inventory {
            name: name.to_string(),
            path: None,
            ssh_config: None,
            exclude: layout.controllers.clone(),
            nodes,
            backend: Backend::Sim,
        }
    }

    /// What `-i` names when it names a simulated cluster (`sim`, `sim:N`, `sim:NAME`), or
    /// `None` when `spec` is an inventory file.
    pub fn simulated_spec(spec: &str) -> Option<Result<SimSpec>> {
        if spec == "sim" {
            return Some(Ok(SimSpec::Default));
        }
        let rest = spec.strip_prefix("sim:")?;
        let max = crate::sim::cluster::MAX_NODES;
        if let Ok(n) = rest.parse::<usize>() {
            return Some(if (1..=max).contains(&n) {
                Ok(SimSpec::Nodes(n))
            } else {
                Err(Error::Usage(format!(
                    "-i {spec}: expected sim:N with N from 1 to {max} storage nodes"
                )))
            });
        }
        Some(match check_name(rest) {
            Ok(()) if rest.len() <= 64 => Ok(SimSpec::Named(rest.to_string())),
            _ => Err(Error::Usage(format!(
                "-i {spec}: expected sim, sim:N (a number of nodes) or sim:NAME (a captured cluster: letters, digits, '.', '_', '-')"
            ))),
        })
    }

    /// A node by name, excluded or not.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The inventory file's stem: how state directories were keyed before environments had
    /// names (see `state::migrate`).
    pub fn stem(&self) -> String {
        match &self.path {
            Some(p) => p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "inventory".into()),
            None => "sim".into(),
        }
    }
}

/// A simulated cluster `-i` may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimSpec {
    /// `-i sim`: the built-in cluster, as last reset (3 nodes by default).
    Default,
    /// `-i sim:N`: the built-in cluster of N storage nodes.
    Nodes(usize),
    /// `-i sim:NAME`: a cluster captured from a real environment (`ovsup sim capture NAME`).
    Named(String),
}

impl SimSpec {
    /// The environment's name: `sim` for the built-in cluster, `sim-NAME` for a capture.
    pub fn environment(&self) -> String {
        match self {
            SimSpec::Default | SimSpec::Nodes(_) => "sim".into(),
            SimSpec::Named(name) => format!("sim-{name}"),
        }
    }
}

/// `--limit`: comma-separated globs on node names, or `@group`.
#[derive(Debug, Clone)]
pub struct Limit {
    patterns: Vec<LimitPattern>,
    text: String,
}

#[derive(Debug, Clone)]
enum LimitPattern {
    Name(glob::Pattern),
    Group(String),
}

impl Limit {
    /// Parse a `--limit` value.
    pub fn parse(text: &str) -> Result<Limit> {
        let mut patterns = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(group) = part.strip_prefix('@') {
                patterns.push(LimitPattern::Group(group.to_string()));
            } else {
                let p = glob::Pattern::new(part)
                    .map_err(|e| Error::Usage(format!("--limit {part:?}: {e}")))?;
                patterns.push(LimitPattern::Name(p));
            }
        }
        if patterns.is_empty() {
            return Err(Error::Usage(
                "--limit: expected a node glob or @group".into(),
            ));
        }
        Ok(Limit {
            patterns,
            text: text.to_string(),
        })
    }

    /// Whether the node is inside the limit.
    pub fn matches(&self, node: &Node) -> bool {
        self.patterns.iter().any(|p| match p {
            LimitPattern::Name(g) => g.matches(&node.name),
            LimitPattern::Group(g) => node.groups.iter().any(|ng| ng == g),
        })
    }

    /// The text the operator gave.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Host names and users reach `ssh`'s command line: no leading '-', no space or control character.
fn check_word(what: &str, value: &str) -> std::result::Result<(), String> {
    if value.is_empty() {
        return Err(format!("expected a {what}, found an empty string"));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(format!(
            "expected a {what} of at most {MAX_NAME_LEN} characters, found one of {}",
            value.len()
        ));
    }
    if value.starts_with('-') {
        return Err(format!(
            "{what} {value:?} starts with '-' and would be read as an ssh option; expected a host name or address"
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{what} {value:?} contains white space or a control character"
        ));
    }
    if what == "user" && value.contains('@') {
        return Err(format!("user {value:?} contains '@'"));
    }
    Ok(())
}

fn resolve_path(base: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let path = PathBuf::from(p);
    if path.is_absolute() {
        path
    } else {
        base.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Inventory> {
        Inventory::parse(Path::new("/etc/ovsup/inv.toml"), text)
    }

    #[test]
    fn defaults_apply_and_nodes_win() {
        let inv = parse(
            r#"
[defaults]
user = "root"
port = 2222
command_timeout = 30
[nodes.b]
host = "10.0.0.2"
port = 22
[nodes.a]
host = "10.0.0.1"
groups = ["storage"]
"#,
        )
        .unwrap();
        let names: Vec<_> = inv.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(inv.nodes[0].port, Some(2222));
        assert_eq!(inv.nodes[1].port, Some(22));
        assert_eq!(inv.nodes[0].user.as_deref(), Some("root"));
        assert_eq!(inv.nodes[0].command_timeout, Duration::from_secs(30));
        assert_eq!(inv.nodes[0].connect_timeout, Duration::from_secs(10));
        assert_eq!(inv.exclude.len(), 4);
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let err = parse("[nodes.a]\nhost = \"x\"\nport = \"22\"\n").unwrap_err();
        let Error::Inventory { location, message } = &err else {
            panic!("{err:?}")
        };
        assert_eq!((location.line, location.column), (3, 8));
        assert!(message.contains("expected u16"), "{message}");
        assert_eq!(err.code(), 2);
    }

    #[test]
    fn option_like_host_is_rejected_with_position() {
        let err = parse("[nodes.a]\nhost = \"-oProxyCommand=sh\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("/etc/ovsup/inv.toml:2:8:"), "{text}");
        assert!(text.contains("ssh option"), "{text}");
        let err = parse("[defaults]\nuser = \"a b\"\n[nodes.a]\nhost = \"h\"\n").unwrap_err();
        assert!(err.to_string().contains(":2:8:"), "{err}");
    }

    #[test]
    fn unknown_key_is_rejected() {
        let err = parse("[nodes.a]\nhots = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains(":2:1:"), "{err}");
    }

    #[test]
    fn limit_by_glob_and_group_and_exclude() {
        let inv = parse(
            r#"
[nodes.cpu-01]
host = "h1"
groups = ["storage"]
[nodes.cpu-02]
host = "h2"
[nodes.ovc_master]
host = "h3"
groups = ["storage"]
"#,
        )
        .unwrap();
        let names = |l: Option<&Limit>, g: Option<&str>| -> Vec<String> {
            inv.targets(l, g).map(|n| n.name.clone()).collect()
        };
        assert_eq!(names(None, None), ["cpu-01", "cpu-02"]);
        assert_eq!(names(None, Some("storage")), ["cpu-01"]);
        let l = Limit::parse("*-02").unwrap();
        assert_eq!(names(Some(&l), None), ["cpu-02"]);
        let l = Limit::parse("@storage").unwrap();
        assert_eq!(names(Some(&l), None), ["cpu-01"]);
    }
}
