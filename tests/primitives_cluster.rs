//! Tests of the cluster primitives (`set_offline`, `set_online`, `is_offline`,
//! `require_offline`), on both backends, through `ovsup --json eval`.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::cluster::{Backend, Cluster};
use crate::support::ovsup::Ran;

fn eval(c: &Cluster, script: &str) -> Ran {
    c.ovsup().args(["--json", "eval", script]).run()
}

fn value(ran: &Ran) -> Value {
    ran.json_result()["value"].clone()
}

fn agents(c: &Cluster) -> Vec<Option<u32>> {
    c.storage_names()
        .iter()
        .map(|n| c.state(n).agent_pid)
        .collect()
}

on_both_backends!(
    offline_online_round_trip,
    require_offline_refuses_naming_every_online_node,
    dry_run_changes_nothing,
);

fn offline_online_round_trip(backend: Backend) {
    let c = Cluster::new(backend, 3);
    assert!(agents(&c).iter().all(Option::is_some));
    let all = |b: bool| json!({"node-01": b, "node-02": b, "node-03": b});
    assert_eq!(value(&eval(&c, "is_offline(nodes())").code(0)), all(false));
    assert_eq!(
        value(&eval(&c, "is_offline(nodes()[0])").code(0)),
        json!(false)
    );

    assert_eq!(value(&eval(&c, "set_offline(nodes())").code(0)), all(true));
    assert!(agents(&c).iter().all(Option::is_none), "{:?}", agents(&c));
    assert_eq!(value(&eval(&c, "is_offline(nodes())").code(0)), all(true));
    eval(&c, "require_offline(nodes())").code(0);
    // Already offline: nothing to do.
    assert_eq!(value(&eval(&c, "set_offline(nodes())").code(0)), all(false));
    let kills = c
        .state("node-01")
        .history
        .iter()
        .filter(|l| *l == "fuser -k 4446/tcp")
        .count();
    assert_eq!(kills, 1);

    assert_eq!(value(&eval(&c, "set_online(nodes())").code(0)), all(true));
    assert!(agents(&c).iter().all(Option::is_some), "{:?}", agents(&c));
    assert_eq!(value(&eval(&c, "is_offline(nodes())").code(0)), all(false));
    // Already online: `ays start` is not run again.
    assert_eq!(
        value(&eval(&c, "set_online(nodes()[1])").code(0)),
        json!(false)
    );
    let starts = c
        .state("node-02")
        .history
        .iter()
        .filter(|l| l.starts_with("ays start"))
        .count();
    assert_eq!(starts, 1);
}

fn require_offline_refuses_naming_every_online_node(backend: Backend) {
    let c = Cluster::new(backend, 3);
    assert_eq!(
        value(&eval(&c, "set_offline(nodes()[0])").code(0)),
        json!(true)
    );
    eval(&c, "require_offline(nodes())")
        .code(3)
        .json_error_has("node-02, node-03")
        .json_error_lacks("node-01")
        .json_error_has("ovsup preprocess");
    eval(&c, "require_offline(nodes()[0])").code(0);
    // The human output says the same on stderr.
    let ran = c
        .ovsup()
        .args(["eval", "require_offline(nodes())"])
        .run()
        .code(3);
    ran.stderr_has("refused").stderr_has("node-02, node-03");
}

fn dry_run_changes_nothing(backend: Backend) {
    let c = Cluster::new(backend, 2);
    let before = agents(&c);
    let ran = c
        .ovsup()
        .args(["--dry-run", "--json", "eval", "set_offline(nodes())"])
        .run()
        .code(0);
    assert_eq!(value(&ran), json!({"node-01": true, "node-02": true}));
    assert_eq!(agents(&c), before);
    // require_offline only warns in a dry run.
    c.ovsup()
        .args(["--dry-run", "eval", "require_offline(nodes())"])
        .run()
        .code(0)
        .stderr_has("would refuse");
    eval(&c, "set_offline(nodes())").code(0);
    let ran = c
        .ovsup()
        .args(["--dry-run", "--json", "eval", "set_online(nodes())"])
        .run()
        .code(0);
    assert_eq!(value(&ran), json!({"node-01": true, "node-02": true}));
    assert!(agents(&c).iter().all(Option::is_none));
}
