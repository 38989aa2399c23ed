//! How the testbed boots the real subject image in QEMU: the contract between the
//! testbed, its boot stage and the runtime.
//!
//! In QEMU mode a guest's RAM holds its own low memory (the memory map at 0, the boot
//! stage), the testbed's memory file with the regions (`crate::hosted`; shared by the
//! guests of one run) and its page table pool, one after another; the memory map's
//! entry offsets are guest physical addresses. The guest starts in the boot stage (`qemu-boot/`),
//! which is QEMU's firmware (`-bios`): it enters long mode, builds page tables that map
//! every entry of the memory map at its virtual address with its rights, and jumps to
//! [`MemMapHeader::rip`](crate::hosted::MemMapHeader::rip) with
//! [`MemMapHeader::rsp`](crate::hosted::MemMapHeader::rsp), in the state Muen starts a
//! native subject in. `docs/qemu.md` explains every part; this module holds what the
//! three programs must agree on:
//!
//! - the guest physical layout ([`BOOT_CONFIG_ADDRESS`], [`BOOT_IMAGE_BASE`],
//!   [`LEGACY_HOLE`], [`REGIONS_BASE`], [`RAM_LIMIT`], [`ROM_SIZE`]);
//! - the boot configuration the testbed writes for the boot stage ([`BootConfig`]);
//! - the doorbell: the byte stream from the guest to the testbed on I/O port
//!   [`DOORBELL_PORT`] ([`DOORBELL_EXIT`], [`DOORBELL_STARTED`], [`DOORBELL_TEXT`]),
//!   and QEMU's exit device on [`EXIT_PORT`];
//! - the runtime's two paravirtualisation points, [`HYPERCALL_SYMBOL`] and
//!   [`EXIT_SYMBOL`]: 16-byte stubs whose Muen bodies the testbed replaces with the
//!   QEMU bodies before boot.
//!
//! ```text
//! guest physical
//! 0x0000_0000  memory map (crate::hosted::MEMMAP_SIZE)
//! 0x0001_0000  boot configuration (BootConfig, one page)
//! 0x0001_1000  boot stage: its ELF segments, stack, bootstrap page tables
//! 0x000a_0000  legacy hole: VGA window, option ROMs, BIOS shadow (never used)
//! REGIONS_BASE and up: the memory map's regions, as the testbed places them (the
//!              testbed's memory file, from 0x0020_0000)
//!   ...        page table pool: the boot stage builds the subject's tables here
//! RAM end      (at most RAM_LIMIT)
//! 0xffff_0000  boot stage ROM (the -bios image; not in RAM)
//! ```

use core::ops::Range;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Where the testbed writes the [`BootConfig`] (one page).
pub const BOOT_CONFIG_ADDRESS: u64 = 0x1_0000;

/// Where the boot stage's RAM image starts: its 32-bit entry point.
pub const BOOT_IMAGE_BASE: u64 = 0x1_1000;

/// The boot stage's RAM (configuration, image, stack and bootstrap tables).
pub const BOOT_AREA: Range<u64> = BOOT_CONFIG_ADDRESS..LEGACY_HOLE.start;

/// Guest physical memory that the PC platform overlays (VGA, option ROMs, the BIOS
/// shadow): the memory file's bytes there are not what the guest sees.
pub const LEGACY_HOLE: Range<u64> = 0xa_0000..0x10_0000;

/// The lowest guest physical address of a memory map region in QEMU mode.
pub const REGIONS_BASE: u64 = LEGACY_HOLE.end;

/// The most guest RAM in QEMU mode: below every PC machine's PCI hole (q35 starts it at
/// 2 GiB), so that all of RAM is one block from guest physical address 0.
pub const RAM_LIMIT: u64 = 0x8000_0000;

/// Size of the boot stage ROM image (`-bios`), mapped by QEMU just below 4 GiB. QEMU
/// wants a multiple of 64 KiB.
pub const ROM_SIZE: u64 = 0x1_0000;

