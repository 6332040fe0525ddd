//! Shared support for the integration tests: what is specific to ovsup (the [`cluster`]
//! harness, the [`ovsup`] CLI builder, [`topology`]: what runs where on a cluster), and the
//! SSH test bed (the `ovsup-testbed` crate, `tests/testbed/`) re-exported so that tests name
//! its types from here.
#![allow(dead_code)]

pub mod background;
pub mod cluster;
pub mod ovsup;
pub mod topology;

#[allow(unused_imports)]
pub use ovsup_testbed::{Node, STD_PATH, TestBed, TestBedBuilder, require_root};
