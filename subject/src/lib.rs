//! The runtime of a native Muen subject.
//!
//! An application is a `#![no_std] #![no_main]` binary with one function,
//! `fn main(rt: &mut Runtime)`, named in [`entry!`]; it returns `()`, an `i32` exit
//! code, or a `Result` whose error is logged ([`entry::Termination`]). The runtime starts the CPU
//! (on Muen) or maps the testbed's world (hosted), reads the subject info page, and hands
//! `main` a [`Runtime`]: the subject's name and resources, a `log` backend on the
//! `debuglog` channel, monotonic and wall clocks, an idle loop that sleeps until a
//! device has data or a deadline passes, and network and block devices found by name.
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! muen_subject::entry!(main);
//!
//! fn main(rt: &mut muen_subject::Runtime) -> Result<(), muen_subject::device::AcquireError> {
//!     log::info!("hello from {}", rt.name());
//!     let _net = rt.net("service0")?;
//!     Ok(())
//! }
//! ```
//!
//! Layers, bottom up (each explained in `docs/runtime.md`); a module imports only
//! modules below it (`tests/module_graph.rs` checks that no two import each other):
//!
//! - [`log`](mod@crate::log), [`clock`], [`device`]: leaves. The `log` backend on the
//!   `debuglog` channel; the wall clock from `time_info` (monotonic time is an
//!   [`Instant`]); the device ABI ([`NetDevice`](device::NetDevice),
//!   [`BlockDevice`](device::BlockDevice), [`Sys`]) and device acquisition errors.
//! - [`platform`]: the two platforms behind one interface: `muen` (target
//!   `x86_64-unknown-none`: `_start`, GDT/IDT, `vmcall`, `rdtsc`, `sti; hlt`) and
//!   `hosted` (Linux: `docs/hosted.md`, the testbed's memory file and control socket).
//! - [`exit`]: exit codes, the exit, and the reports of panics and CPU exceptions
//!   (the Muen platform's exception handler calls it).
//! - [`net`] (muennet) and [`block`] (muenblock client): the drivers; with feature
//!   `smoltcp` a `phy::Device` adapter. [`channel`]: typed ends of channels to other
//!   subjects.
//! - [`Runtime`]: the handle given to `main` (resources, clocks, the idle loop,
//!   devices, channel ends).
//! - [`entry`](mod@entry): [`entry!`] and what `main` may return.
//!
//! The runtime uses no heap. Feature `alloc` adds a global allocator over the `ram`
//! region (module `heap`).

#![cfg_attr(not(test), no_std)]

// Hosted subjects use std's panic machinery (see `entry`); Muen subjects never link std.
#[cfg(all(target_os = "linux", not(test)))]
extern crate std;

pub mod block;
pub mod channel;
pub mod clock;
pub mod device;
pub mod entry;
pub mod exit;
#[cfg(feature = "alloc")]
pub mod heap;
pub mod log;
pub mod net;
pub mod platform;
mod runtime;
#[cfg(feature = "smoltcp")]
pub mod smoltcp;

pub use device::{Pollable, Sys};
pub use muen_abi::time::{Duration, Instant, Tsc, TscRate};
pub use runtime::{Ready, Runtime, StartError, WallClockError, MAX_SLEEP};

// What applications name in their code, re-exported so that they need no direct
// dependency on the lower crates.
pub use muen_abi::names::Name;
pub use muen_channel::{Event, Vector};
pub use muen_sinfo as sinfo;
