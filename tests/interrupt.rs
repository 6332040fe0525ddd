//! Ctrl-C stops a run at the next operation: commands in flight finish, nothing new starts,
//! and the exit code is 130.

use std::time::{Duration, Instant};

use crate::support::TestBed;
use crate::support::ovsup::Ovsup;

#[test]
fn sigint_lets_in_flight_commands_finish_starts_nothing_new_and_exits_130() {
    let bed = TestBed::start(2);
    let state = bed.dir().join("state");
    // Each step appends to a file on every node; a step takes ~1 s.
    let script = r#"
        for i in 0..20 {
            sh(nodes(), "sleep 1; echo " + i + " >> /var/tmp/steps");
        }
    "#;
    let running = Ovsup::with_inventory(bed.inventory_path())
        .state_dir(&state)
        .args(["eval", script])
        .spawn();
    // Interrupt in the middle of the second step (connect + first step take ~1.1 s).
    std::thread::sleep(Duration::from_millis(1600));
    let sent = Instant::now();
    running.interrupt();
    let ran = running.wait();
    let waited = sent.elapsed();
    let ran = ran.code(130);
    assert!(waited < Duration::from_secs(5), "took {waited:?} to stop");
    ran.stderr_has("interrupted");
    // The step in flight completed on every node (it was not cut), and no later step started.
    std::thread::sleep(Duration::from_millis(1500));
    let mut counts = Vec::new();
    for node in bed.nodes() {
        let steps =
            std::fs::read_to_string(node.root_path().join("var/tmp/steps")).unwrap_or_default();
        counts.push(steps.lines().count());
    }
    assert!(
        counts.iter().all(|&c| c == counts[0]),
        "nodes disagree: {counts:?}"
    );
    assert!((1..=3).contains(&counts[0]), "steps run: {counts:?}");
}
