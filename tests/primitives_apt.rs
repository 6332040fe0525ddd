//! Tests of the apt primitives, on both backends.
