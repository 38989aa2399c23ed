//! The boot information Muen's tool chain hands a Solo5 unikernel, and the heap.
//!
//! **Boot info.** `_start` receives its address in RDI (the policy's `<rdi>`, Muen's
//! template sets `0x1000`, where region `boot_info` of type
//! `subject_solo5_boot_info` lies). mugensolo5 writes Solo5's `struct
//! hvt_boot_info` there: `mem_size` at offset 0 (the end of `ram`), `kernel_end` at 8,
//! `cpu_cycle_freq` at 16, the address of the command line at 24 (the text follows the
//! record at offset 40, NUL-terminated), `mft` at 32. Solo5's bindings read
//! `mem_size` and the command line only, and so does this crate.
//!
//! Solo5's C bindings trust all three values (a wrong RDI ends in a page fault at
//! address 0). Here each is checked against the subject info page first: the record
//! and the command line (up to its NUL) must lie in memory regions the page names, so
//! a wrong RDI or a broken record is a clear message ([`BootInfoError`]), never a
//! fault.
//!
//! **Heap.** Solo5's heap is everything from the end of the image (`_end`, rounded up
//! to a page) to `mem_size`; the initial stack is at its top. Solo5 refuses to run with
//! less than 512 KiB. [`Heap::new`] also checks that the whole range is one writable
//! region of the page (`ram`), which Solo5 does not.

use core::fmt;

use muen_sinfo::{Memory, ResourceData, SubjectInfo};
use zerocopy::little_endian::U64;
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// The part of Solo5's `struct hvt_boot_info` the bindings read: the first four words.
#[derive(Clone, Copy, Debug, FromBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct BootInfoRecord {
    /// End of the memory the unikernel may use (`mem_size`): the end of `ram`.
    pub mem_size: U64,
    /// Last byte of the image (`kernel_end`; not used).
    pub kernel_end: U64,
    /// The CPU's cycle frequency (`cpu_cycle_freq`; mugensolo5 writes 0; not used).
    pub cpu_cycle_freq: U64,
    /// Address of the NUL-terminated command line (`cmdline`).
    pub cmdline: U64,
}

const _: () = assert!(core::mem::size_of::<BootInfoRecord>() == 32);
const _: () = assert!(core::mem::offset_of!(BootInfoRecord, cmdline) == 24);

/// The longest command line taken (bytes before the NUL), as Solo5's hvt tender's
/// limit (`HVT_CMDLINE_SIZE` 8192 with the NUL).
pub const CMDLINE_MAX: usize = 8191;

/// The smallest heap Solo5 runs with: 512 KiB.
pub const HEAP_MIN: u64 = 0x8_0000;

/// Page size of the heap's start.
const PAGE: u64 = 0x1000;

/// What the bindings take from the boot info.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootInfo<'a> {
    /// End of usable memory (heap and stack).
    pub mem_size: u64,
    /// The command line without its NUL; a NUL follows it in memory.
    pub cmdline: &'a [u8],
}

/// Why the boot info cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// The record at `address` (RDI at entry) is not inside a memory region of the
    /// subject info page.
    NotMapped {
        /// The address.
        address: u64,
    },
    /// The command line address is not inside a memory region of the page.
    CmdlineNotMapped {
        /// The address.
        address: u64,
    },
    /// No NUL ends the command line within its region (or within [`CMDLINE_MAX`]).
    CmdlineNotTerminated {
        /// The address.
        address: u64,
    },
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BootInfoError::NotMapped { address } => write!(
                f,
                "boot info at {address:#x} (RDI at entry) is not in a memory region of the \
                 subject info page"
            ),
            BootInfoError::CmdlineNotMapped { address } => write!(
                f,
                "boot info: the command line at {address:#x} is not in a memory region of \
                 the subject info page"
            ),
            BootInfoError::CmdlineNotTerminated { address } => write!(
                f,
                "boot info: the command line at {address:#x} has no NUL within its region \
                 or {CMDLINE_MAX} bytes"
            ),
        }
    }
}

impl core::error::Error for BootInfoError {}

/// The memory region of `info` that holds `[address, address + len)`, if one does.
pub fn region_holding(info: &SubjectInfo<'_>, address: u64, len: u64) -> Option<Memory> {
    let end = address.checked_add(len)?;
    info.resources().find_map(|r| match r.data {
        ResourceData::Memory(m) if m.address <= address && m.end().is_some_and(|e| end <= e) => {
            Some(m)
        }
        _ => None,
    })
}