/// Guest physical address of the ROM's first byte.
pub const ROM_BASE: u64 = (1 << 32) - ROM_SIZE;

/// Magic value of [`BootConfig`]: ASCII `muenboot` in memory order.
pub const BOOT_CONFIG_MAGIC: u64 = u64::from_le_bytes(*b"muenboot");

/// Version of the [`BootConfig`] layout described here (2: with
/// [`rdi`](BootConfig::rdi)).
pub const BOOT_CONFIG_VERSION: u32 = 2;

/// What the testbed tells the boot stage, at [`BOOT_CONFIG_ADDRESS`].
///
/// Everything but [`go`](BootConfig::go) is written before QEMU starts; `go` is the
/// testbed's answer to [`DOORBELL_STARTED`].
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct BootConfig {
    /// [`BOOT_CONFIG_MAGIC`].
    pub magic: U64,
    /// [`BOOT_CONFIG_VERSION`].
    pub version: U32,
    /// The vector of the periodic tick (IRQ 0 of the 8259 PIC, whose base is this
    /// value, a multiple of 8 from 32 to 248). The runtime treats it as a plain
    /// wake-up.
    pub tick_vector: U16,
    /// The 8254 PIT channel 0 divisor of the tick (1.193182 MHz input); 0: no tick.
    pub tick_divisor: U16,
    /// First byte of the page table pool (page-aligned, after every region).
    pub pool_start: U64,
    /// End of the pool (page-aligned, at most the end of RAM).
    pub pool_end: U64,
    /// CR4 bits the policy asks for beyond the native profile's: only
    /// [`CR4_OSXMMEXCPT`] is accepted.
    pub cr4_extra: U64,
    /// Written by the testbed (to 1) once it has published the subject's scheduling
    /// and time pages for the guest TSC that [`DOORBELL_STARTED`] reported; the boot
    /// stage waits for it before it jumps to the subject.
    pub go: U64,
    /// The subject's initial RDI: the policy's `<gpr><rdi>` (0 if it gives none). A
    /// Solo5 unikernel finds its boot info there. The subject's other general-purpose
    /// registers start at 0, except RSP and RAX, which carries the subject's CR3 into
    /// the handover's last instruction (`docs/qemu.md`).
    pub rdi: U64,
}

const _: () = assert!(core::mem::size_of::<BootConfig>() == 56);
const _: () = assert!(core::mem::offset_of!(BootConfig, rdi) == 48);
const _: () = assert!(core::mem::offset_of!(BootConfig, tick_vector) == 12);
const _: () = assert!(core::mem::offset_of!(BootConfig, pool_start) == 16);
const _: () = assert!(core::mem::offset_of!(BootConfig, go) == 40);

/// CR4.OSXMMEXCPT: the only CR4 bit a component policy of this project sets
/// (`<OSSupportSIMDExceptions>`).
pub const CR4_OSXMMEXCPT: u64 = 1 << 10;

/// Offset of [`BootConfig::go`] from [`BOOT_CONFIG_ADDRESS`].
pub const BOOT_CONFIG_GO_OFFSET: u64 = core::mem::offset_of!(BootConfig, go) as u64;

/// I/O port of the doorbell: QEMU's `isa-debugcon` device, whose character device the
/// testbed reads. The guest writes one byte per `out`.
pub const DOORBELL_PORT: u16 = 0xe9;

/// I/O port of QEMU's `isa-debug-exit` device (one byte wide): writing `c` ends QEMU
/// with exit status `(c << 1) | 1`.
pub const EXIT_PORT: u16 = 0xf4;

/// Doorbell bytes `0..=EVENT_MAX`: the subject triggered that event (its hypercall).
pub const DOORBELL_EVENT_MAX: u8 = muen_abi::numbers::EVENT_MAX;

/// Doorbell: the subject exits; one byte follows, its exit code (the low 8 bits, as a
/// Linux exit status keeps them). Sent by the QEMU exit stub before it ends QEMU.
pub const DOORBELL_EXIT: u8 = 0x40;

