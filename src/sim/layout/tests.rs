//! Layouts: the TOML format (good files, and bad ones with the position and what was
//! expected), the built-in layouts' shape for every size, the stored JSON form.

use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Layout, LayoutError> {
    Layout::parse(Path::new("/etc/ovsup/lay.toml"), text)
}

/// The error's `file:line:col: message`.
fn error(text: &str) -> String {
    parse(text).expect_err("a bad layout").to_string()
}

const NODE: &str = "init = \"upstart\"\napt = \"1.0\"\n";

#[test]
fn a_small_layout_with_defaults() {
    let l = parse(&format!(
        "[nodes.b]\n{NODE}vpools = [\"vp\"]\nasds = 1\n\n[nodes.a]\ninit = \"systemd\"\napt = \"1.2\"\ngroups = [\"storage\", \"edge\"]\n\n[clusters]\novsdb = [\"b\", \"a\"]\n"
    ))
    .expect("parse");
    assert_eq!(l.storage_names(), vec!["a", "b"]);
    assert_eq!(l.nodes[0].init, Init::Systemd);
    assert_eq!(l.nodes[0].asds, 0);
    assert!(l.nodes[0].vpools.is_empty() && l.nodes[0].backends.is_empty());
    assert_eq!(l.nodes[1].groups, vec!["storage"]);
    assert_eq!(l.clusters[0].members, vec!["b", "a"]);
    assert_eq!(l.controllers, CONTROLLERS.map(String::from).to_vec());
    assert_eq!(
        l.inventory()[..2],
        [
            (
                "a".to_owned(),
                vec!["storage".to_owned(), "edge".to_owned()]
            ),
            ("b".to_owned(), vec!["storage".to_owned()])
        ]
    );
    assert_eq!(
        l.inventory()[2],
        ("ovc_master".to_owned(), vec!["controller".to_owned()])
    );
    let l = parse(&format!("controllers = []\n[nodes.x]\n{NODE}")).expect("parse");
    assert!(l.controllers.is_empty() && l.clusters.is_empty());
}

#[test]
fn bad_layouts_name_the_place_and_what_was_expected() {
    let cases: [(String, &str); 14] = [
        (
            "[nodes.a]\ninit = \"sysv\"\napt = \"1.0\"\n".into(),
            "lay.toml:2:8: unknown variant `sysv`, expected `upstart` or `systemd`",
        ),
        (
            "[nodes.a]\ninit = \"upstart\"\napt = \"2.0\"\n".into(),
            "lay.toml:3:7: unknown variant `2.0`, expected `1.0` or `1.2`",
        ),
        (
            format!("[nodes.a]\n{NODE}color = 1\n"),
            "lay.toml:4:1: unknown field `color`",
        ),
        (
            "[nodes.a]\ninit = \"upstart\"\n".into(),
            "lay.toml:1:1: missing field `apt`",
        ),
        ("[clusters]\n".into(), "lay.toml:1:1: missing field `nodes`"),
        (
            "nodes = {}\n".into(),
            "lay.toml:1:1: expected at least one storage node ([nodes.NAME])",
        ),
        (
            format!("[nodes.\"-a\"]\n{NODE}"),
            "lay.toml:1:8: expected a name not empty and not starting with '-', found \"-a\"",
        ),
        (
            format!("[nodes.layout]\n{NODE}"),
            "lay.toml:1:8: \"layout\" is reserved",
        ),
        (
            format!("[nodes.a]\n{NODE}vpools = [\"v 1\"]\n"),
            "lay.toml:4:11: expected a name of letters, digits, '_' and '-', found ' ' in \"v 1\"",
        ),
        (
            format!("[nodes.a]\n{NODE}backends = [\"b\"]\n"),
            "lay.toml:4:13: expected an ALBA backend with an Arakoon cluster \"b-abm\" in [clusters], found none",
        ),
        (
            format!("[nodes.a]\n{NODE}asds = 65\n"),
            "lay.toml:4:8: expected at most 64 ASDs, found 65",
        ),
        (
            format!("[nodes.a]\n{NODE}\n[clusters]\novsdb = [\"a\", \"b\"]\n"),
            "lay.toml:6:15: expected a storage node of [nodes] as member of \"ovsdb\", found \"b\"",
        ),
        (
            format!("[nodes.a]\n{NODE}\n[clusters]\novsdb = []\n"),
            "lay.toml:6:9: expected 1 to 5 members for cluster \"ovsdb\", found 0",
        ),
        (
            format!("controllers = [\"a\"]\n[nodes.a]\n{NODE}"),
            "lay.toml:1:16: \"a\" is already the name of another node",
        ),
    ];
    for (text, want) in cases {
        let got = error(&text);
        assert!(
            got.ends_with(want) || got.contains(want),
            "{text}\n got: {got}\nwant: {want}"
        );
        assert!(got.starts_with("/etc/ovsup/lay.toml:"), "{got}");
    }
    let six = (1..=6)
        .map(|i| format!("[nodes.n{i}]\n{NODE}"))
        .collect::<String>();
    let got = error(&format!(
        "{six}[clusters]\nbig = [\"n1\",\"n2\",\"n3\",\"n4\",\"n5\",\"n6\"]\n"
    ));
    assert!(
        got.contains("expected 1 to 5 members for cluster \"big\", found 6"),
        "{got}"
    );
    let got = error(&format!(
        "[nodes.a]\n{NODE}\n[clusters]\nx = [\"a\", \"a\"]\n"
    ));
    assert!(
        got.contains(":6:11: \"a\" is a member of \"x\" twice"),
        "{got}"
    );
    let got = error(&format!(
        "[nodes.a]\n{NODE}\n[clusters]\n\"x.y\" = [\"a\"]\n"
    ));
    assert!(
        got.contains(":6:1: expected a name of letters, digits, '_' and '-', found '.'"),
        "{got}"
    );
    let got = error(&format!("[nodes.a]\n{NODE}\n[nodes.a]\n{NODE}"));
    assert!(got.contains("lay.toml:5:"), "{got}");
}

