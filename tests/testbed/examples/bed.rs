//! A test bed kept up for manual runs: `cargo run -p ovsup-testbed --example bed -- N
//! [ssh_config lines…]` starts N nodes, prints where its inventory and ssh config are, and
//! stops them when its standard input closes (Ctrl-D, or the end of a pipe).

use std::io::Read;

use ovsup_testbed::TestBed;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: bed N [ssh_config line…]");
    let mut builder = TestBed::builder().nodes(n);
    for line in args {
        builder = builder.ssh_config_extra(&line);
    }
    let bed = builder.start();
    println!(
        "bed: {n} nodes up in {:.1} s",
        bed.bringup_time().as_secs_f64()
    );
    println!("dir: {}", bed.dir().display());
    println!("inventory: {}", bed.inventory_path().display());
    println!("ssh_config: {}", bed.ssh_config_path().display());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
