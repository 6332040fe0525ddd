//! All integration tests, in one test binary (one link, shared test bed support).
mod support;

mod capture;
mod cli;
mod completions;
mod definitions;
mod errors;
mod exec;
mod faults;
mod files;
mod history;
mod host_primitives;
mod import_legacy;
mod interrupt;
mod masters;
mod primitives_apt;
mod primitives_cluster;
mod primitives_services;
mod primitives_vms;
mod procedure;
mod runbooks;
mod script_errors;
mod secrets;
mod sim_cluster;
mod testbed_selftest;
mod topology;