#[test]
fn the_shipped_five_node_example_is_varied() {
    let l = Layout::five_nodes().expect("five nodes");
    assert_eq!(l.nodes.len(), 5);
    let first = &l.nodes[0].name;
    assert_eq!(
        l.clusters_of(first).count(),
        1,
        "first node in few clusters"
    );
    assert!(
        l.clusters.iter().any(|c| c.members.len() == 1),
        "a 1-member cluster"
    );
    assert!(
        l.nodes.iter().any(|n| n.vpools.is_empty()),
        "a node serving no vpool"
    );
    assert!(l.nodes.iter().any(|n| n.asds == 0), "a node without ASD");
    let kinds: BTreeSet<(String, String)> = l
        .nodes
        .iter()
        .map(|n| (format!("{:?}", n.init), format!("{:?}", n.apt)))
        .collect();
    assert!(kinds.len() >= 3, "{kinds:?}");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/sim/layouts/five-nodes.toml"
    ))
    .expect("the file");
    assert_eq!(text, FIVE_NODES_TOML);
}

#[test]
fn the_default_layout_of_three_nodes() {
    let l = Layout::default_for(3);
    let members = |c: &str| -> Vec<String> {
        l.clusters
            .iter()
            .find(|x| x.name == c)
            .map(|x| x.members.clone())
            .unwrap_or_default()
    };
    assert_eq!(members("ovsdb"), ["node-01", "node-02", "node-03"]);
    assert_eq!(members("voldrv"), ["node-01", "node-02", "node-03"]);
    assert_eq!(members("mybackend-abm"), ["node-02", "node-03"]);
    assert_eq!(members("mybackend-nsm_0"), ["node-03"]);
    assert_eq!(l.clusters.len(), 4);
    let vpools: Vec<Vec<String>> = l.nodes.iter().map(|n| n.vpools.clone()).collect();
    assert_eq!(
        vpools,
        [vec!["vpool1"], vec!["vpool1", "vpool2"], vec!["vpool2"]]
    );
    let backends: Vec<usize> = l.nodes.iter().map(|n| n.backends.len()).collect();
    assert_eq!(backends, [0, 1, 1]);
    let asds: Vec<u32> = l.nodes.iter().map(|n| n.asds).collect();
    assert_eq!(asds, [0, 2, 2]);
    let kinds: Vec<(Init, AptVariant)> = l.nodes.iter().map(|n| (n.init, n.apt)).collect();
    assert_eq!(kinds, (0..3).map(node_kind).collect::<Vec<_>>());
}

#[test]
fn default_layouts_of_every_size_are_valid_and_realistic() {
    for n in 1..=64 {
        let l = Layout::default_for(n);
        l.check().unwrap_or_else(|e| panic!("sim:{n}: {e:?}"));
        assert_eq!(l.nodes.len(), n);
        assert_eq!(l.nodes[0].name, "node-01");
        for c in &l.clusters {
            assert!(
                (1..=MAX_MEMBERS).contains(&c.members.len()),
                "sim:{n}: {c:?}"
            );
        }
        if n >= 3 {
            assert!(
                l.clusters_of("node-01").count() < l.clusters.len(),
                "sim:{n}: node-01 is in every cluster"
            );
            let all_vpools: BTreeSet<&String> = l.nodes.iter().flat_map(|x| &x.vpools).collect();
            assert!(
                l.nodes.iter().any(|x| x.vpools.len() < all_vpools.len()),
                "sim:{n}: every node serves every vpool"
            );
        }
        let json = l.to_json();
        assert_eq!(Layout::from_json(Path::new("layout.json"), &json), Ok(l));
    }
    assert_eq!(Layout::default_for(0), Layout::default_for(1));
    assert_eq!(Layout::default_for(99), Layout::default_for(64));
    let big = Layout::default_for(64);
    assert!(
        big.clusters
            .iter()
            .filter(|c| c.name.contains("nsm_"))
            .count()
            > 1
    );
}

#[test]
fn the_uniform_layout_puts_everything_everywhere() {
    let l = Layout::uniform(3);
    l.check().expect("valid");
    for n in &l.nodes {
        assert_eq!(l.clusters_of(&n.name).count(), 4);
        assert_eq!(n.vpools, ["vpool1"]);
        assert_eq!(n.backends, ["mybackend"]);
        assert_eq!(n.asds, 2);
    }
    let wide = Layout::uniform(7);
    wide.check().expect("valid");
    assert!(wide.clusters.iter().all(|c| c.members.len() == MAX_MEMBERS));
}

#[test]
fn stored_json_errors_have_positions_too() {
    let e =
        Layout::from_json(Path::new("layout.json"), "{\n  \"nodes\": 3\n}").expect_err("bad json");
    assert!(e.to_string().starts_with("layout.json:2:"), "{e}");
    let mut l = Layout::uniform(1);
    l.clusters[0].members.push("ghost".into());
    let e = Layout::from_json(Path::new("layout.json"), &l.to_json()).expect_err("bad");
    assert!(e.to_string().contains("found \"ghost\""), "{e}");
}
