//! The small concurrency primitives feedgate makes itself, where the
//! general ones cost too much per subscriber on the fan-out path. Each
//! has a `loom` model test (`RUSTFLAGS="--cfg feedgate_loom" cargo test
//! --release --lib sync::`, see [`shim`] and docs/architecture.md).
//!
//! - [`waker_slots`]: a waker per waiting task in a slab, taken all at once;
//! - [`head_signal`]: a topic's head and the readers waiting beyond it;
//! - [`stop_signal`]: the shutdown as a subscriber's feed waits on it;
//! - [`wake_gate`]: poll a task's peer and timer only when their own
//!   wakers fired;
//! - [`sharded_counter`]: hot-path counters in per-thread slots.

pub(crate) mod head_signal;
#[cfg(all(test, feedgate_loom))]
mod models;
pub mod sharded_counter;
mod shim;
pub(crate) mod stop_signal;
pub(crate) mod wake_gate;
pub(crate) mod waker_slots;
