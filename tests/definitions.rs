//! `ovsup definitions DIR`: Rhai definition files for editors, generated from the registered
//! primitives and the shipped stdlib, doc comments included.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::ovsup::Ovsup;

/// Every definition file written into `dir`, by name.
fn written(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .expect("definitions dir")
        .map(|e| {
            let path = e.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&path).expect("read"))
        })
        .collect()
}

/// The signatures of the primitive reference in docs/runbooks.md (`sh(target, line)`,
/// `node.name`, `+(plain, secret)`).
fn reference_signatures() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/runbooks.md"))
        .expect("docs/runbooks.md");
    let start = doc
        .find(ovsup::engine::reference::BEGIN)
        .expect("reference start");
    let end = doc
        .find(ovsup::engine::reference::END)
        .expect("reference end");
    doc[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("- **`"))
        .filter_map(|l| l.split_once("`**").map(|(sig, _)| sig.to_string()))
        .collect()
}

#[test]
fn every_primitive_of_the_reference_is_defined_with_its_docs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("defs");
    Ovsup::with_inventory(Path::new("sim"))
        .args(["definitions", out.to_str().expect("utf-8")])
        .run()
        .code(0)
        .stdout_has("ovsup-exec.d.rhai");
    let files = written(&out);
    let all: String = files.values().cloned().collect();
    let signatures = reference_signatures();
    assert!(
        signatures.len() > 40,
        "only {} in the reference",
        signatures.len()
    );
    for sig in &signatures {
        // `node.groups` is a property getter; anything else a function or an operator.
        let wanted = match sig.split_once('(') {
            None => {
                let (_, prop) = sig.split_once('.').expect("a property");
                vec![format!("fn get {prop}(")]
            }
            Some((name, _)) => vec![format!("fn {name}("), format!("op {name}(")],
        };
        assert!(
            wanted.iter().any(|w| all.contains(w.as_str())),
            "{sig} of the reference is not in the definitions ({wanted:?})"
        );
    }
    // One file per family, global to every script, with the doc comments of the code.
    for family in ovsup::engine::families().iter().map(|(name, _, _)| *name) {
        let text = &files[&format!("ovsup-{family}.d.rhai")];
        assert!(text.contains("module static;"), "{family}: {text}");
    }
    let exec = &files["ovsup-exec.d.rhai"];
    assert!(exec.contains("/// Run shell text on a node"), "{exec}");
    assert!(
        exec.contains("fn sh(target: ?, line: string) -> ?;"),
        "{exec}"
    );
    assert!(
        exec.contains("fn sh(target: ?, secret: Secret) -> ?;"),
        "{exec}"
    );
    assert!(files["ovsup-opts.d.rhai"].contains("const opts"));
    // Rhai's own functions, so that `print` or `len` are no unknown names; nothing the
    // language server's parser rejects (rhai writes `range=` and blank values).
    assert!(files["rhai-std.d.rhai"].contains("fn parse_int("));
    assert!(!all.contains("range=") && !all.contains("-> ;"));
    // The stdlib: a file per module, for `import "vms"` from a script beside it.
    let vms = &files["vms.d.rhai"];
    assert!(vms.contains("module;"), "{vms}");
    assert!(
        vms.contains("fn stop_for(targets: ?, step: ?, skip_vm: ?) -> ?;"),
        "{vms}"
    );
    assert!(
        vms.contains("/// Unless `skip_vm`: record and stop"),
        "{vms}"
    );
    for module in ["arakoon", "components", "guards", "pending", "vms"] {
        assert!(
            files.contains_key(&format!("{module}.d.rhai")),
            "{module}: {files:?}"
        );
    }
    // Written into the site runbook directory, they are not runbooks.
    let listed = Ovsup::with_inventory(Path::new("sim"))
        .args(["--runbook-dir", out.to_str().expect("utf-8"), "list"])
        .run()
        .code(0);
    let names: Vec<&str> = listed
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".d")),
        "{}",
        listed.stdout
    );
    assert!(names.contains(&"alba"), "{}", listed.stdout);
}
