//! The simulated node's filesystem, behind one trait with two backends. Test nodes of the
//! SSH test bed have their own overlay-mounted `/etc /opt /var /run`, so the multi-call
//! binary uses the real filesystem ([`RealFs`]); in-process nodes keep a map of paths inside
//! their state document ([`VirtualFs`]). Tools see only the trait.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One entry of the virtual filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsEntry {
    /// A directory.
    Dir,
    /// A regular file with its (text) contents.
    File(String),
}

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file (or anything that is not a directory).
    File,
}

/// The filesystem operations the simulated tools need. Paths are absolute node paths
/// (`/etc/ready_for_upgrade`); relative ones are taken from `/`.
pub trait Fs {
    /// What `path` names, or `None` when it does not exist.
    fn kind(&self, path: &str) -> Option<Kind>;
    /// Reads a file.
    fn read(&self, path: &str) -> io::Result<String>;
    /// Creates or replaces a file; its directory must exist.
    fn write(&self, path: &str, contents: &str) -> io::Result<()>;
    /// Creates a directory and its parents (`mkdir -p`).
    fn create_dir_all(&self, path: &str) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &str) -> io::Result<()>;
    /// The names in a directory, sorted.
    fn list_dir(&self, path: &str) -> io::Result<Vec<String>>;
    /// The modification time in epoch seconds, when the filesystem keeps one (the virtual
    /// filesystem does not).
    fn mtime(&self, path: &str) -> Option<u64> {
        let _ = path;
        None
    }
}

/// Normalizes a node path: absolute, no `.`/`..`/empty components, no trailing slash.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

/// The real filesystem under a root directory (`/` on a test node).
#[derive(Debug, Clone)]
pub struct RealFs {
    root: PathBuf,
}

impl RealFs {
    /// A filesystem whose `/` is `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RealFs { root: root.into() }
    }

    fn host_path(&self, path: &str) -> PathBuf {
        let n = normalize(path);
        self.root.join(n.trim_start_matches('/'))
    }
}

impl Fs for RealFs {
    fn kind(&self, path: &str) -> Option<Kind> {
        let meta = std::fs::metadata(self.host_path(path)).ok()?;
        Some(if meta.is_dir() { Kind::Dir } else { Kind::File })
    }

    fn read(&self, path: &str) -> io::Result<String> {
        std::fs::read_to_string(self.host_path(path))
    }

    fn write(&self, path: &str, contents: &str) -> io::Result<()> {
        std::fs::write(self.host_path(path), contents)
    }

    fn create_dir_all(&self, path: &str) -> io::Result<()> {
        std::fs::create_dir_all(self.host_path(path))
    }

    fn remove_file(&self, path: &str) -> io::Result<()> {
        std::fs::remove_file(self.host_path(path))
    }

    fn mtime(&self, path: &str) -> Option<u64> {
        let modified = std::fs::metadata(self.host_path(path))
            .ok()?
            .modified()
            .ok()?;
        modified
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }

    fn list_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.host_path(path))? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
}

/// A filesystem held in memory (the `files` map of the node's state document).
#[derive(Debug, Default)]
pub struct VirtualFs {
    entries: RefCell<BTreeMap<String, FsEntry>>,
}

impl VirtualFs {
    /// A filesystem with these entries (paths normalized, parents implied by `Dir` entries).
    pub fn new(entries: BTreeMap<String, FsEntry>) -> Self {
        VirtualFs {
            entries: RefCell::new(entries),
        }
    }

    /// Gives the entries back (to store them in the node's state).
    pub fn into_entries(self) -> BTreeMap<String, FsEntry> {
        self.entries.into_inner()
    }
}

impl Fs for VirtualFs {
    fn kind(&self, path: &str) -> Option<Kind> {
        let n = normalize(path);
        if n == "/" {
            return Some(Kind::Dir);
        }
        match self.entries.borrow().get(&n)? {
            FsEntry::Dir => Some(Kind::Dir),
            FsEntry::File(_) => Some(Kind::File),
        }
    }

    fn read(&self, path: &str) -> io::Result<String> {
        match self.entries.borrow().get(&normalize(path)) {
            Some(FsEntry::File(c)) => Ok(c.clone()),
            Some(FsEntry::Dir) => Err(io::Error::from(io::ErrorKind::IsADirectory)),
            None => Err(not_found()),
        }
    }

    fn write(&self, path: &str, contents: &str) -> io::Result<()> {
        let n = normalize(path);
        if self.kind(&n) == Some(Kind::Dir) {
            return Err(io::Error::from(io::ErrorKind::IsADirectory));
        }
        match parent(&n).and_then(|p| self.kind(p)) {
            Some(Kind::Dir) => {}
            Some(Kind::File) => return Err(io::Error::from(io::ErrorKind::NotADirectory)),
            None => return Err(not_found()),
        }
        self.entries
            .borrow_mut()
            .insert(n, FsEntry::File(contents.to_owned()));
        Ok(())
    }

    fn create_dir_all(&self, path: &str) -> io::Result<()> {
        let n = normalize(path);
        let mut cur = String::new();
        for part in n.split('/').filter(|p| !p.is_empty()) {
            cur.push('/');
            cur.push_str(part);
            match self.kind(&cur) {
                Some(Kind::Dir) => {}
                Some(Kind::File) => return Err(io::Error::from(io::ErrorKind::AlreadyExists)),
                None => {
                    self.entries.borrow_mut().insert(cur.clone(), FsEntry::Dir);
                }
            }
        }
        Ok(())
    }

    fn remove_file(&self, path: &str) -> io::Result<()> {
        let n = normalize(path);
        match self.kind(&n) {
            Some(Kind::File) => {
                self.entries.borrow_mut().remove(&n);
                Ok(())
            }
            Some(Kind::Dir) => Err(io::Error::from(io::ErrorKind::IsADirectory)),
            None => Err(not_found()),
        }
    }

    fn list_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let n = normalize(path);
        match self.kind(&n) {
            Some(Kind::Dir) => {}
            Some(Kind::File) => return Err(io::Error::from(io::ErrorKind::NotADirectory)),
            None => return Err(not_found()),
        }
        let prefix = if n == "/" {
            "/".to_owned()
        } else {
            format!("{n}/")
        };
        let entries = self.entries.borrow();
        Ok(entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| {
                let rest = &k[prefix.len()..];
                (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_owned())
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_fs_basics() {
        let fs = VirtualFs::default();
        fs.create_dir_all("/opt/a/b/").expect("mkdir");
        fs.write("/opt/a/f", "x").expect("write");
        assert_eq!(fs.kind("/opt/a"), Some(Kind::Dir));
        assert_eq!(fs.kind("/opt/a/f"), Some(Kind::File));
        assert_eq!(fs.list_dir("/opt/a/").expect("ls"), vec!["b", "f"]);
        assert!(fs.write("/nope/f", "x").is_err());
        fs.remove_file("/opt/a/f").expect("rm");
        assert_eq!(fs.kind("/opt/a/f"), None);
        assert_eq!(normalize("opt//a/./b/../c/"), "/opt/a/c");
    }

    #[test]
    fn real_fs_under_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = RealFs::new(dir.path());
        fs.create_dir_all("/etc/x").expect("mkdir");
        fs.write("/etc/x/y", "hi").expect("write");
        assert_eq!(fs.read("/etc/x/y").expect("read"), "hi");
        assert_eq!(fs.list_dir("/etc").expect("ls"), vec!["x"]);
    }
}
