//! Four-level x86-64 page tables (4 KiB and 2 MiB pages), built in memory reached
//! through [`PhysMemory`].
//!
//! The builder knows nothing about where it runs: the boot stage gives it a window onto
//! guest physical memory, the host tests a vector. Every mapping is supervisor-only
//! (native subjects run at CPL 0), writable only if asked, and non-executable unless
//! asked (the boot stage sets EFER.NXE and CR0.WP, so both rights hold at CPL 0, as on
//! Muen). Intermediate entries allow everything; the leaf decides. A 2 MiB page is used
//! wherever the virtual and the physical address are both 2 MiB-aligned and at least
//! 2 MiB remain, 4 KiB pages elsewhere.

use core::fmt;
use core::ops::Range;

/// Size of a small page.
pub const PAGE_SIZE: u64 = 0x1000;
/// Size of a large page (a page directory leaf).
pub const LARGE_PAGE_SIZE: u64 = 0x20_0000;

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const LARGE: u64 = 1 << 7;
const NO_EXECUTE: u64 = 1 << 63;
const ADDRESS: u64 = 0x000f_ffff_ffff_f000;
const ENTRIES: u64 = 512;

/// The lower canonical half ends here (48-bit virtual addresses).
const LOWER_HALF_END: u64 = 1 << 47;
/// The upper canonical half starts here.
const UPPER_HALF_START: u64 = !(LOWER_HALF_END - 1);
/// Physical addresses must stay below this (52-bit physical address width).
const PHYSICAL_END: u64 = 1 << 52;

/// 64-bit words of guest physical memory.
pub trait PhysMemory {
    /// The word at `address` (8-byte aligned).
    fn read(&self, address: u64) -> u64;
    /// Writes the word at `address` (8-byte aligned).
    fn write(&mut self, address: u64, value: u64);
}

/// What a mapping allows besides reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rights {
    /// Writes are allowed.
    pub writable: bool,
    /// Instruction fetches are allowed.
    pub executable: bool,
}

/// Page-sized frames for page tables, handed out in address order from a range.
#[derive(Clone, Debug)]
pub struct Frames {
    next: u64,
    end: u64,
    used: u64,
}

impl Frames {
    /// The frames of `range` (its ends rounded inwards to pages).
    pub const fn new(range: Range<u64>) -> Self {
        let next = range.start.div_ceil(PAGE_SIZE).saturating_mul(PAGE_SIZE);
        let end = range.end / PAGE_SIZE * PAGE_SIZE;
        Frames { next, end, used: 0 }
    }

    /// The next free frame's address.
    pub fn allocate(&mut self) -> Option<u64> {
        if self.next >= self.end {
            return None;
        }
        let frame = self.next;
        self.next += PAGE_SIZE;
        self.used += 1;
        Some(frame)
    }

    /// How many frames were handed out.
    pub const fn used(&self) -> u64 {
        self.used
    }
}

/// Why a mapping could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// An address or the size is not a multiple of [`PAGE_SIZE`], or the size is 0.
    Unaligned {
        /// The virtual address asked for.
        virt: u64,
    },
    /// Part of the virtual range is not canonical (or it wraps around).
    NonCanonical {
        /// The virtual address asked for.
        virt: u64,
    },
    /// The physical range ends above the 52-bit physical address width.
    PhysicalRange {
        /// The physical address asked for.
        phys: u64,
    },
    /// This virtual address is mapped already.
    Overlap {
        /// The first address found mapped.
        virt: u64,
    },
    /// No frame is left for a page table.
    OutOfFrames,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MapError::Unaligned { virt } => {
                write!(f, "mapping at {virt:#x}: address or size not page-aligned")
            }
            MapError::NonCanonical { virt } => {
                write!(f, "mapping at {virt:#x}: not a canonical address range")
            }
            MapError::PhysicalRange { phys } => {
                write!(
                    f,
                    "physical address {phys:#x}: beyond the physical address width"
                )
            }
            MapError::Overlap { virt } => write!(f, "virtual address {virt:#x} is mapped twice"),
            MapError::OutOfFrames => f.write_str("the page table pool is exhausted"),
        }
    }
}

/// Where a virtual address leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The physical address.
    pub phys: u64,
    /// The leaf's rights.
    pub rights: Rights,
    /// Whether the leaf is a 2 MiB page.
    pub large: bool,
}

