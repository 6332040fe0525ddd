//! Shared support for the integration tests and benchmarks.
#![allow(dead_code)]

pub mod cluster;
pub mod ovsup;
pub mod testbed;

#[allow(unused_imports)]
pub use testbed::{Node, STD_PATH, TestBed, TestBedBuilder, require_root};
