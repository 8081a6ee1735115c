//! Under `cfg(loom)` only the chunk protocol is compiled, with loom's atomics, and model-checked.

pub(crate) mod protocol;
pub(crate) mod span_table;
pub(crate) mod sync;

#[cfg(test)]
mod loom_tests;