/// Checks a mapping request: aligned, non-empty, canonical, within the physical width.
fn check(virt: u64, phys: u64, size: u64) -> Result<(), MapError> {
    if size == 0 || virt % PAGE_SIZE != 0 || phys % PAGE_SIZE != 0 || size % PAGE_SIZE != 0 {
        return Err(MapError::Unaligned { virt });
    }
    let last = virt
        .checked_add(size - 1)
        .ok_or(MapError::NonCanonical { virt })?;
    let lower = last < LOWER_HALF_END;
    let upper = virt >= UPPER_HALF_START;
    if !lower && !upper {
        return Err(MapError::NonCanonical { virt });
    }
    if phys.checked_add(size).is_none_or(|end| end > PHYSICAL_END) {
        return Err(MapError::PhysicalRange { phys });
    }
    Ok(())
}

/// Whether the next chunk at `offset` of a mapping can be a large page.
fn large_fits(virt: u64, phys: u64, size: u64, offset: u64) -> bool {
    (virt + offset) % LARGE_PAGE_SIZE == 0
        && (phys + offset) % LARGE_PAGE_SIZE == 0
        && size - offset >= LARGE_PAGE_SIZE
}

/// Index of `virt` in the table of `level` (4 = PML4 ... 1 = page table).
fn index(virt: u64, level: u32) -> u64 {
    (virt >> (12 + 9 * (level - 1))) & (ENTRIES - 1)
}

/// An upper bound of the frames [`PageTables::new`] and [`PageTables::map`] need for
/// `mappings` (`(virt, phys, size)` each): tables are counted once per mapping that
/// touches them, so shared tables are counted more than once.
pub fn frames_needed(mappings: impl IntoIterator<Item = (u64, u64, u64)>) -> u64 {
    let mut frames = 1; // the PML4
    for (virt, phys, size) in mappings {
        // Distinct tables this mapping touches at each level: the windows of 512 GiB
        // (a PDPT each), 1 GiB (a PD each) and, where small pages are used, 2 MiB (a
        // page table each).
        let mut last: [Option<u64>; 3] = [None; 3];
        let mut offset = 0;
        while offset < size {
            let v = virt.wrapping_add(offset);
            let large = large_fits(virt, phys, size, offset);
            let windows = [v >> 39, v >> 30, v >> 21];
            for (level, window) in windows.into_iter().enumerate() {
                if level == 2 && large {
                    continue;
                }
                if last[level] != Some(window) {
                    last[level] = Some(window);
                    frames += 1;
                }
            }
            offset += if large { LARGE_PAGE_SIZE } else { PAGE_SIZE };
        }
    }
    frames
}

/// A tree of page tables rooted at a PML4.
#[derive(Debug)]
pub struct PageTables {
    root: u64,
}

impl PageTables {
    /// An empty tree: one zeroed PML4 from `frames`.
    pub fn new(memory: &mut impl PhysMemory, frames: &mut Frames) -> Result<Self, MapError> {
        let root = new_table(memory, frames)?;
        Ok(PageTables { root })
    }

    /// The physical address of the PML4 (the value for CR3).
    pub fn root(&self) -> u64 {
        self.root
    }

    /// Maps `size` bytes at `virt` to physical `phys` with `rights`. Fails without
    /// having changed an existing mapping if any page is mapped already (pages of this
    /// request before the conflict stay mapped).
    pub fn map(
        &mut self,
        memory: &mut impl PhysMemory,
        frames: &mut Frames,
        virt: u64,
        phys: u64,
        size: u64,
        rights: Rights,
    ) -> Result<(), MapError> {
        check(virt, phys, size)?;
        let mut leaf_flags = PRESENT;
        if rights.writable {
            leaf_flags |= WRITABLE;
        }
        if !rights.executable {
            leaf_flags |= NO_EXECUTE;
        }
        let mut offset = 0;
        while offset < size {
            let (v, p) = (virt.wrapping_add(offset), phys + offset);
            let large = large_fits(virt, phys, size, offset);
            let pdpt = self.next_table(memory, frames, self.root, v, 4)?;
            let pd = self.next_table(memory, frames, pdpt, v, 3)?;
            let (table, leaf, step) = if large {
                (pd, p | leaf_flags | LARGE, LARGE_PAGE_SIZE)
            } else {
                let pt = self.next_table(memory, frames, pd, v, 2)?;
                (pt, p | leaf_flags, PAGE_SIZE)
            };
            let slot = table + 8 * index(v, if large { 2 } else { 1 });
            if memory.read(slot) & PRESENT != 0 {
                return Err(MapError::Overlap { virt: v });
            }
            memory.write(slot, leaf);
            offset += step;
        }
        Ok(())
    }

