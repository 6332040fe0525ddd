//! A test bed of real OpenSSH servers ("nodes") on loopback addresses.
//!
//! Every node is an `sshd` listening on its own `127.X.Y.Z:22`, running in its own mount
//! namespace (and UTS namespace, so `hostname` answers the node name) where `/etc`, `/opt`,
//! `/var`, `/run`, `/root`, `/home`, `/srv` and `/mnt` are private overlays (writes stay in
//! the node) and `/tmp` is a private tmpfs (the bed directory and the PATH-prepend
//! directories are bound back into it at the same paths). Root's `~/.bashrc` is emptied in
//! the node so that remote commands don't pay for the host's rc file.
//!
//! Each node's namespace is held by a small "holder" process (`unshare … sh`) that lives as
//! long as the node; `sshd` is started inside it with `nsenter`, so `stop()`/`start()` keep the
//! node's files. Dropping the bed kills every process in its namespaces (sshd, sessions,
//! anything they started), which releases the mounts, then removes the temporary directory.
//! If the test process dies without unwinding, each holder sees its stdin close and kills
//! everything in its namespace itself (only the temp dir is left behind then).
//!
//! Needs root (mount namespaces, binding port 22). Run `.ci/install-deps` on a fresh machine.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// The PATH sshd gives root's sessions by default on Debian.
pub const STD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const SSHD: &str = "/usr/sbin/sshd";
/// Directories that get a private overlay in every node (skipped when absent on the host).
const OVERLAY_ROOTS: &[&str] = &[
    "/etc", "/opt", "/var", "/run", "/root", "/home", "/srv", "/mnt",
];
/// Port of the listener that claims an address for this process (see `alloc_addr`).
const CLAIM_PORT: u16 = 1;
/// How long all nodes of a bed (or one restarted node) may take to answer with a banner.
const BANNER_DEADLINE: Duration = Duration::from_secs(30);

type SetupHook = Arc<dyn Fn(&Node) + Send + Sync>;

