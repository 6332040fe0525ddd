//! The apt primitives.