    /// The table the entry for `virt` in `table` (of `level`) points to, created if
    /// the entry is empty.
    fn next_table(
        &self,
        memory: &mut impl PhysMemory,
        frames: &mut Frames,
        table: u64,
        virt: u64,
        level: u32,
    ) -> Result<u64, MapError> {
        let slot = table + 8 * index(virt, level);
        let entry = memory.read(slot);
        if entry & PRESENT != 0 {
            if entry & LARGE != 0 {
                return Err(MapError::Overlap {
                    virt: virt & !(LARGE_PAGE_SIZE - 1),
                });
            }
            return Ok(entry & ADDRESS);
        }
        let next = new_table(memory, frames)?;
        memory.write(slot, next | PRESENT | WRITABLE);
        Ok(next)
    }

    /// Where `virt` leads, if it is mapped.
    pub fn translate(&self, memory: &impl PhysMemory, virt: u64) -> Option<Translation> {
        let mut table = self.root;
        for level in (1..=4).rev() {
            let entry = memory.read(table + 8 * index(virt, level));
            if entry & PRESENT == 0 {
                return None;
            }
            let large = level == 2 && entry & LARGE != 0;
            if level == 1 || large {
                let page = if large { LARGE_PAGE_SIZE } else { PAGE_SIZE };
                let base = entry & ADDRESS & !(page - 1);
                return Some(Translation {
                    phys: base + (virt & (page - 1)),
                    rights: Rights {
                        writable: entry & WRITABLE != 0,
                        executable: entry & NO_EXECUTE == 0,
                    },
                    large,
                });
            }
            table = entry & ADDRESS;
        }
        None
    }
}

