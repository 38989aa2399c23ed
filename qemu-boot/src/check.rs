//! Checks of what the testbed hands the boot stage (the boot configuration and the
//! memory map), and the plan they yield.
//!
//! The testbed builds both correctly; the boot stage still checks everything it relies
//! on, so that a testbed bug ends in a clear message on the doorbell rather than in a
//! page table that maps the wrong memory.

use core::fmt;
use core::ops::Range;

use muen_testbed_abi::hosted::{MemMap, MemMapError, ENTRY_EXECUTABLE};
use muen_testbed_abi::qemu::{
    BootConfig, BOOT_AREA, BOOT_CONFIG_MAGIC, BOOT_CONFIG_VERSION, CR4_OSXMMEXCPT, RAM_LIMIT,
    REGIONS_BASE,
};

use crate::paging::{frames_needed, PAGE_SIZE};
use crate::HANDOVER_STUB_MAX;

/// The periodic tick (8254 PIT channel 0 through IRQ 0 of the 8259 PIC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    /// The PIC's vector base: IRQ 0 arrives as this vector.
    pub vector: u8,
    /// The PIT divisor.
    pub divisor: u16,
}

/// What the boot stage does, once everything is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The subject's entry point.
    pub rip: u64,
    /// The subject's initial stack pointer.
    pub rsp: u64,
    /// The subject's initial RDI.
    pub rdi: u64,
    /// CR4 bits to set beyond the native profile's.
    pub cr4_extra: u64,
    /// The periodic tick, if any.
    pub tick: Option<Tick>,
    /// Frames for the subject's page tables.
    pub pool: Range<u64>,
}

/// Why the boot stage cannot start the subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootError {
    /// The boot configuration is not what this boot stage understands.
    Config(&'static str),
    /// The memory map is invalid.
    Map(MemMapError),
    /// Entry `index` of the map lies outside the memory the regions may use.
    Placement {
        /// Entry index.
        index: usize,
    },
    /// Entries `first` and `second` share physical memory.
    PhysicalOverlap {
        /// The first entry.
        first: usize,
        /// The second entry.
        second: usize,
    },
    /// The page table pool holds fewer frames than the map may need.
    PoolTooSmall {
        /// Frames in the pool.
        frames: u64,
        /// Frames the map may need.
        needed: u64,
    },
    /// RIP does not lie in an executable region.
    EntryPoint {
        /// The entry point.
        rip: u64,
    },
    /// The bytes just below RIP fall into the boot stage's own area, where the handover
    /// code cannot be placed.
    EntryInBootArea {
        /// The entry point.
        rip: u64,
    },
    /// Building the page tables failed.
    Paging(crate::paging::MapError),
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BootError::Config(problem) => write!(f, "boot configuration: {problem}"),
            BootError::Map(e) => write!(f, "memory map: {e:?}"),
            BootError::Placement { index } => write!(
                f,
                "memory map entry {index}: outside guest RAM from {REGIONS_BASE:#x} to the page \
                 table pool"
            ),
            BootError::PhysicalOverlap { first, second } => write!(
                f,
                "memory map entries {first} and {second} share guest physical memory"
            ),
            BootError::PoolTooSmall { frames, needed } => write!(
                f,
                "page table pool: {frames} frames, the map may need {needed}"
            ),
            BootError::EntryPoint { rip } => {
                write!(f, "entry point {rip:#x} is not in an executable region")
            }
            BootError::EntryInBootArea { rip } => write!(
                f,
                "entry point {rip:#x}: the handover code below it would overlap the boot stage"
            ),
            BootError::Paging(e) => write!(f, "page tables: {e}"),
        }
    }
}