impl BootInfo<'static> {
    /// Reads the boot info at `address` (RDI at entry), checking it against `info`.
    ///
    /// # Safety
    ///
    /// Every memory region `info` names is mapped readable at its address for the rest
    /// of the program, and nothing writes the boot info or the command line meanwhile
    /// (Muen maps the boot info read-only).
    pub unsafe fn read(info: &SubjectInfo<'_>, address: u64) -> Result<Self, BootInfoError> {
        let record_len = core::mem::size_of::<BootInfoRecord>() as u64;
        region_holding(info, address, record_len).ok_or(BootInfoError::NotMapped { address })?;
        // SAFETY: the 32 bytes lie in a mapped region (checked, contract); the record
        // is plain integers of any bit pattern, read unaligned.
        let record = unsafe { (address as usize as *const BootInfoRecord).read_unaligned() };
        let cmdline = record.cmdline.get();
        let region = region_holding(info, cmdline, 1)
            .ok_or(BootInfoError::CmdlineNotMapped { address: cmdline })?;
        // Bytes from the command line to the end of its region, at most CMDLINE_MAX + 1.
        let available = region
            .end()
            .map_or(0, |end| end - cmdline)
            .min(CMDLINE_MAX as u64 + 1) as usize;
        // SAFETY: [cmdline, cmdline + available) lies in one mapped region (checked,
        // contract) that nothing writes.
        let bytes: &'static [u8] =
            unsafe { core::slice::from_raw_parts(cmdline as usize as *const u8, available) };
        let len = bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or(BootInfoError::CmdlineNotTerminated { address: cmdline })?;
        Ok(BootInfo {
            mem_size: record.mem_size.get(),
            cmdline: &bytes[..len],
        })
    }
}

/// The heap Solo5 hands the unikernel (`heap_start`, `heap_size` of `struct
/// solo5_start_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heap {
    /// First byte: the end of the image rounded up to a page.
    pub start: u64,
    /// Size in bytes, up to `mem_size`.
    pub size: u64,
}

/// Why there is no heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapError {
    /// Less than [`HEAP_MIN`] between the image and `mem_size` (Solo5's "Not enough
    /// memory").
    NotEnoughMemory {
        /// The heap's start.
        start: u64,
        /// `mem_size`.
        mem_size: u64,
    },
    /// `[start, mem_size)` is not inside one writable memory region of the page.
    NotMapped {
        /// The heap's start.
        start: u64,
        /// `mem_size`.
        mem_size: u64,
    },
}

impl fmt::Display for HeapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HeapError::NotEnoughMemory { start, mem_size } => write!(
                f,
                "Not enough memory: heap {start:#x}..{mem_size:#x} is below {} KiB",
                HEAP_MIN / 1024
            ),
            HeapError::NotMapped { start, mem_size } => write!(
                f,
                "heap {start:#x}..{mem_size:#x} (image end to the boot info's mem_size) is \
                 not one writable memory region of the subject info page"
            ),
        }
    }
}

impl core::error::Error for HeapError {}

