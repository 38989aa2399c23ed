//! The two platforms a subject runs on, behind one small interface.
//!
//! | | `muen` (`target_os = "none"`) | `hosted` (`target_os = "linux"`) |
//! |---|---|---|
//! | start | `_start` at `0x20_0000`, own GDT/TSS/IDT | maps the testbed's memory file (fd 3) |
//! | trigger event | `vmcall`, number in RAX | `Event(n)` on the control socket (fd 4) |
//! | vectors | IDT stubs set bits in the pending bitmap | `Vector(v)` messages drained into the pending bitmap |
//! | halt | `sti; hlt` with interrupts off until then | `Halt`, then a blocking `recv` |
//! | time | `rdtsc` | `rdtsc` |
//! | exit | `cli; hlt` forever | `_exit(code)` |
//!
//! Everything above this module (runtime, idle loop, drivers) is written against
//! [`Platform`], so the same code runs on both, and unit tests run it on a mock.
//!
//! This module only chooses [`Current`] and re-exports; the interface is in `machine`
//! (a leaf), which both platforms import, so no platform imports this module back.

pub(crate) mod machine;

#[cfg(target_os = "linux")]
pub mod hosted;
#[cfg(target_os = "none")]
pub mod muen;

pub use machine::{CpuException, Platform, VectorSet};
// For the runtime's tests, whose simulated platform fills the bitmap.
#[cfg(test)]
pub(crate) use machine::PENDING;

/// The platform of this build.
#[cfg(target_os = "none")]
pub type Current = muen::Muen;
/// The platform of this build.
#[cfg(target_os = "linux")]
pub type Current = hosted::Hosted;
