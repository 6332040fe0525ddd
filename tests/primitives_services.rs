//! Tests of the services primitives, on both backends.