/// Doorbell: the boot stage is ready to start the subject; eight bytes follow, the
/// guest TSC (little-endian). The boot stage then waits for [`BootConfig::go`].
pub const DOORBELL_STARTED: u8 = 0x41;

/// Doorbell: a line of text from the boot stage follows, printable ASCII ended by a
/// line feed (why it cannot boot the subject, before it ends QEMU).
pub const DOORBELL_TEXT: u8 = 0x42;

/// The exit code the boot stage writes to [`EXIT_PORT`] when it cannot boot the subject
/// (after its reason as [`DOORBELL_TEXT`]).
pub const BOOT_FAILURE_CODE: u8 = 0x7f;

/// Length of both paravirtualisation stubs.
pub const STUB_SIZE: usize = 16;

/// The runtime's event stub, called with the event number in RAX; returns with RAX
/// clobbered and every other register preserved.
pub const HYPERCALL_SYMBOL: &str = "muen_subject_hypercall";

/// Its body on Muen: `vmcall; ret`, padded with `int3`.
pub const HYPERCALL_MUEN: [u8; STUB_SIZE] = [
    0x0f, 0x01, 0xc1, // vmcall
    0xc3, // ret
    0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
];

/// Its body in QEMU mode: `out DOORBELL_PORT, al; nop; ret`, padded with `int3`.
pub const HYPERCALL_QEMU: [u8; STUB_SIZE] = [
    0xe6,
    DOORBELL_PORT as u8, // out 0xe9, al
    0x90,                // nop
    0xc3,                // ret
    0xcc,
    0xcc,
    0xcc,
    0xcc,
    0xcc,
    0xcc,
    0xcc,
    0xcc,
    0xcc,
    0xcc,
    0xcc,
    0xcc,
];

/// The runtime's exit stub, called with the exit code in EDI; never returns.
pub const EXIT_SYMBOL: &str = "muen_subject_exit";

/// Its body on Muen: `cli; 1: hlt; jmp 1b`, padded with `int3`.
pub const EXIT_MUEN: [u8; STUB_SIZE] = [
    0xfa, // cli
    0xf4, // 1: hlt
    0xeb, 0xfd, // jmp 1b
    0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
];

/// Its body in QEMU mode: send [`DOORBELL_EXIT`] and the code's low byte, end QEMU
/// through [`EXIT_PORT`], and halt should it ever return.
pub const EXIT_QEMU: [u8; STUB_SIZE] = [
    0xfa, // cli
    0xb0,
    DOORBELL_EXIT, // mov al, DOORBELL_EXIT
    0xe6,
    DOORBELL_PORT as u8, // out 0xe9, al
    0x89,
    0xf8, // mov eax, edi
    0xe6,
    DOORBELL_PORT as u8, // out 0xe9, al
    0xe6,
    EXIT_PORT as u8, // out 0xf4, al
    0xf4,            // 1: hlt
    0xeb,
    0xfd, // jmp 1b
    0xcc,
    0xcc,
];

const _: () = assert!(
    DOORBELL_PORT <= 0xff && EXIT_PORT <= 0xff,
    "`out imm8` ports"
);
const _: () = assert!(DOORBELL_EVENT_MAX < DOORBELL_EXIT);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stubs_keep_their_shape() {
        // The `ret` of the event stub stays at the same place, so the call site works
        // with either body; the exit stubs end in a halt loop that jumps back to `hlt`.
        assert_eq!(HYPERCALL_MUEN[3], 0xc3);
        assert_eq!(HYPERCALL_QEMU[3], 0xc3);
        let halt_loop = |s: &[u8; STUB_SIZE], at: usize| {
            assert_eq!(s[at], 0xf4);
            assert_eq!(s[at + 1..at + 3], [0xeb, 0xfd]);
        };
        halt_loop(&EXIT_MUEN, 1);
        halt_loop(&EXIT_QEMU, 11);
        for s in [HYPERCALL_MUEN, HYPERCALL_QEMU, EXIT_MUEN, EXIT_QEMU] {
            assert_eq!(s.len(), STUB_SIZE);
        }
    }
}