/// Panics unless running as root.
pub fn require_root() {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_string();
    if euid != "0" {
        panic!(
            "the test bed needs root (euid is {euid}): it creates mount namespaces and runs \
             sshd on 127.X.Y.Z:22; run the tests as root (the CI does)"
        );
    }
    for tool in [
        SSHD,
        "/usr/bin/ssh",
        "/usr/bin/ssh-keygen",
        "/usr/bin/unshare",
        "/usr/bin/nsenter",
        "/usr/bin/kill",
    ] {
        if !Path::new(tool).exists() {
            panic!("the test bed needs {tool}: run .ci/install-deps");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Builder

#[derive(Clone)]
struct NodeSpec {
    name: String,
    groups: Vec<String>,
}

/// Options of a [`TestBed`]; see [`TestBed::builder`].
#[derive(Clone)]
pub struct TestBedBuilder {
    nodes: usize,
    prefix: String,
    groups: Vec<String>,
    extra_nodes: Vec<NodeSpec>,
    node_groups: BTreeMap<String, Vec<String>>,
    defaults_toml: String,
    path_prepend: Vec<PathBuf>,
    env: Vec<(String, String)>,
    node_env: BTreeMap<String, Vec<(String, String)>>,
    share: Vec<PathBuf>,
    setup: Option<SetupHook>,
    lean_shell: bool,
    ssh_config_extra: String,
    port: Option<u16>,
    extra_port: Option<u16>,
}

impl Default for TestBedBuilder {
    fn default() -> Self {
        TestBedBuilder {
            nodes: 3,
            prefix: "node-".into(),
            groups: vec!["storage".into()],
            extra_nodes: Vec::new(),
            node_groups: BTreeMap::new(),
            defaults_toml: String::new(),
            path_prepend: Vec::new(),
            env: Vec::new(),
            node_env: BTreeMap::new(),
            share: Vec::new(),
            setup: None,
            lean_shell: true,
            ssh_config_extra: String::new(),
            port: None,
            extra_port: None,
        }
    }
}

impl TestBedBuilder {
    /// Number of numbered nodes `<prefix>01`, `<prefix>02`, … (default 3).
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    /// Name prefix of the numbered nodes (default `node-`); numbers are zero-padded to 2 digits.
    pub fn name_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Groups of every numbered node (default `["storage"]`).
    pub fn groups(mut self, groups: &[&str]) -> Self {
        self.groups = groups.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Extra groups for the node called `name` (numbered or extra), appended to its groups.
    pub fn node_groups(mut self, name: &str, groups: &[&str]) -> Self {
        self.node_groups
            .entry(name.into())
            .or_default()
            .extend(groups.iter().map(|s| s.to_string()));
        self
    }

    /// An extra node with its own name and groups (e.g. `("ovc_master", &["controller"])`),
    /// placed after the numbered nodes.
    pub fn extra_node(mut self, name: &str, groups: &[&str]) -> Self {
        self.extra_nodes.push(NodeSpec {
            name: name.into(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    /// Raw TOML lines appended to `[defaults]` of `inventory.toml`. A key given here
    /// (`user`, `ssh_config`, `connect_timeout`, `command_timeout`) replaces the bed's own.
    pub fn defaults_toml(mut self, raw: &str) -> Self {
        self.defaults_toml.push_str(raw);
        if !self.defaults_toml.ends_with('\n') {
            self.defaults_toml.push('\n');
        }
        self
    }

    /// A directory put first in the PATH of the nodes' sessions (`SetEnv PATH=…`). May be
    /// given several times (earlier ones come first). A directory under `/tmp` (or another
    /// masked directory) is bound into the nodes at the same path.
    pub fn path_prepend(mut self, dir: impl AsRef<Path>) -> Self {
        self.path_prepend.push(absolute(dir.as_ref()));
        self
    }

    /// An environment variable set in every node's sessions (`SetEnv KEY=VALUE`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// An environment variable set in the sessions of the node called `name` only.
    pub fn node_env(mut self, name: &str, key: &str, value: &str) -> Self {
        self.node_env
            .entry(name.into())
            .or_default()
            .push((key.into(), value.into()));
        self
    }

    /// A host directory that nodes must see live at the same path although it lies under a
    /// masked directory (`/tmp`, `/var`, …). The bed dir and PATH-prepend dirs are shared
    /// already.
    pub fn share_host_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.share.push(absolute(dir.as_ref()));
        self
    }

    /// A hook run for every node after its namespace is ready and before its sshd starts
    /// (e.g. seeding files with `node.run_local(..)` or through `node.root_path()`).
    pub fn setup(mut self, hook: impl Fn(&Node) + Send + Sync + 'static) -> Self {
        self.setup = Some(Arc::new(hook));
        self
    }

    /// Empty root's `~/.bashrc` inside the nodes (default true). `false` keeps the host's rc
    /// file (e.g. to measure what it costs).
    pub fn lean_shell(mut self, lean: bool) -> Self {
        self.lean_shell = lean;
        self
    }

    /// Raw lines added to the `Host *` block of the bed's `ssh_config` (they take precedence
    /// over the bed's own lines), e.g. `KexAlgorithms curve25519-sha256`.
    pub fn ssh_config_extra(mut self, raw: &str) -> Self {
        self.ssh_config_extra.push_str(raw);
        if !self.ssh_config_extra.ends_with('\n') {
            self.ssh_config_extra.push('\n');
        }
        self
    }

    /// The port every sshd listens on. Default: 22, or 2222 for an address where 22 can't be
    /// bound (a host sshd listening on `0.0.0.0:22` blocks port 22 on every 127.X.Y.Z).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// A second port every sshd also listens on (the same server: a client that connects to
    /// it is another connection to the same node).
    pub fn extra_port(mut self, port: u16) -> Self {
        self.extra_port = Some(port);
        self
    }

    /// Creates the keys and files and starts every node; returns once all answer with an
    /// SSH banner. Panics (with the sshd log) on failure.
    pub fn start(self) -> TestBed {
        TestBed::launch(self)
    }
}

// ---------------------------------------------------------------------------------------------
// TestBed

/// N running OpenSSH servers plus the client files to reach them. See the module docs.
pub struct TestBed {
    // Field order matters: nodes (processes, mounts) go before the directory.
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
    inventory: PathBuf,
    ssh_config: PathBuf,
    known_hosts: PathBuf,
    client_key: PathBuf,
    bringup: Duration,
}

impl TestBed {
    pub fn builder() -> TestBedBuilder {
        TestBedBuilder::default()
    }

    /// `n` nodes with the default options.
    pub fn start(n: usize) -> TestBed {
        TestBed::builder().nodes(n).start()
    }

    fn launch(opts: TestBedBuilder) -> TestBed {
        require_root();
        raise_open_files_limit();
        let t0 = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("ovsup-bed-")
            .tempdir()
            .expect("create the test bed's temp dir");
        let root = dir.path().to_path_buf();
        check_path_chars(&root);

        // Node list.
        let mut specs: Vec<NodeSpec> = (1..=opts.nodes)
            .map(|i| NodeSpec {
                name: format!("{}{:02}", opts.prefix, i),
                groups: opts.groups.clone(),
            })
            .collect();
        specs.extend(opts.extra_nodes.iter().cloned());
        let mut seen = HashSet::new();
        for s in &specs {
            assert!(
                !s.name.is_empty()
                    && s.name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                "test bed: node name {:?} must be [A-Za-z0-9._-]+",
                s.name
            );
            assert!(seen.insert(s.name.clone()), "duplicate node {:?}", s.name);
        }
        for name in opts.node_groups.keys().chain(opts.node_env.keys()) {
            assert!(seen.contains(name), "test bed: no node called {name:?}");
        }

        // Keys: one client key per bed, one host key per node, generated in parallel.
        let client_key = root.join("id_ed25519");
        let mut keygens = vec![spawn_keygen(&client_key, "ovsup-testbed-client")];
        let mut node_dirs = Vec::new();
        for s in &specs {
            let nd = root.join(&s.name);
            fs::create_dir(&nd).expect("create node dir");
            keygens.push(spawn_keygen(&nd.join("ssh_host_ed25519_key"), &s.name));
            node_dirs.push(nd);
        }
        for k in keygens {
            finish_keygen(k);
        }
        let authorized_keys = root.join("authorized_keys");
        fs::copy(client_key.with_extension("pub"), &authorized_keys)
            .expect("write authorized_keys");

        // Shared dirs: the bed, PATH-prepend dirs, and what the caller asked for.
        let mut shared = vec![root.clone()];
        shared.extend(opts.path_prepend.iter().cloned());
        shared.extend(opts.share.iter().cloned());
        let node_path = opts
            .path_prepend
            .iter()
            .map(|p| p.to_str().expect("utf-8 PATH dir").to_string())
            .chain([STD_PATH.to_string()])
            .collect::<Vec<_>>()
            .join(":");

        // Nodes: claim addresses, write sshd configs, spawn namespace holders.
        let mut nodes = Vec::new();
        for (s, nd) in specs.iter().zip(&node_dirs) {
            let ports = match opts.port {
                Some(p) => vec![p],
                None => vec![22, 2222],
            };
            let (addr, port, claim) = alloc_addr(&ports, opts.extra_port);
            let mut groups = s.groups.clone();
            if let Some(extra) = opts.node_groups.get(&s.name) {
                for g in extra {
                    if !groups.contains(g) {
                        groups.push(g.clone());
                    }
                }
            }
            let mut env = vec![("PATH".to_string(), node_path.clone())];
            env.extend(opts.env.iter().cloned());
            env.extend(opts.node_env.get(&s.name).into_iter().flatten().cloned());
            let node = Node {
                name: s.name.clone(),
                addr,
                port,
                extra_port: opts.extra_port,
                dir: nd.clone(),
                groups,
                path: node_path.clone(),
                lean_shell: opts.lean_shell,
                shared: shared.clone(),
                _claim: claim,
                state: Mutex::new(NodeState::default()),
            };
            node.write_sshd_config(&authorized_keys, &env);
            nodes.push(node);
        }
        for n in &nodes {
            n.spawn_holder();
        }
        for n in &nodes {
            n.await_holder();
        }
        if let Some(hook) = &opts.setup {
            for n in &nodes {
                hook(n);
            }
        }

        // Client files.
        let known_hosts = root.join("known_hosts");
        let ssh_config = root.join("ssh_config");
        let inventory = root.join("inventory.toml");
        let mut bed = TestBed {
            nodes,
            dir,
            inventory,
            ssh_config,
            known_hosts,
            client_key,
            bringup: Duration::ZERO,
        };
        bed.refresh_known_hosts();
        bed.write_ssh_config(&opts.ssh_config_extra);
        bed.write_inventory(&opts.defaults_toml);

        // Start every sshd, then wait for every banner.
        for n in &bed.nodes {
            n.spawn_sshd();
        }
        let deadline = Instant::now() + BANNER_DEADLINE;
        for n in &bed.nodes {
            n.await_banner(deadline);
        }
        bed.bringup = t0.elapsed();
        bed
    }

    /// The `i`-th node (0-based, numbered nodes first, then extra nodes).
    pub fn node(&self, i: usize) -> &Node {
        self.nodes
            .get(i)
            .unwrap_or_else(|| panic!("test bed has {} nodes, no node index {i}", self.nodes.len()))
    }

    /// The node called `name`.
    pub fn node_named(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("test bed has no node called {name:?}"))
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The bed's temporary directory (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn inventory_path(&self) -> &Path {
        &self.inventory
    }

    pub fn ssh_config_path(&self) -> &Path {
        &self.ssh_config
    }

    pub fn known_hosts_path(&self) -> &Path {
        &self.known_hosts
    }

    /// The client's private key (the public one is next to it, `.pub`).
    pub fn client_key_path(&self) -> &Path {
        &self.client_key
    }

    /// How long `start()` took (keys, namespaces, sshds, banners).
    pub fn bringup_time(&self) -> Duration {
        self.bringup
    }

    /// `ssh -F <ssh_config> <addr> -- <remote command>` with the system client, ready to run.
    /// The remote command is the arguments joined with spaces (ssh semantics).
    pub fn ssh(&self, node: &Node, remote: &[&str]) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F").arg(&self.ssh_config);
        if node.port != 22 {
            c.arg("-p").arg(node.port.to_string());
        }
        c.arg(node.addr.to_string()).arg("--").args(remote);
        c.stdin(Stdio::null());
        c
    }

    /// Rewrites `known_hosts` from the nodes' current host keys (e.g. to trust a node again
    /// after `regenerate_host_key`).
    pub fn refresh_known_hosts(&self) {
        let mut s = String::new();
        for n in &self.nodes {
            let pubkey = fs::read_to_string(n.host_key_path().with_extension("pub"))
                .expect("read host public key");
            let _ = writeln!(s, "{} {}", n.known_hosts_name(), pubkey.trim());
        }
        fs::write(&self.known_hosts, s).expect("write known_hosts");
    }

    fn write_ssh_config(&self, extra: &str) {
        let mut s = String::from("# Written by the ovsup test bed.\n");
        for n in &self.nodes {
            let _ = writeln!(
                s,
                "Host {}\n  HostName {}\n  Port {}\n",
                n.name, n.addr, n.port
            );
        }
        s.push_str("Host *\n");
        for line in extra.lines() {
            let _ = writeln!(s, "  {line}");
        }
        let _ = write!(
            s,
            "  User root\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
             GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  UpdateHostKeys no\n  \
             BatchMode yes\n  LogLevel ERROR\n  ForwardAgent no\n  ForwardX11 no\n",
            self.client_key.display(),
            self.known_hosts.display()
        );
        fs::write(&self.ssh_config, s).expect("write ssh_config");
    }

    fn write_inventory(&self, extra_defaults: &str) {
        let given: HashSet<&str> = extra_defaults
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, _)| k.trim())
            .collect();
        let mut s = String::from("[defaults]\n");
        let ssh_config = toml_str(self.ssh_config.to_str().expect("utf-8 path"));
        for (k, v) in [
            ("user", toml_str("root")),
            ("ssh_config", ssh_config),
            ("connect_timeout", "5".to_string()),
            ("command_timeout", "30".to_string()),
        ] {
            if !given.contains(k) {
                let _ = writeln!(s, "{k} = {v}");
            }
        }
        s.push_str(extra_defaults);
        for n in &self.nodes {
            let groups: Vec<String> = n.groups.iter().map(|g| toml_str(g)).collect();
            let _ = write!(
                s,
                "\n[nodes.{}]\nhost = {}\nport = {}\ngroups = [{}]\n",
                toml_key(&n.name),
                toml_str(&n.addr.to_string()),
                n.port,
                groups.join(", ")
            );
        }
        fs::write(&self.inventory, s).expect("write inventory.toml");
    }
}

impl TestBed {
    /// The processes outside the nodes whose command line names a file of the bed: the ssh
    /// clients and masters started against it (an ovsup master has `-F <bed>/ssh_config`, or
    /// its control socket under a state directory in the bed), and nothing of the nodes.
    pub fn client_processes(&self) -> Vec<u32> {
        processes_naming(self.dir.path())
    }
}

/// Live processes in this process's mount namespace (so none of a node's), other than this
/// one, whose command line contains `path`.
pub fn processes_naming(path: &Path) -> Vec<u32> {
    let marker = path.as_os_str().as_encoded_bytes();
    let own_ns = fs::read_link("/proc/self/ns/mnt").ok();
    let me = std::process::id();
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|&pid| pid != me)
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.windows(marker.len()).any(|w| w == marker))
                && fs::read_link(format!("/proc/{pid}/ns/mnt")).ok() == own_ns
                && !fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                    s.rsplit_once(')')
                        .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
                })
        })
        .collect()
}

