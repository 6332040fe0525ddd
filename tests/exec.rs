//! Running commands over real sshd test-bed nodes: fan-out, quoting, unreachable nodes,
//! timeouts, host keys, the journal and dry runs.

use crate::support::TestBed;
use crate::support::ovsup::{Ovsup, journal_lines};

fn state(bed: &TestBed) -> std::path::PathBuf {
    bed.dir().join("state")
}

#[test]
fn fan_out_to_five_nodes_returns_every_nodes_output() {
    let bed = TestBed::start(5);
    for node in bed.nodes() {
        // Each node's private /etc holds its own marker: the answer proves which node ran it.
        let out = node.sh_local(&format!("echo marker-{} > /etc/ovsup-marker", node.name()));
        assert!(out.status.success());
    }
    let ran = Ovsup::with_inventory(bed.inventory_path())
        .state_dir(&state(&bed))
        .args([
            "--json",
            "eval",
            r#"sh(nodes(), "hostname; cat /etc/ovsup-marker")"#,
        ])
        .run()
        .code(0);
    let value = &ran.json_result()["value"];
    let map = value.as_object().expect("a map keyed by node name");
    assert_eq!(map.len(), 5, "{value}");
    for node in bed.nodes() {
        let name = node.name();
        assert_eq!(map[name], format!("{name}\nmarker-{name}\n"), "{value}");
    }
    // Every command is in the journal, with node, command, duration, exit code and size.
    let journal = journal_lines(&state(&bed));
    assert_eq!(journal.len(), 5);
    for line in &journal {
        assert_eq!(line["code"], 0);
        assert_eq!(line["command"], "hostname; cat /etc/ovsup-marker");
        assert!(line["bytes"].as_u64().unwrap_or(0) > 10, "{line}");
        assert!(
            line["start"].as_str().unwrap_or("").ends_with('Z'),
            "{line}"
        );
        assert!(line["ms"].is_u64(), "{line}");
    }
}

