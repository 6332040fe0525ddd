//! The services primitives.
