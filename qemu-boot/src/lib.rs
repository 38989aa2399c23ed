//! The boot stage of the testbed's QEMU mode: what runs between QEMU's reset vector and
//! the subject's first instruction.
//!
//! The boot stage is QEMU's firmware (`-bios`). It puts the CPU into the state Muen
//! starts a native subject in: 64-bit mode, page tables that map every entry of the
//! testbed's memory map (`muen_testbed_abi::hosted`) at its virtual address with its rights,
//! flat segments, interrupts off, RIP and RSP from the policy. The contract with the
//! testbed (guest physical layout, boot configuration, doorbell) is `muen_testbed_abi::qemu`;
//! `docs/qemu.md` describes the whole boot.
//!
//! This library holds the parts that need no hardware, tested on the host:
//!
//! - [`paging`]: four-level page tables over an abstract physical memory, and the
//!   frame estimate the testbed sizes the page table pool with;
//! - [`check`]: the checks of the boot configuration and the memory map, and the
//!   resulting [`check::Plan`].
//!
//! The firmware itself (`src/main.rs`, built for `x86_64-unknown-none` only) adds the
//! reset code, the switch to long mode, the interrupts (PIC, wake-up UART, tick), the
//! handshake with the testbed and the jump to the subject.

#![no_std]
#![forbid(unsafe_code)]

pub mod check;
pub mod paging;

/// Where the boot stage sees guest physical memory while it runs: physical address `p`
/// is at virtual address `PHYS_WINDOW + p` (PML4 slot 1 of the bootstrap tables), so
/// that Rust code can reach physical address 0, the memory map, without a null pointer.
pub const PHYS_WINDOW: u64 = 0x80_0000_0000;

/// The handover code (the last instructions before the subject's) is at most this long.
/// It is placed so that it ends exactly at RIP (`docs/qemu.md`, "Handover").
pub const HANDOVER_STUB_MAX: u64 = 64;
