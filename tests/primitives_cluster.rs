//! Tests of the cluster primitives, on both backends.
