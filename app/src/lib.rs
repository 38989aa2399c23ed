//! What a Muen app is, in one place.
//!
//! A *Muen app* is one native subject built with this project. Three programs must agree
//! on how such an app looks from the inside: `policy-gen` writes its component policy,
//! the runtime (`muen-subject`) finds its resources at run time, and the testbed builds
//! its world. This crate holds everything they must agree on:
//!
//! - [`layout`]: the fixed virtual addresses (sinfo page, RAM, device window, ...).
//! - [`names`]: the logical names of resources (`<dev>|in`, `ram`, `debuglog`, ...) and
//!   the rules for valid names.
//! - [`numbers`]: how event ids and interrupt vectors are allocated.
//! - [`hosted`]: the memory map that the testbed hands to a subject it runs, in hosted
//!   mode (a Linux process) and in QEMU mode (a boot stage).
//! - [`qemu`]: how the testbed boots the real subject image in QEMU: guest physical
//!   layout, boot configuration, doorbell, and the runtime's paravirtualisation stubs.
//! - `manifest` (feature `manifest`, needs `std`): the app manifest (`app.toml` or a
//!   Solo5 manifest) and the `manifest::Plan` that resolves it into concrete addresses,
//!   event ids and vectors. `policy-gen` and the testbed both build on the plan.
//!
//! Without features the crate is `no_std` and allocation-free so that the runtime can use
//! it. The conventions are explained with their reasons in `docs/conventions.md`.

#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "manifest")]
extern crate std;

pub mod hosted;
pub mod layout;
#[cfg(feature = "manifest")]
pub mod manifest;
pub mod names;
pub mod numbers;
pub mod qemu;
