//! The vms primitives.
