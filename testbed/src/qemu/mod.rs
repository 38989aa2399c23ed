//! QEMU mode: the subject's real image, built for `x86_64-unknown-none`, boots in a
//! QEMU guest whose RAM is the testbed's memory file (`docs/qemu.md`).
//!
//! The world, the memory file (with the QEMU layout), the kernel and the peers are the
//! hosted mode's; this module adds what a guest needs:
//!
//! - [`accel`]: KVM when `/dev/kvm` works, TCG otherwise or when asked;
//! - [`boot`]: the boot stage (`qemu-boot/`) split into ROM and RAM, and its
//!   configuration;
//! - [`image`]: the subject's ELF segments in guest memory and the runtime's stubs
//!   switched to their QEMU bodies;
//! - [`doorbell`]: the byte stream from the guest (events, exit code, boot handshake);
//! - [`qmp`]: QEMU's monitor (the guest stopped; its registers);
//! - [`machine`]: QEMU's command line and process;
//! - [`elf`]: the checked ELF reading the others share;
//! - [`solo5`]: what an unmodified Solo5 unikernel needs besides (boot info, exit,
//!   subject info format).

pub mod accel;
pub mod boot;
pub mod doorbell;
pub mod elf;
pub mod image;
pub mod machine;
pub mod qmp;
pub mod solo5;
