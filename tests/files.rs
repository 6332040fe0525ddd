//! Files on nodes: read, atomic write, and copies between nodes through the host.

use crate::on_both_backends;
use crate::support::TestBed;
use crate::support::cluster::{Backend, Cluster};
use crate::support::ovsup::Ovsup;

on_both_backends!(write_read_and_copy_between_nodes,);

fn write_read_and_copy_between_nodes(backend: Backend) {
    let c = Cluster::new(backend, 3);
    let ran = c
        .ovsup()
        .args(["--json", "eval", r#"
            write_file("node-01", "/var/tmp/ovsup dir/it's.txt", "line one\n$HOME;`id`\n");
            let copied = copy_file("node-01", "/var/tmp/ovsup dir/it's.txt", ["node-02", "node-03"]);
            #{ copied: copied, back: read_file("node-03", "/var/tmp/ovsup dir/it's.txt") }
        "#])
        .run()
        .code(0);
    let v = ran.json_result()["value"].clone();
    assert_eq!(v["back"], "line one\n$HOME;`id`\n", "{v}");
    assert_eq!(v["copied"]["node-02"], 20, "{v}");
    // A missing source names the node and the path, and copies nothing.
    c.ovsup()
        .args([
            "eval",
            r#"copy_file("node-01", "/var/tmp/none", ["node-02"])"#,
        ])
        .run()
        .code(1)
        .stderr_has("node-01")
        .stderr_has("/var/tmp/none");
    // A dry run writes nothing.
    c.ovsup()
        .args([
            "--dry-run",
            "eval",
            r#"write_file("node-02", "/var/tmp/dry", "x")"#,
        ])
        .run()
        .code(0);
    let ran = c
        .ovsup()
        .args(["eval", r#"read_file("node-02", "/var/tmp/dry")"#])
        .run()
        .code(1);
    ran.stderr_has("/var/tmp/dry");
}

#[test]
fn binary_files_cross_intact_over_ssh() {
    let bed = TestBed::start(2);
    let blob: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    std::fs::write(bed.node(0).root_path().join("var/tmp/blob.deb"), &blob).expect("write blob");
    Ovsup::with_inventory(bed.inventory_path())
        .state_dir(&bed.dir().join("state"))
        .args([
            "eval",
            r#"copy_file(nodes()[0], "/var/tmp/blob.deb", nodes()[1])"#,
        ])
        .run()
        .code(0);
    let copied = std::fs::read(bed.node(1).root_path().join("var/tmp/blob.deb")).expect("copied");
    assert!(copied == blob, "the copy differs ({} bytes)", copied.len());
    assert!(
        !bed.node(1)
            .root_path()
            .join("var/tmp/blob.deb.ovsup-tmp")
            .exists()
    );
}