#[test]
fn quoting_survives_spaces_quotes_dollars_and_semicolons() {
    let bed = TestBed::start(1);
    let hostile = [
        "vm with spaces",
        "it's \"quoted\"",
        "$HOME and ${PATH}",
        "a;touch ovsup-pwned;b",
        "`id` $(id)",
    ];
    let names = hostile
        .iter()
        .map(|h| format!("{h:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let script = format!(
        r#"let names = [{names}];
           let n = nodes()[0];
           for name in names {{ cmd(n, ["mkdir", "-p", "/var/lib/ovsup-q/" + name]); }}
           cmd(n, ["ls", "-1", "/var/lib/ovsup-q"])"#
    );
    let ran = Ovsup::with_inventory(bed.inventory_path())
        .state_dir(&state(&bed))
        .args(["--json", "eval", &script])
        .run()
        .code(0);
    let listed = ran.json_result()["value"]
        .as_str()
        .expect("stdout")
        .to_string();
    let mut expected: Vec<&str> = hostile.to_vec();
    expected.sort();
    let mut got: Vec<&str> = listed.lines().collect();
    got.sort();
    assert_eq!(got, expected);
    let node = bed.node(0);
    assert!(
        !node.root_path().join("root/ovsup-pwned").exists(),
        "a ';' ran a second command"
    );
}

#[test]
fn a_stopped_node_is_unreachable_by_name_and_the_others_are_kept() {
    let bed = TestBed::start(3);
    let down = bed.node(1);
    down.stop();
    let down_name = down.name().to_string();

    // sh raises, naming the node; exit code 1.
    Ovsup::with_inventory(bed.inventory_path())
        .state_dir(&state(&bed))
        .args(["eval", r#"sh(nodes(), "echo up")"#])
        .run()
        .code(1)
        .stderr_has(&format!("{down_name}: unreachable"));

    // The results of the reachable nodes are kept, in the error and with try_sh.
    let script = r#"
        let kept = ();
        try { sh(nodes(), "hostname"); } catch (e) { kept = e.kept; }
        #{ kept: kept, all: try_sh(nodes(), "hostname") }
    "#;
    let ran = Ovsup::with_inventory(bed.inventory_path())
        .state_dir(&state(&bed))
        .args(["--json", "eval", script])
        .run()
        .code(0);
    let v = &ran.json_result()["value"];
    for node in [bed.node(0), bed.node(2)] {
        assert_eq!(v["kept"][node.name()], format!("{}\n", node.name()), "{v}");
        assert_eq!(v["all"][node.name()]["code"], 0, "{v}");
    }
    assert!(v["kept"].get(&down_name).is_none(), "{v}");
    assert_eq!(v["all"][&down_name]["code"], -1, "{v}");
    let why = v["all"][&down_name]["error"].as_str().unwrap_or("");
    assert!(
        why.contains(&down_name) && why.contains("unreachable"),
        "{why}"
    );

    // `nodes --ping` reports it and fails.
    Ovsup::with_inventory(bed.inventory_path())
        .state_dir(&state(&bed))
        .args(["nodes", "--ping"])
        .run()
        .code(1)
        .stdout_has("UNREACHABLE")
        .stdout_has_times("  ok  ", 2);
}

#[test]
fn a_hanging_command_hits_the_timeout_and_does_not_live_on() {
    let bed = TestBed::builder()
        .nodes(1)
        .defaults_toml("command_timeout = 2")
        .start();
    let started = std::time::Instant::now();
    let ran = Ovsup::with_inventory(bed.inventory_path())
        .state_dir(&state(&bed))
        .args(["eval", r#"sh(nodes(), "sleep 4242")"#])
        .run()
        .code(1);
    let took = started.elapsed();
    ran.stderr_has("timed out after 2 s")
        .stderr_has(bed.node(0).name());
    assert!(took.as_secs_f64() < 10.0, "took {took:?}");
    // The node's timeout(1) killed it: nothing of it is left on the node.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ps = bed
        .node(0)
        .sh_local("ps -eo args | grep -c '^sleep 4242' || true");
    assert_eq!(String::from_utf8_lossy(&ps.stdout).trim(), "0");
}

#[test]
fn a_changed_host_key_is_refused() {
    let bed = TestBed::start(2);
    bed.node(0).regenerate_host_key();
    let ran = Ovsup::with_inventory(bed.inventory_path())
        .state_dir(&state(&bed))
        .args(["eval", r#"sh(nodes(), "true")"#])
        .run()
        .code(1);
    let name = bed.node(0).name();
    ran.stderr_has(&format!("{name}: unreachable"))
        .stderr_has_one_of(&[
            "Host key verification failed",
            "HOST IDENTIFICATION HAS CHANGED",
        ]);
}

#[test]
fn dry_run_prints_changes_runs_queries_and_changes_nothing() {
    let bed = TestBed::start(2);
    let ran = Ovsup::with_inventory(bed.inventory_path())
        .state_dir(&state(&bed))
        .args([
            "--dry-run",
            "--json",
            "eval",
            r#"sh(nodes(), "touch /etc/ovsup-dry"); query(nodes(), "hostname")"#,
        ])
        .run()
        .code(0);
    let events = ran.json_events();
    let dry: Vec<_> = events.iter().filter(|e| e["dry_run"] == true).collect();
    assert_eq!(dry.len(), 2, "{}", ran.stdout);
    assert_eq!(
        ran.json_result()["value"][bed.node(0).name()],
        format!("{}\n", bed.node(0).name())
    );
    for node in bed.nodes() {
        assert!(!node.root_path().join("etc/ovsup-dry").exists());
    }
}

#[test]
fn limit_narrows_the_target_set() {
    let bed = TestBed::start(3);
    let second = bed.node(1).name().to_string();
    let ran = Ovsup::with_inventory(bed.inventory_path())
        .state_dir(&state(&bed))
        .args([
            "--json",
            "--limit",
            &second,
            "eval",
            r#"sh(nodes(), "hostname")"#,
        ])
        .run()
        .code(0);
    let v = ran.json_result()["value"].clone();
    assert_eq!(v.as_object().map(|m| m.len()), Some(1), "{v}");
    assert_eq!(v[&second], format!("{second}\n"));
    Ovsup::with_inventory(bed.inventory_path())
        .state_dir(&state(&bed))
        .args(["--limit", "nothing-*", "eval", "1"])
        .run()
        .code(2)
        .stderr_has("matches no target node");
}

#[test]
fn many_commands_on_one_node_stay_below_sshds_session_limit() {
    let bed = TestBed::start(1);
    let state = state(&bed);
    // The same node twenty times: twenty commands at once on one connection, where sshd allows
    // ten sessions. Without the per-node cap the crate fails with "Session open refused".
    let ran = Ovsup::with_inventory(bed.inventory_path())
        .state_dir(&state)
        .args(["--forks", "64", "--json", "eval", r#"let n = nodes()[0]; let many = []; for i in 0..20 { many.push(n); } try_sh(many, "sleep 0.3; echo ok")"#])
        .run()
        .code(0);
    let v = ran.json_result()["value"].clone();
    assert_eq!(v[bed.node(0).name()]["stdout"], "ok\n", "{v}");
    let journal = journal_lines(&state);
    assert_eq!(journal.len(), 20);
    assert!(journal.iter().all(|l| l["code"] == 0), "{journal:?}");
    // At no moment did more than MAX_COMMANDS_PER_NODE run on the node.
    let mut edges: Vec<(u128, i32)> = Vec::new();
    for l in &journal {
        let start =
            humantime::parse_rfc3339(l["start"].as_str().unwrap_or_default()).expect("start time");
        let start = start
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis();
        let ms = u128::from(l["ms"].as_u64().unwrap_or(0));
        edges.push((start, 1));
        edges.push((start + ms, -1));
    }
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    assert!(
        most <= ovsup::host::MAX_COMMANDS_PER_NODE as i32,
        "{most} commands ran at once on one node"
    );
}
