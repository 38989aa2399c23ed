//! Solo5's Muen bindings written on this project's runtime: the C interface of Solo5's
//! `include/solo5.h` for a unikernel that runs as a native Muen subject, as a drop-in
//! replacement for Solo5's own `bindings/solo5_muen.o`.
//!
//! A Solo5 unikernel (a MirageOS application, Solo5's test programs) is linked with
//! Solo5's linker script `solo5_muen.lds` and one object that provides the entry
//! `_start`, the notes, and every `solo5_*` function. `scripts/solo5-muen-build.sh`
//! builds this crate into such an object, `solo5_muen.o`; the unikernel's own objects
//! link against it unchanged (`docs/solo5.md` has the link line). Compared with
//! Solo5's C bindings:
//!
//! - **block devices** work (muenblock, as the runtime's `MuenBlock`); Solo5's return
//!   `SOLO5_R_EUNSPEC` for every block call on Muen;
//! - **`solo5_yield` sleeps**: the runtime's idle loop arms the timed event for the
//!   deadline and halts until it or a channel's vector arrives; Solo5's spins with
//!   PAUSE until the deadline (without a timer in the policy this crate spins too);
//! - **the channel reader is muen-channel's hardened one**, and `solo5_net_read`
//!   never writes past the caller's buffer, whatever length field the peer wrote;
//! - **bad input is an error, not a fault**: a missing `debuglog` channel, a wrong
//!   boot info pointer, a device whose channels the policy lacks (see [`bindings`]).
//!
//! What stays Solo5's: the ABI (types from `solo5-abi`, checked against the real
//! headers), the ABI note (target `muen`, version 4; 3 with feature `abi3`), the
//! built-in manifest validated as Solo5 validates it (failure: Solo5's message and an
//! abort), the boot info in RDI, the command line and its `--solo5:` options, the heap
//! from the end of the image to the boot info's `mem_size`, TLS, the stack protector's
//! `__stack_chk_guard`/`__stack_chk_fail`, the console on `debuglog`, the `Solo5: trap:`
//! report and exit status 255 of CPU exceptions, the `solo5_exit` event at the end.
//!
//! # Modules
//!
//! - [`console`]: `solo5_console_write` and the `Solo5: ` messages on `debuglog`;
//! - [`cmdline`]: the command line's `--solo5:` options;
//! - [`boot`]: the boot info (RDI) and the heap, checked against the sinfo page;
//! - [`manifest`]: the built-in `MFT1` note;
//! - [`tls`]: thread-local storage blocks;
//! - [`trap`]: the exception report;
//! - [`bindings`]: devices, clocks, `solo5_yield` and exit on the runtime;
//! - `abi` (only for `x86_64-unknown-none`): `_start`, the C functions, the notes and
//!   the statics Solo5's objects expect.
//!
//! Everything but `abi` is ordinary Rust and is tested on the host, with muen-sim's
//! simulated kernel and peers.
//!
//! # The two version pairs
//!
//! Solo5's ABI version for Muen and the sinfo format go together: ABI 3 with sinfo
//! format 4 (Muen's tool generations 2026-01 and 2026-04, Solo5 up to v0.12.0), ABI 4
//! with format 5 (Solo5 v0.12.1, Muen tools from commit 07ce986dadd7). The default
//! build declares ABI 4 and expects format 5; feature `abi3` declares ABI 3 and
//! expects format 4 ([`ABI`], [`SINFO_FORMAT`]). The sinfo reader itself reads both;
//! the start refuses the other format with a message, since a policy of the other
//! generation was made for other bindings.

#![cfg_attr(not(test), no_std)]

pub mod bindings;
pub mod boot;
pub mod cmdline;
pub mod console;
pub mod manifest;
pub mod tls;
pub mod trap;

#[cfg(target_os = "none")]
mod abi;

use muen_sinfo::Version;
use solo5_abi::{Abi, AbiTarget};

/// The ABI this build declares in its `ABI1` note: target `muen`, version 4 (3 with
/// feature `abi3`).
pub const ABI: Abi = Abi {
    target: AbiTarget::Muen,
    version: if cfg!(feature = "abi3") { 3 } else { 4 },
};

/// The sinfo format that goes with [`ABI`]: 5 (4 with feature `abi3`).
pub const SINFO_FORMAT: Version = if cfg!(feature = "abi3") {
    Version::V4
} else {
    Version::V5
};

/// What this build says in its banner: `Solo5: Bindings version ...`.
pub const BINDINGS_VERSION: &str = concat!("solo5-muen ", env!("CARGO_PKG_VERSION"));