/// A zeroed frame from `frames`.
fn new_table(memory: &mut impl PhysMemory, frames: &mut Frames) -> Result<u64, MapError> {
    let frame = frames.allocate().ok_or(MapError::OutOfFrames)?;
    for i in 0..ENTRIES {
        memory.write(frame + 8 * i, 0);
    }
    Ok(frame)
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::vec::Vec;

    /// Sparse physical memory for tests.
    #[derive(Default)]
    pub(crate) struct Memory(pub HashMap<u64, u64>);

    impl PhysMemory for Memory {
        fn read(&self, address: u64) -> u64 {
            assert_eq!(address % 8, 0);
            self.0.get(&address).copied().unwrap_or(0)
        }
        fn write(&mut self, address: u64, value: u64) {
            assert_eq!(address % 8, 0);
            self.0.insert(address, value);
        }
    }

    const RW: Rights = Rights {
        writable: true,
        executable: false,
    };
    const RX: Rights = Rights {
        writable: false,
        executable: true,
    };

    fn tables() -> (Memory, Frames, PageTables) {
        let mut memory = Memory::default();
        let mut frames = Frames::new(0x10_0000..0x20_0000);
        let t = PageTables::new(&mut memory, &mut frames).unwrap();
        (memory, frames, t)
    }

    #[test]
    fn small_and_large_pages_translate_with_their_rights() {
        let (mut m, mut f, mut t) = tables();
        // RAM: both addresses 2 MiB-aligned, so large pages, except the 4 KiB tail.
        t.map(&mut m, &mut f, 0x4000_0000, 0x60_0000, 0x40_1000, RW)
            .unwrap();
        // An image at an address that is 4 KiB-aligned only.
        t.map(&mut m, &mut f, 0x20_0000, 0x30_1000, 0x3000, RX)
            .unwrap();
        let ram = t.translate(&m, 0x4000_0123).unwrap();
        assert_eq!((ram.phys, ram.rights, ram.large), (0x60_0123, RW, true));
        let tail = t.translate(&m, 0x4040_0fff).unwrap();
        assert_eq!((tail.phys, tail.large), (0xa0_0fff, false));
        assert!(t.translate(&m, 0x4040_1000).is_none());
        let text = t.translate(&m, 0x20_2abc).unwrap();
        assert_eq!((text.phys, text.rights, text.large), (0x30_3abc, RX, false));
        assert!(t.translate(&m, 0x1f_f000).is_none());
        // PML4, PDPT; PD and PT (its tail) for RAM; PD and PT for the image, which
        // lies in another GiB.
        assert_eq!(f.used(), 6);
        assert!(
            frames_needed([
                (0x4000_0000, 0x60_0000, 0x40_1000),
                (0x20_0000, 0x30_1000, 0x3000)
            ]) >= f.used()
        );
    }

    #[test]
    fn conflicts_and_bad_requests_are_errors() {
        let (mut m, mut f, mut t) = tables();
        t.map(&mut m, &mut f, 0x20_0000, 0x20_0000, 0x20_0000, RW)
            .unwrap();
        assert_eq!(
            t.map(&mut m, &mut f, 0x20_1000, 0x1000, 0x1000, RW),
            Err(MapError::Overlap { virt: 0x20_0000 })
        );
        t.map(&mut m, &mut f, 0x50_0000, 0x1000, 0x1000, RW)
            .unwrap();
        assert_eq!(
            t.map(&mut m, &mut f, 0x50_0000, 0x3000, 0x1000, RW),
            Err(MapError::Overlap { virt: 0x50_0000 })
        );
        assert_eq!(
            t.map(&mut m, &mut f, 0x1001, 0, 0x1000, RW),
            Err(MapError::Unaligned { virt: 0x1001 })
        );
        assert_eq!(
            t.map(&mut m, &mut f, 0x1000, 0, 0, RW),
            Err(MapError::Unaligned { virt: 0x1000 })
        );
        assert_eq!(
            t.map(&mut m, &mut f, 0x7fff_ffff_f000, 0, 0x2000, RW),
            Err(MapError::NonCanonical {
                virt: 0x7fff_ffff_f000
            })
        );
        assert_eq!(
            t.map(&mut m, &mut f, 0xffff_ffff_ffff_f000, 0, 0x2000, RW),
            Err(MapError::NonCanonical {
                virt: 0xffff_ffff_ffff_f000
            })
        );
        assert_eq!(
            t.map(&mut m, &mut f, 0x1000, 1 << 52, 0x1000, RW),
            Err(MapError::PhysicalRange { phys: 1 << 52 })
        );
        // The top page of the upper half is fine.
        t.map(&mut m, &mut f, 0xffff_ffff_ffff_f000, 0x3000, 0x1000, RX)
            .unwrap();
        assert_eq!(t.translate(&m, 0xffff_ffff_ffff_f008).unwrap().phys, 0x3008);
        let mut none = Frames::new(0x1000..0x1000);
        assert_eq!(
            PageTables::new(&mut m, &mut none).unwrap_err(),
            MapError::OutOfFrames
        );
        let mut one = Frames::new(0x10_0000..0x10_1000);
        let mut t2 = PageTables::new(&mut m, &mut one).unwrap();
        assert_eq!(
            t2.map(&mut m, &mut one, 0, 0, 0x1000, RW),
            Err(MapError::OutOfFrames)
        );
    }

    #[test]
    fn frames_are_page_aligned_and_bounded() {
        let mut f = Frames::new(0x1234..0x4000);
        assert_eq!(f.allocate(), Some(0x2000));
        assert_eq!(f.allocate(), Some(0x3000));
        assert_eq!(f.allocate(), None);
        assert_eq!(f.used(), 2);
    }

    /// Up to 8 page-aligned regions: (virtual page, physical page, pages, rights).
    fn regions() -> impl Strategy<Value = Vec<(u64, u64, u64, bool, bool)>> {
        proptest::collection::vec(
            (
                0u64..(1 << 26),
                0u64..(1 << 16),
                1u64..1500,
                any::<bool>(),
                any::<bool>(),
            ),
            1..8,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every page of every mapped region translates to its physical page with its
        /// rights; the frame estimate is an upper bound of what was used.
        #[test]
        fn every_page_translates(raw in regions()) {
            let (mut m, mut f, mut t) = tables();
            let mut f_big = Frames::new(0x1_0000_0000..0x2_0000_0000);
            core::mem::swap(&mut f, &mut f_big);
            let mut done: Vec<(u64, u64, u64, Rights)> = Vec::new();
            let mut attempted: Vec<(u64, u64, u64)> = Vec::new();
            for (vpage, ppage, pages, writable, executable) in raw {
                // Scale some regions to exercise large pages: aligned pairs.
                let (virt, phys) = if vpage % 3 == 0 {
                    ((vpage << 21) & 0x7fff_ffe0_0000, (ppage << 21) & 0xff_ffe0_0000)
                } else {
                    (vpage << 12, ppage << 12)
                };
                let size = pages << 12;
                let rights = Rights { writable, executable };
                let clash = done.iter().any(|&(v, _, s, _)| virt < v + s && v < virt + size);
                attempted.push((virt, phys, size));
                let result = t.map(&mut m, &mut f, virt, phys, size, rights);
                if clash {
                    prop_assert!(matches!(result, Err(MapError::Overlap { .. })), "{result:?}");
                    // A failed request may leave a prefix mapped; stop here.
                    break;
                }
                prop_assert_eq!(result, Ok(()));
                done.push((virt, phys, size, rights));
            }
            for &(virt, phys, size, rights) in &done {
                for page in (0..size).step_by(PAGE_SIZE as usize) {
                    let tr = t.translate(&m, virt + page + 8);
                    prop_assert_eq!(tr.map(|t| (t.phys, t.rights)), Some((phys + page + 8, rights)));
                }
            }
            let bound = frames_needed(attempted.iter().copied());
            prop_assert!(bound >= f.used(), "bound {} < used {}", bound, f.used());
        }
    }
}
