//! The std primitives the hand-made ones are built from — or, when built
//! with `--cfg feedgate_loom`, loom's models of them, so that the model
//! tests in this folder explore every interleaving (docs/architecture.md,
//! "Model-checked primitives"):
//!
//! ```sh
//! RUSTFLAGS="--cfg feedgate_loom" cargo test --release --lib sync::
//! ```
//!
//! A custom cfg rather than loom's own `cfg(loom)`: tokio reads that one
//! too and would want loom as its dependency.

#[cfg(feedgate_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(feedgate_loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};

#[cfg(not(feedgate_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(feedgate_loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};
