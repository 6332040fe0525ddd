//! `ovs-sim`: the simulated Open vStorage node as a multi-call program (see `ovsup::sim::cli`).

fn main() {
    std::process::exit(ovsup::sim::cli::main_with(std::env::args_os().collect()));
}