/// SIGKILLs `pids` and waits (bounded) until they are gone.
pub fn kill_and_wait(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    sigkill(pids);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && pids.iter().any(|p| {
            fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
            })
        })
    {
        thread::sleep(Duration::from_millis(2));
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        // The ssh masters that runs against the bed left open (they would exit by themselves
        // once their node's sshd is gone, a little later): no client outlives its bed.
        kill_and_wait(&self.client_processes());
        // Kill everything of every node in one sweep (holders last: while a holder lives, its
        // namespace id can't be reused by someone else's new namespace); each Node's own Drop
        // then only reaps its children.
        let mut guards: Vec<MutexGuard<'_, NodeState>> =
            self.nodes.iter().map(|n| n.lock()).collect();
        let (ns, keep): (Vec<String>, Vec<u32>) = guards
            .iter_mut()
            .filter_map(|st| st.holder.as_mut().and_then(Holder::live_ns))
            .unzip();
        kill_in_namespaces(&ns, &keep);
        for st in &mut guards {
            st.shutdown();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Node

/// One sshd in its own mount namespace on its own loopback address.
pub struct Node {
    name: String,
    addr: Ipv4Addr,
    port: u16,
    extra_port: Option<u16>,
    dir: PathBuf,
    groups: Vec<String>,
    path: String,
    lean_shell: bool,
    shared: Vec<PathBuf>,
    _claim: TcpListener,
    state: Mutex<NodeState>,
}

#[derive(Default)]
struct NodeState {
    holder: Option<Holder>,
    sshd: Option<Child>,
}

struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    /// `readlink /proc/PID/ns/mnt` of the holder, e.g. `mnt:[4026532301]`.
    ns: String,
}

impl Node {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The second port sshd listens on, if the bed has one ([`TestBedBuilder::extra_port`]).
    pub fn extra_port(&self) -> Option<u16> {
        self.extra_port
    }

    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::from((self.addr, self.port))
    }

    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// The PATH the node's sessions get (`SetEnv PATH=…`).
    pub fn path_env(&self) -> &str {
        &self.path
    }

    /// The node's directory in the bed (sshd_config, host key, sshd.log, overlay layers).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn sshd_config_path(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }

    pub fn host_key_path(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }

    /// The sshd log so far (LogLevel VERBOSE).
    pub fn sshd_log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The pid of the running sshd listener, if started.
    pub fn sshd_pid(&self) -> Option<u32> {
        self.lock().sshd.as_ref().map(|c| c.id())
    }

    /// The pid of the process holding the node's namespaces.
    pub fn holder_pid(&self) -> u32 {
        self.lock()
            .holder
            .as_ref()
            .map(|h| h.child.id())
            .expect("node namespace is not running")
    }

    /// The node's `/` seen from the host (`/proc/<holder>/root`): paths under it resolve in
    /// the node's mount namespace, e.g. `node.root_path().join("etc/foo")`.
    pub fn root_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.holder_pid()))
    }

    /// Runs `argv` inside the node's mount and UTS namespaces (as root, cwd `/`,
    /// PATH = the node's PATH) and waits for it.
    pub fn run_local<I, S>(&self, argv: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let pid = self.holder_pid().to_string();
        let argv: Vec<S> = argv.into_iter().collect();
        assert!(!argv.is_empty(), "run_local: empty argv");
        Command::new("nsenter")
            .args(["--mount", "--uts", "--target", &pid, "--wd=/", "--"])
            .args(&argv)
            .env("PATH", &self.path)
            .env("HOME", "/root")
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    /// `run_local(["sh", "-c", script])`.
    pub fn sh_local(&self, script: &str) -> Output {
        self.run_local(["/bin/sh", "-c", script])
    }

    pub fn is_running(&self) -> bool {
        let mut st = self.lock();
        match st.sshd.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills sshd and every session and process running in the node (files stay), and waits
    /// until they are gone. The address then refuses connections. No-op when stopped.
    pub fn stop(&self) {
        let mut st = self.lock();
        if let Some((ns, holder)) = st.holder.as_mut().and_then(Holder::live_ns) {
            kill_in_namespaces(&[ns], &[holder]);
        }
        if let Some(mut c) = st.sshd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts sshd again (same address, same host key file) and waits for its banner.
    /// No-op when running.
    pub fn start(&self) {
        if self.is_running() {
            return;
        }
        self.spawn_sshd();
        self.await_banner(Instant::now() + BANNER_DEADLINE);
    }

    /// Replaces the node's host key with a fresh one and restarts sshd. The bed's known_hosts
    /// keeps the old key, so a strict client must refuse the node (until
    /// `bed.refresh_known_hosts()`). Returns the new public key line.
    pub fn regenerate_host_key(&self) -> String {
        let was_running = self.is_running();
        self.stop();
        let key = self.host_key_path();
        let _ = fs::remove_file(&key);
        let _ = fs::remove_file(key.with_extension("pub"));
        finish_keygen(spawn_keygen(&key, &self.name));
        if was_running {
            self.start();
        }
        fs::read_to_string(key.with_extension("pub")).expect("read new host key")
    }

    fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.addr.to_string()
        } else {
            format!("[{}]:{}", self.addr, self.port)
        }
    }

    fn lock(&self) -> MutexGuard<'_, NodeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write_sshd_config(&self, authorized_keys: &Path, env: &[(String, String)]) {
        let mut setenv = String::new();
        for (k, v) in env {
            assert!(
                !k.is_empty()
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !v.contains(['"', '\\', '\n', '\r']),
                "test bed: env {k}={v:?} not representable in sshd SetEnv"
            );
            let _ = write!(setenv, " \"{k}={v}\"");
        }
        let extra_listen = self
            .extra_port
            .map(|p| format!("ListenAddress {}:{p}\n", self.addr))
            .unwrap_or_default();
        let cfg = format!(
            "# Written by the ovsup test bed for {name}.\n\
             ListenAddress {addr}:{port}\n\
             {extra_listen}\
             HostKey {hostkey}\n\
             AuthorizedKeysFile {ak}\n\
             PermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             PidFile none\n\
             StrictModes no\n\
             LogLevel VERBOSE\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             X11Forwarding no\n\
             AllowAgentForwarding no\n\
             UseDNS no\n\
             Subsystem sftp /usr/lib/openssh/sftp-server\n\
             SetEnv{setenv}\n",
            name = self.name,
            addr = self.addr,
            port = self.port,
            hostkey = self.host_key_path().display(),
            ak = authorized_keys.display(),
        );
        fs::write(self.sshd_config_path(), cfg).expect("write sshd_config");
    }

    /// The script the namespace holder runs: private mounts, then wait for stdin EOF.
    fn holder_script(&self) -> String {
        let q = |p: &Path| {
            shlex::try_quote(p.to_str().expect("utf-8 path"))
                .unwrap()
                .into_owned()
        };
        let mut s = String::from("set -eu\n");
        let _ = writeln!(s, "echo {} > /proc/sys/kernel/hostname", self.name);
        let ov = self.dir.join("overlay");
        let mut roots: Vec<(&str, bool)> = OVERLAY_ROOTS
            .iter()
            .filter(|r| Path::new(r).is_dir())
            .map(|r| (*r, true))
            .collect();
        roots.push(("/tmp", false));
        for (r, overlay) in roots {
            // Shared dirs under this root: keep a handle on each before masking the root,
            // then bind it back at the same path (see `mount --no-canonicalize`).
            let under: Vec<&PathBuf> = self
                .shared
                .iter()
                .filter(|p| p.starts_with(r))
                .filter(|p| !self.shared.iter().any(|o| o != *p && p.starts_with(o)))
                .collect();
            assert!(under.len() <= 7, "too many shared dirs under {r}");
            for (i, p) in under.iter().enumerate() {
                let _ = writeln!(s, "exec {}< {}", i + 3, q(p));
            }
            if overlay {
                let name = r.trim_start_matches('/');
                let upper = ov.join(format!("{name}.upper"));
                let work = ov.join(format!("{name}.work"));
                fs::create_dir_all(&upper).expect("create overlay upper dir");
                fs::create_dir_all(&work).expect("create overlay work dir");
                let _ = writeln!(
                    s,
                    "mount -t overlay overlay -o lowerdir={r},upperdir={},workdir={} {r}",
                    upper.display(),
                    work.display()
                );
            } else {
                let _ = writeln!(s, "mount -t tmpfs -o mode=1777 tmpfs {r}");
            }
            for (i, p) in under.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "mkdir -p {p}\nmount --no-canonicalize --bind /proc/self/fd/{fd} {p}\nexec {fd}<&-",
                    p = q(p),
                    fd = i + 3
                );
            }
        }
        s.push_str("mkdir -p -m 0755 /run/sshd\n");
        // sshd without PAM refuses accounts whose password starts with '!' (locked): unlock
        // root inside the node (its /etc is private) when the host's root is locked.
        let shadow = fs::read_to_string("/etc/shadow").unwrap_or_default();
        if shadow.lines().any(|l| l.starts_with("root:!")) {
            s.push_str("sed -i 's/^root:![^:]*:/root:*:/' /etc/shadow\n");
        }
        if self.lean_shell {
            s.push_str(": > /root/.bashrc\n");
        }
        s.push_str(
            "echo ready\n\
             read -r _ || :\n\
             set +e\n\
             # stdin closed: the test process is gone; kill everything left in the namespace.\n\
             for pass in 1 2 3; do\n\
             \x20 for p in /proc/[0-9]*; do\n\
             \x20   [ \"$p\" = /proc/$$ ] && continue\n\
             \x20   [ \"$p/ns/mnt\" -ef /proc/$$/ns/mnt ] && kill -9 \"${p#/proc/}\" 2>/dev/null\n\
             \x20 done\n\
             \x20 sleep 0.2\n\
             done\n\
             exit 0\n",
        );
        s
    }

    fn spawn_holder(&self) {
        let script = self.holder_script();
        fs::write(self.dir.join("holder.sh"), &script).expect("write holder.sh");
        let log = fs::File::create(self.dir.join("holder.log")).expect("create holder.log");
        let mut child = Command::new("unshare")
            .args(["--mount", "--uts", "--propagation", "private", "--"])
            .args(["/bin/sh", "-c", &script])
            .env_clear()
            .env("PATH", STD_PATH)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawn unshare");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        self.lock().holder = Some(Holder {
            child,
            stdin,
            stdout,
            ns: String::new(),
        });
    }

    fn await_holder(&self) {
        let mut st = self.lock();
        let h = st.holder.as_mut().expect("holder spawned");
        let mut line = String::new();
        let mut out = BufReader::new(h.stdout.take().expect("holder stdout"));
        let _ = out.read_line(&mut line);
        if line.trim() != "ready" {
            let _ = h.child.kill();
            let _ = h.child.wait();
            panic!(
                "test bed: the namespace of {} did not come up; holder.log:\n{}",
                self.name,
                fs::read_to_string(self.dir.join("holder.log")).unwrap_or_default()
            );
        }
        h.stdout = Some(out.into_inner());
        h.ns = fs::read_link(format!("/proc/{}/ns/mnt", h.child.id()))
            .expect("read the holder's mount namespace")
            .to_string_lossy()
            .into_owned();
        let host_ns = fs::read_link("/proc/self/ns/mnt").expect("read own mount namespace");
        assert_ne!(
            Path::new(&h.ns),
            host_ns,
            "holder of {} is not in its own mount namespace",
            self.name
        );
    }

    fn spawn_sshd(&self) {
        let mut st = self.lock();
        let holder = st
            .holder
            .as_ref()
            .expect("node namespace is not running")
            .child
            .id()
            .to_string();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open sshd.log");
        let child = Command::new("nsenter")
            .args(["--mount", "--uts", "--target", &holder, "--wd=/", "--"])
            .arg(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(self.sshd_config_path())
            .env_clear()
            .env("PATH", STD_PATH)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawn nsenter sshd");
        st.sshd = Some(child);
    }

    fn await_banner(&self, deadline: Instant) {
        let sa = self.socket_addr();
        loop {
            {
                let mut st = self.lock();
                let c = st.sshd.as_mut().expect("sshd spawned");
                if let Ok(Some(status)) = c.try_wait() {
                    st.sshd = None;
                    drop(st);
                    panic!(
                        "test bed: sshd of {} ({sa}) exited with {status}; sshd.log:\n{}",
                        self.name,
                        self.sshd_log()
                    );
                }
            }
            let last_err = match read_banner(sa) {
                Ok(b) if b.starts_with("SSH-2.0-") => return,
                Ok(b) => format!("unexpected banner {b:?}"),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                panic!(
                    "test bed: sshd of {} ({sa}) gave no SSH banner in time (last: {last_err}); \
                     sshd.log:\n{}",
                    self.name,
                    self.sshd_log()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some((ns, holder)) = st.holder.as_mut().and_then(Holder::live_ns) {
            kill_in_namespaces(&[ns], &[holder]);
        }
        st.shutdown();
    }
}

impl NodeState {
    /// Reaps sshd and kills and reaps the holder (call after sweeping the namespace).
    fn shutdown(&mut self) {
        if let Some(mut c) = self.sshd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(mut h) = self.holder.take() {
            let _ = h.child.kill();
            let _ = h.child.wait();
            drop(h.stdin.take());
        }
    }
}

impl Holder {
    /// `(namespace, holder pid)` while the holder is alive (so the namespace id is pinned).
    fn live_ns(&mut self) -> Option<(String, u32)> {
        let alive = matches!(self.child.try_wait(), Ok(None));
        (alive && !self.ns.is_empty()).then(|| (self.ns.clone(), self.child.id()))
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A node keeps three descriptors open in this process (its address claim, its holder's
/// stdin and stdout): 500 nodes need more than the common soft limit of 1024. Raise the soft
/// limit to the hard one.
fn raise_open_files_limit() {
    #[repr(C)]
    struct Rlimit {
        cur: u64,
        max: u64,
    }
    unsafe extern "C" {
        fn getrlimit(resource: i32, rlim: *mut Rlimit) -> i32;
        fn setrlimit(resource: i32, rlim: *const Rlimit) -> i32;
    }
    const RLIMIT_NOFILE: i32 = 7;
    let mut r = Rlimit { cur: 0, max: 0 };
    // SAFETY: both calls only read or write the struct we pass (the kernel's layout on 64-bit
    // Linux: two unsigned 64-bit limits).
    unsafe {
        if getrlimit(RLIMIT_NOFILE, &mut r) == 0 && r.cur < r.max {
            r.cur = r.max;
            setrlimit(RLIMIT_NOFILE, &r);
        }
    }
}

/// Allocates a loopback address `127.X.Y.Z` (X in 1..=254, Z in 1..=254) for one node.
///
/// Each process walks the 16.5M-address space from its own starting point (a hash of its
/// pid) with a process-wide atomic counter, so threads of one process never get the same
/// address and two processes start far apart. An address is taken only if this process can
/// bind a listener on `addr:CLAIM_PORT` (held for the node's life: another process's claim
/// makes the bind fail, so claims are exclusive across processes) and `addr:port` is free.
fn alloc_addr(ports: &[u16], extra: Option<u16>) -> (Ipv4Addr, u16, TcpListener) {
    const SPACE: u32 = 254 * 256 * 254;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    let base = (pid.wrapping_mul(2_654_435_761) ^ (pid << 7)) % SPACE;
    for _ in 0..1_000 {
        let idx = (base + NEXT.fetch_add(1, Ordering::Relaxed)) % SPACE;
        let x = 1 + idx / (256 * 254);
        let y = (idx / 254) % 256;
        let z = 1 + idx % 254;
        let addr = Ipv4Addr::new(127, x as u8, y as u8, z as u8);
        let Ok(claim) = TcpListener::bind((addr, CLAIM_PORT)) else {
            continue; // claimed by another test bed
        };
        if extra.is_some_and(|p| TcpListener::bind((addr, p)).is_err()) {
            continue;
        }
        // Something (a leftover sshd, a wildcard listener) may hold the port already.
        if let Some(&port) = ports
            .iter()
            .find(|&&p| TcpListener::bind((addr, p)).is_ok())
        {
            return (addr, port, claim);
        }
    }
    panic!(
        "test bed: could not claim a free loopback address with port {ports:?} free; is \
         something listening on 0.0.0.0 on those ports (`ss -ltnp`)?"
    );
}

fn read_banner(sa: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&sa, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < 1024 {
        let n = s.read(&mut byte)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&byte[..n]);
    }
    Ok(String::from_utf8_lossy(&buf).trim_end().to_string())
}

fn spawn_keygen(path: &Path, comment: &str) -> (Child, PathBuf) {
    let child = Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-t", "ed25519", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ssh-keygen");
    (child, path.to_path_buf())
}

fn finish_keygen((child, path): (Child, PathBuf)) {
    let out = child.wait_with_output().expect("wait ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// SIGKILLs every process whose mount namespace is one of `targets` (except the `keep` pids),
/// and waits (bounded) until none is left. A namespace is named as `mnt:[inode]`. Callers keep
/// each namespace's holder alive meanwhile, so that the inode can't be recycled for another
/// namespace (of another bed) while we sweep.
fn kill_in_namespaces(targets: &[String], keep: &[u32]) {
    let set: HashSet<&str> = targets
        .iter()
        .map(|ns| ns.as_str())
        .filter(|ns| !ns.is_empty())
        .collect();
    if set.is_empty() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = pids_in(&set, keep);
        if pids.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            eprintln!("test bed: processes survive SIGKILL: {pids:?}");
            return;
        }
        sigkill(&pids);
        thread::sleep(Duration::from_millis(2));
    }
}

/// `kill -KILL PIDS` (one process for them all); pids already gone are no error.
fn sigkill(pids: &[u32]) {
    let _ = Command::new("/usr/bin/kill")
        .arg("-KILL")
        .args(pids.iter().map(|p| p.to_string()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Live (non-zombie) processes in one of the namespaces `set`.
fn pids_in(set: &HashSet<&str>, keep: &[u32]) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if keep.contains(&pid) {
            continue;
        }
        if let Ok(ns) = fs::read_link(format!("/proc/{pid}/ns/mnt"))
            && set.contains(ns.to_string_lossy().as_ref())
        {
            pids.push(pid);
        }
    }
    pids
}

fn absolute(p: &Path) -> PathBuf {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().expect("cwd").join(p)
    };
    check_path_chars(&p);
    p
}

/// Overlay mount options and sshd_config lines can't take every character.
fn check_path_chars(p: &Path) {
    let s = p.to_str().expect("test bed paths must be UTF-8");
    assert!(
        !s.contains([',', ':', ' ', '"', '\\', '\n', '\'']),
        "test bed: path {s:?} has a character the bed can't pass to mount/sshd"
    );
}

fn toml_str(s: &str) -> String {
    // A JSON string is a valid TOML basic string.
    serde_json::to_string(s).expect("json string")
}

fn toml_key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        s.to_string()
    } else {
        toml_str(s)
    }
}
