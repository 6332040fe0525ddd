//! All integration tests, in one test binary (one link, shared test bed support).
mod support;

mod exec;
mod interrupt;
mod script_errors;
mod testbed_selftest;
