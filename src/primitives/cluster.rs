//! The cluster primitives.