/// Checks `config` and `map` and returns the plan.
pub fn check(config: &BootConfig, map: &MemMap<'_>) -> Result<Plan, BootError> {
    if config.magic.get() != BOOT_CONFIG_MAGIC {
        return Err(BootError::Config("bad magic"));
    }
    if config.version.get() != BOOT_CONFIG_VERSION {
        return Err(BootError::Config("unsupported version"));
    }
    let pool = config.pool_start.get()..config.pool_end.get();
    if pool.start % PAGE_SIZE != 0
        || pool.end % PAGE_SIZE != 0
        || pool.start < REGIONS_BASE
        || pool.start > pool.end
        || pool.end > RAM_LIMIT
    {
        return Err(BootError::Config(
            "the page table pool must be page-aligned RAM above the legacy hole",
        ));
    }
    if config.cr4_extra.get() & !CR4_OSXMMEXCPT != 0 {
        return Err(BootError::Config(
            "CR4 bits other than OSXMMEXCPT asked for",
        ));
    }
    let tick = match (config.tick_divisor.get(), config.tick_vector.get()) {
        (0, _) => None,
        (divisor, vector) => {
            let vector = u8::try_from(vector)
                .ok()
                .filter(|v| v % 8 == 0 && *v >= 32)
                .ok_or(BootError::Config(
                    "the tick vector must be a multiple of 8 from 32 to 248",
                ))?;
            Some(Tick { vector, divisor })
        }
    };
    let entries = map.entries();
    for (index, e) in entries.iter().enumerate() {
        let (offset, size) = (e.offset.get(), e.size.get());
        // `MemMap::parse` checked that `offset + size` does not overflow.
        if offset < REGIONS_BASE || offset + size > pool.start {
            return Err(BootError::Placement { index });
        }
    }
    for (second, b) in entries.iter().enumerate() {
        for (first, a) in entries[..second].iter().enumerate() {
            let (a0, b0) = (a.offset.get(), b.offset.get());
            if a0 < b0 + b.size.get() && b0 < a0 + a.size.get() {
                return Err(BootError::PhysicalOverlap { first, second });
            }
        }
    }
    let frames = (pool.end - pool.start) / PAGE_SIZE;
    let needed = frames_needed(
        entries
            .iter()
            .map(|e| (e.address.get(), e.offset.get(), e.size.get())),
    );
    if needed > frames {
        return Err(BootError::PoolTooSmall { frames, needed });
    }
    let header = map.header();
    let rip = header.rip.get();
    let executable = entries.iter().any(|e| {
        let start = e.address.get();
        e.flags.get() & ENTRY_EXECUTABLE != 0 && start <= rip && rip - start < e.size.get()
    });
    if !executable {
        return Err(BootError::EntryPoint { rip });
    }
    let below = rip
        .checked_sub(HANDOVER_STUB_MAX)
        .ok_or(BootError::EntryInBootArea { rip })?;
    if below < BOOT_AREA.end && BOOT_AREA.start < rip.next_multiple_of(PAGE_SIZE) {
        return Err(BootError::EntryInBootArea { rip });
    }
    Ok(Plan {
        rip,
        rsp: header.rsp.get(),
        rdi: config.rdi.get(),
        cr4_extra: config.cr4_extra.get(),
        tick,
        pool,
    })
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use muen_testbed_abi::hosted::{
        MemMapEntry, MemMapHeader, ENTRY_WRITABLE, MEMMAP_MAGIC, MEMMAP_VERSION,
    };
    use std::vec::Vec;
    use zerocopy::IntoBytes;

    fn config() -> BootConfig {
        BootConfig {
            magic: BOOT_CONFIG_MAGIC.into(),
            version: BOOT_CONFIG_VERSION.into(),
            tick_vector: 0xf8.into(),
            tick_divisor: 1193.into(),
            pool_start: 0x100_0000.into(),
            pool_end: 0x101_0000.into(),
            cr4_extra: CR4_OSXMMEXCPT.into(),
            go: 0.into(),
            rdi: 0x1000.into(),
        }
    }

    fn entry(address: u64, offset: u64, size: u64, flags: u64) -> MemMapEntry {
        MemMapEntry {
            address: address.into(),
            offset: offset.into(),
            size: size.into(),
            flags: flags.into(),
        }
    }

    fn map_bytes(rip: u64, entries: &[MemMapEntry]) -> Vec<u8> {
        let header = MemMapHeader {
            magic: MEMMAP_MAGIC.into(),
            version: MEMMAP_VERSION.into(),
            count: (entries.len() as u32).into(),
            rip: rip.into(),
            rsp: 0x43ff_fff8.into(),
        };
        let mut bytes = header.as_bytes().to_vec();
        for e in entries {
            bytes.extend_from_slice(e.as_bytes());
        }
        bytes
    }

    fn good() -> Vec<MemMapEntry> {
        std::vec![
            entry(0x20_0000, 0x10_0000, 0x5000, ENTRY_EXECUTABLE),
            entry(0x4000_0000, 0x20_0000, 0x40_0000, ENTRY_WRITABLE),
            entry(0xe_0000_0000, 0x60_0000, 0x8000, 0),
        ]
    }

    fn run(config: &BootConfig, rip: u64, entries: &[MemMapEntry]) -> Result<Plan, BootError> {
        let bytes = map_bytes(rip, entries);
        let map = MemMap::parse(&bytes).map_err(BootError::Map)?;
        check(config, &map)
    }

    #[test]
    fn a_good_world_gives_its_plan() {
        let plan = run(&config(), 0x20_0000, &good()).unwrap();
        assert_eq!(plan.rip, 0x20_0000);
        assert_eq!(plan.rsp, 0x43ff_fff8);
        assert_eq!(plan.rdi, 0x1000);
        assert_eq!(
            plan.tick,
            Some(Tick {
                vector: 0xf8,
                divisor: 1193
            })
        );
        assert_eq!(plan.pool, 0x100_0000..0x101_0000);
        let mut c = config();
        c.tick_divisor = 0.into();
        c.tick_vector = 7.into();
        assert_eq!(run(&c, 0x20_0000, &good()).unwrap().tick, None);
    }

    #[test]
    fn every_problem_is_named() {
        let mut c = config();
        c.magic = 0.into();
        assert_eq!(
            run(&c, 0x20_0000, &good()),
            Err(BootError::Config("bad magic"))
        );
        let mut c = config();
        // Version 1 had no RDI.
        c.version = 1.into();
        assert!(matches!(
            run(&c, 0x20_0000, &good()),
            Err(BootError::Config(_))
        ));
        for (start, end) in [
            (0x100_0800, 0x101_0000),
            (0x8_0000, 0x10_0000),
            (0x200_0000, 0x100_0000),
            (0x100_0000, 0x8000_1000),
        ] {
            let mut c = config();
            c.pool_start = start.into();
            c.pool_end = end.into();
            assert!(
                matches!(run(&c, 0x20_0000, &good()), Err(BootError::Config(_))),
                "{start:#x}..{end:#x}"
            );
        }
        let mut c = config();
        c.cr4_extra = (1 << 9).into();
        assert!(matches!(
            run(&c, 0x20_0000, &good()),
            Err(BootError::Config(_))
        ));
        let mut c = config();
        c.tick_vector = 20.into();
        assert!(matches!(
            run(&c, 0x20_0000, &good()),
            Err(BootError::Config(_))
        ));
        c.tick_vector = 0x1f8.into();
        assert!(matches!(
            run(&c, 0x20_0000, &good()),
            Err(BootError::Config(_))
        ));

        let mut e = good();
        e[1].offset = 0x9_0000.into();
        assert_eq!(
            run(&config(), 0x20_0000, &e),
            Err(BootError::Placement { index: 1 })
        );
        let mut e = good();
        e[2].offset = 0xfff_f000.into();
        assert_eq!(
            run(&config(), 0x20_0000, &e),
            Err(BootError::Placement { index: 2 })
        );
        let mut e = good();
        e[2].offset = 0x5f_f000.into();
        assert_eq!(
            run(&config(), 0x20_0000, &e),
            Err(BootError::PhysicalOverlap {
                first: 1,
                second: 2
            })
        );
        let mut c = config();
        c.pool_end = 0x100_1000.into();
        assert_eq!(
            run(&c, 0x20_0000, &good()),
            Err(BootError::PoolTooSmall {
                frames: 1,
                needed: 9
            })
        );
        // Not executable, outside every region, in the boot stage's area.
        assert_eq!(
            run(&config(), 0x4000_0000, &good()),
            Err(BootError::EntryPoint { rip: 0x4000_0000 })
        );
        assert_eq!(
            run(&config(), 0x20_5000, &good()),
            Err(BootError::EntryPoint { rip: 0x20_5000 })
        );
        let mut e = good();
        e[0].address = 0x1_0000.into();
        assert_eq!(
            run(&config(), 0x1_2000, &e),
            Err(BootError::EntryInBootArea { rip: 0x1_2000 })
        );
        e[0].address = 0.into();
        assert_eq!(
            run(&config(), 0x10, &e),
            Err(BootError::EntryInBootArea { rip: 0x10 })
        );
        // Just above the boot area is fine.
        e[0].address = 0xa_0000.into();
        assert!(run(&config(), 0xa_0000 + HANDOVER_STUB_MAX, &e).is_ok());
        assert!(run(&config(), 0xa_0000, &e).is_err());
    }
}
