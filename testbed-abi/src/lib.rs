//! The contract between the testbed and what it runs.
//!
//! The testbed (`muen-testbed`) runs a subject in an emulated Muen world, either as a
//! Linux process (hosted mode) or as its real image in a QEMU guest (QEMU mode). Three
//! programs meet there and agree on what this crate says: the testbed, the runtime's
//! hosted platform (`muen-subject`), and the QEMU boot stage (`muen-qemu-boot`).
//!
//! - [`hosted`]: the memory map that the testbed hands to a subject it runs, in hosted
//!   mode (a Linux process) and in QEMU mode (a boot stage), and the control messages
//!   of hosted mode;
//! - [`qemu`]: how the testbed boots the real subject image in QEMU: guest physical
//!   layout, boot configuration, doorbell, and the runtime's paravirtualisation stubs.
//!
//! The crate is `no_std` and allocation-free. On Muen none of this exists: a subject
//! built for Muen never looks at it (the runtime's three stubs are Muen's `vmcall`,
//! `hlt` and `sti; hlt` until the testbed patches them).

#![no_std]
#![deny(unsafe_code)]

pub mod hosted;
pub mod qemu;
