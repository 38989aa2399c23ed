//! The boot stage firmware: QEMU's `-bios` image in the testbed's QEMU mode.
//!
//! Built for `x86_64-unknown-none` with `link/boot.ld`; `docs/qemu.md` describes the boot
//! step by step and the library (`muen_qemu_boot`) holds the hardware-free parts. A
//! host build of this binary only says what it is.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod firmware;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "muen-qemu-boot is QEMU firmware for the testbed's QEMU mode; build it with \
         `--target x86_64-unknown-none` (see docs/qemu.md)"
    );
    std::process::exit(2);
}
