//! Tests of the vms primitives, on both backends.
