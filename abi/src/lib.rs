//! The rule book of a Muen app.
//!
//! A *Muen app* is one native subject built with this project. Three programs must agree
//! on how such an app looks from the inside: `policy-gen` writes its component
//! specification, the runtime (`muen-subject`) finds its resources at run time, and the
//! testbed builds its world. This crate holds what they must agree on, and nothing else:
//!
//! - [`names`]: the logical names of resources (`<dev>|in`, `ram`, `debuglog`, ...) and
//!   the rules for valid names;
//! - [`layout`]: the fixed virtual addresses (sinfo page, RAM, device window, ...);
//! - [`numbers`]: how event ids and interrupt vectors are allocated;
//! - [`addr`]: virtual and physical addresses as types of their own;
//! - [`time`]: TSC readings, the TSC rate and monotonic instants;
//! - [`solo5`]: the note by which a Solo5 unikernel says that its Muen bindings are
//!   this project's (`solo5-muen`), for `policy-gen --elf` and the testbed.
//!
//! The crate is `no_std` and allocation-free so that the runtime can use it. The
//! conventions are explained with their reasons in `docs/conventions.md`.

#![no_std]
#![deny(unsafe_code)]

pub mod addr;
pub mod layout;
pub mod names;
pub mod numbers;
pub mod solo5;
pub mod time;

pub use addr::{PhysAddr, VirtAddr};
pub use time::{Duration, Instant, Tsc, TscRate};