impl Heap {
    /// The heap from `image_end` (the linker's `_end`) to `mem_size`, checked against
    /// the writable regions of `info`.
    pub fn new(info: &SubjectInfo<'_>, image_end: u64, mem_size: u64) -> Result<Heap, HeapError> {
        let start = image_end.div_ceil(PAGE).saturating_mul(PAGE);
        let size = mem_size.saturating_sub(start);
        if size < HEAP_MIN {
            return Err(HeapError::NotEnoughMemory { start, mem_size });
        }
        match region_holding(info, start, size) {
            Some(m) if m.writable() => Ok(Heap { start, size }),
            _ => Err(HeapError::NotMapped { start, mem_size }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use muen_sim::{memory, memory_at, page, shared};
    use muen_sinfo::MemoryKind;
    use std::sync::atomic::Ordering;

    /// A boot info page in test memory: the record, then the command line at +40.
    fn boot_page(cmdline: &[u8], mem_size: u64) -> &'static [std::sync::atomic::AtomicU64] {
        let words = shared(0x1000);
        let base = words.as_ptr() as u64;
        let mut bytes = vec![0u8; 0x1000];
        bytes[0..8].copy_from_slice(&mem_size.to_le_bytes());
        bytes[24..32].copy_from_slice(&(base + 40).to_le_bytes());
        bytes[40..40 + cmdline.len()].copy_from_slice(cmdline);
        for (w, chunk) in words.iter().zip(bytes.chunks(8)) {
            w.store(
                u64::from_le_bytes(chunk.try_into().unwrap()),
                Ordering::Relaxed,
            );
        }
        words
    }

    /// `BootInfo::read` on a page of leaked test memory.
    fn read(info: &SubjectInfo<'_>, address: u64) -> Result<BootInfo<'static>, BootInfoError> {
        // SAFETY: every page of these tests names leaked test memory that nothing
        // writes while it is read, and `read` looks only inside the page's regions.
        unsafe { BootInfo::read(info, address) }
    }

    fn info_with(boot: &[std::sync::atomic::AtomicU64]) -> SubjectInfo<'static> {
        page("unikernel", |b| {
            b.memory(
                "boot_info",
                memory(boot, MemoryKind::SubjectSolo5BootInfo, false),
            )
            .unwrap();
        })
    }

    #[test]
    fn the_record_and_command_line_are_read_where_rdi_points() {
        let boot = boot_page(b"Hello_Solo5\0", 0x2000_0000);
        let info = info_with(boot);
        let bi = read(&info, boot.as_ptr() as u64).unwrap();
        assert_eq!(bi.mem_size, 0x2000_0000);
        assert_eq!(bi.cmdline, b"Hello_Solo5");
    }

    #[test]
    fn a_wrong_rdi_or_command_line_is_an_error_not_a_fault() {
        let boot = boot_page(b"x\0", 1);
        let base = boot.as_ptr() as u64;
        let info = info_with(boot);
        assert_eq!(read(&info, 0), Err(BootInfoError::NotMapped { address: 0 }));
        assert_eq!(
            read(&info, base + 0x1000 - 16),
            Err(BootInfoError::NotMapped {
                address: base + 0x1000 - 16
            }),
            "the record must fit"
        );
        // The command line pointer outside every region.
        boot[3].store(0x10, Ordering::Relaxed);
        assert_eq!(
            read(&info, base),
            Err(BootInfoError::CmdlineNotMapped { address: 0x10 })
        );
        // A command line without NUL up to the end of its region.
        let full = shared(0x1000);
        for w in full {
            w.store(u64::from_le_bytes(*b"aaaaaaaa"), Ordering::Relaxed);
        }
        let info = page("unikernel", |b| {
            b.memory(
                "boot_info",
                memory(boot, MemoryKind::SubjectSolo5BootInfo, false),
            )
            .unwrap()
            .memory("text", memory(full, MemoryKind::SubjectBinary, false))
            .unwrap();
        });
        boot[3].store(full.as_ptr() as u64 + 0x800, Ordering::Relaxed);
        assert_eq!(
            read(&info, base),
            Err(BootInfoError::CmdlineNotTerminated {
                address: full.as_ptr() as u64 + 0x800
            })
        );
        assert!(read(&info, base)
            .unwrap_err()
            .to_string()
            .contains("no NUL"));
    }

    #[test]
    fn the_heap_runs_from_the_page_after_the_image_to_mem_size_in_writable_memory() {
        let ram = |writable| {
            page("u", |b| {
                b.memory(
                    "ram",
                    memory_at(0x20_d000, 0x200_0000, MemoryKind::Subject, writable),
                )
                .unwrap();
            })
        };
        let info = ram(true);
        assert_eq!(
            Heap::new(&info, 0x20_c123, 0x220_d000),
            Ok(Heap {
                start: 0x20_d000,
                size: 0x200_0000
            })
        );
        assert_eq!(
            Heap::new(&info, 0x20_d000, 0x20_d000 + HEAP_MIN),
            Ok(Heap {
                start: 0x20_d000,
                size: HEAP_MIN
            }),
            "512 KiB is enough"
        );
        assert_eq!(
            Heap::new(&info, 0x20_d000, 0x20_d000 + HEAP_MIN - 1),
            Err(HeapError::NotEnoughMemory {
                start: 0x20_d000,
                mem_size: 0x20_d000 + HEAP_MIN - 1
            })
        );
        assert_eq!(
            Heap::new(&info, 0x20_d000, 0),
            Err(HeapError::NotEnoughMemory {
                start: 0x20_d000,
                mem_size: 0
            })
        );
        assert!(
            matches!(
                Heap::new(&info, 0x20_d000, 0x220_e000),
                Err(HeapError::NotMapped { .. })
            ),
            "mem_size beyond ram"
        );
        assert!(
            matches!(
                Heap::new(&info, 0x10_0000, 0x220_d000),
                Err(HeapError::NotMapped { .. })
            ),
            "image end before ram"
        );
        assert!(matches!(
            Heap::new(&ram(false), 0x20_d000, 0x220_d000),
            Err(HeapError::NotMapped { .. })
        ));
        assert!(Heap::new(&info, u64::MAX - 5, u64::MAX)
            .unwrap_err()
            .to_string()
            .contains("Not enough memory"));
    }
}
