//! The emulated physical memory: one shared memory file holding every physical region
//! of a run, in place of Muen's physical memory.
//!
//! A run's regions are [`Backing`]s: for one subject run from its specification, one
//! per mapping of its view (the testbed plays the toolchain's allocator); for subjects
//! of a system policy, the policy's physical regions they map, each once, so that two
//! subjects mapping the same channel map the same bytes. [`Memory::with_regions`]
//! creates a `memfd`, places every region at a page-aligned offset ([`Layout`]),
//! writes their initial content, seals the file's size and maps all of it into the
//! testbed.
//!
//! * Hosted mode: the memory map (`muen_testbed_abi::hosted`) of the subject being
//!   started is at offset 0 ([`Memory::write_map`]); the subject maps its regions from
//!   the file at their virtual addresses, so a channel is the same bytes for the
//!   subject, the testbed's peer and any other subject mapping it, as on Muen.
//! * QEMU mode: the file is the part of each guest's RAM that holds the regions
//!   ([`GuestMemory`]: a private part below with the memory map and the boot stage, a
//!   private page table pool above).
//!
//! The subjects may write any byte of the file at any time, so this module never hands
//! out a plain Rust reference to it: peers get [`muen_channel`] regions (atomic
//! accesses and race-free copies), the kernel gets [`AtomicU64`] words, and the block
//! server gets checked raw ranges for `pread`/`pwrite`.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use muen_abi::layout::PAGE_SIZE;
use muen_testbed_abi::hosted::{
    MemMapEntry, MemMapHeader, ENTRY_EXECUTABLE, ENTRY_WRITABLE, MEMMAP_MAGIC, MEMMAP_MAX_ENTRIES,
    MEMMAP_SIZE, MEMMAP_VERSION,
};
use muen_testbed_abi::qemu::{BOOT_AREA, RAM_LIMIT};
use zerocopy::IntoBytes;

use muen_spec::{Content, SubjectView};

/// What the memory file holds at one place: a physical region's size and initial
/// content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backing {
    /// Size in bytes (a multiple of the page size).
    pub size: u64,
    /// Initial content: a fill pattern is written, everything else starts zeroed (file
    /// content, the sinfo page and the image, is written by the run).
    pub content: Content,
    /// A virtual address a subject maps it at, modulo 2 MiB ([`Backing::phase_of`]):
    /// QEMU mode places a region of at least 2 MiB at an offset congruent to it, so
    /// that the boot stage maps its 2 MiB-aligned part with large pages.
    pub phase: u64,
}

impl Backing {
    /// One backing per mapping of `view`, in order (a subject run on its own: each
    /// mapping is its own physical region).
    pub fn of_view(view: &SubjectView) -> Vec<Backing> {
        view.mappings
            .iter()
            .map(|m| Backing {
                size: m.region.size,
                content: m.content.clone(),
                phase: Backing::phase_of(m.region.address),
            })
            .collect()
    }

    /// The [`phase`](Backing::phase) of a region mapped at `address`.
    pub fn phase_of(address: muen_abi::VirtAddr) -> u64 {
        address.as_u64() % muen_qemu_boot::paging::LARGE_PAGE_SIZE
    }
}

/// Where a region lies in the memory file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Offset in the file (page-aligned).
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

/// How the regions lie in the memory file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Hosted mode: one after another after the memory map.
    Hosted,
    /// QEMU mode: one after another from offset 0, a region of at least 2 MiB at an
    /// offset congruent to its [`phase`](Backing::phase) modulo 2 MiB (so that the
    /// boot stage can map its aligned part with large pages: a Solo5 unikernel's RAM
    /// starts right after its image, e.g. at 0x20d000, and in 4 KiB pages its 512 MiB
    /// would need 131 072 page table entries, which a hypervisor that emulates the boot
    /// stage writes slowly).
    Guest,
}

/// Places `regions` with `layout`. Returns the placements (in order) and the file size,
/// or `None` if the sizes overflow.
pub fn place(regions: &[Backing], layout: Layout) -> Option<(Vec<Placement>, u64)> {
    const LARGE: u64 = muen_qemu_boot::paging::LARGE_PAGE_SIZE;
    let mut offset = match layout {
        Layout::Hosted => MEMMAP_SIZE,
        Layout::Guest => 0,
    };
    let mut placements = Vec::with_capacity(regions.len());
    for r in regions {
        if layout == Layout::Guest && r.size >= LARGE {
            // The first offset from here with offset ≡ phase (mod 2 MiB); the guest's
            // RAM holds the file at a 2 MiB-aligned guest physical address.
            let gap = (r.phase % LARGE + LARGE - offset % LARGE) % LARGE;
            offset = offset.checked_add(gap)?;
        }
        placements.push(Placement {
            offset,
            size: r.size,
        });
        offset = offset
            .checked_add(r.size)?
            .checked_next_multiple_of(PAGE_SIZE)?;
    }
    Some((placements, offset))
}

/// The memory map for `view`: the header (RIP and RSP, 0 where the specification sets
/// none) and one entry per mapping, at `offsets[i]` (file offsets in hosted mode, guest
/// physical addresses in QEMU mode).
pub fn memory_map(view: &SubjectView, offsets: &[u64]) -> Vec<u8> {
    let register = |r: Option<muen_abi::VirtAddr>| r.map_or(0, muen_abi::VirtAddr::as_u64);
    let header = MemMapHeader {
        magic: MEMMAP_MAGIC.into(),
        version: MEMMAP_VERSION.into(),
        count: u32::try_from(view.mappings.len())
            .unwrap_or(u32::MAX)
            .into(),
        rip: register(view.registers.rip).into(),
        rsp: register(view.registers.rsp).into(),
    };
    let mut bytes = header.as_bytes().to_vec();
    for (r, &offset) in view.mappings.iter().zip(offsets) {
        let mut flags = 0;
        if r.writable {
            flags |= ENTRY_WRITABLE;
        }
        if r.executable {
            flags |= ENTRY_EXECUTABLE;
        }
        let entry = MemMapEntry {
            address: r.region.address.as_u64().into(),
            offset: offset.into(),
            size: r.region.size.into(),
            flags: flags.into(),
        };
        bytes.extend_from_slice(entry.as_bytes());
    }
    bytes
}

/// A new memfd of `size` bytes, its size sealed.
fn sealed_memfd(name: &std::ffi::CStr, size: u64) -> io::Result<File> {
    // SAFETY: `name` is a NUL-terminated string; the call has no other pointers.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    let fd = crate::os::cvt(fd)?;
    // SAFETY: `memfd_create` just returned `fd`; nothing else owns it.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.set_len(size)?;
    // Subjects get the descriptor read-write; sealing the size keeps them from
    // shrinking the file under the testbed's mapping (which would raise SIGBUS here).
    // SAFETY: plain fcntl on a descriptor we own.
    crate::os::cvt(unsafe {
        libc::fcntl(
            file.as_raw_fd(),
            libc::F_ADD_SEALS,
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
        )
    })?;
    Ok(file)
}

/// The name of a run's memory file (`/proc/PID/fd/N` shows it).
pub const MEMORY_FILE_NAME: &str = "muen-testbed-memory";

/// The memory file and the testbed's mapping of all of it.
#[derive(Debug)]
pub struct Memory {
    file: File,
    base: NonNull<u8>,
    len: usize,
    layout: Layout,
    placements: Vec<Placement>,
}

// SAFETY: `base` points to a shared mapping that lives as long as `Memory`. All access
// through it is atomic or goes through muen-channel's race-free copies or the kernel
// (`pread`/`pwrite`), so using it from several threads is no data race in this program.
unsafe impl Send for Memory {}
// SAFETY: as for `Send`; `&Memory` offers only the accesses listed there.
unsafe impl Sync for Memory {}

impl Memory {
    /// Creates the hosted memory file for `view` on its own (each mapping its own
    /// region, in order) and writes its memory map.
    pub fn new(view: &SubjectView) -> io::Result<Memory> {
        if view.mappings.len() > MEMMAP_MAX_ENTRIES {
            return Err(io::Error::other(format!(
                "{} regions do not fit the memory map (at most {MEMMAP_MAX_ENTRIES})",
                view.mappings.len()
            )));
        }
        let memory = Memory::with_regions(&Backing::of_view(view), Layout::Hosted)?;
        let offsets: Vec<u64> = memory.placements.iter().map(|p| p.offset).collect();
        memory.write_map(&memory_map(view, &offsets))?;
        Ok(memory)
    }

    /// Creates and fills the memory file for `regions` with `layout`.
    pub fn with_regions(regions: &[Backing], layout: Layout) -> io::Result<Memory> {
        let (placements, size) = place(regions, layout)
            .ok_or_else(|| io::Error::other("the regions' sizes overflow"))?;
        let memory = Memory::blank(size, layout, placements)?;
        for (r, p) in regions.iter().zip(&memory.placements) {
            if let Content::Fill(byte) = r.content {
                if byte != 0 {
                    fill(&memory.file, p, byte)?;
                }
            }
        }
        Ok(memory)
    }

    /// A zeroed, mapped memory file of `size` bytes with `placements`.
    fn blank(size: u64, layout: Layout, placements: Vec<Placement>) -> io::Result<Memory> {
        let len = usize::try_from(size).map_err(io::Error::other)?;
        let file = sealed_memfd(c"muen-testbed-memory", size)?;
        // SAFETY: maps `len` bytes of a file of exactly that size (sealed), shared and
        // read-write, at an address the kernel chooses; the result is checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len.max(1),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(base.cast::<u8>()).ok_or_else(|| io::Error::other("mmap"))?;
        Ok(Memory {
            file,
            base,
            len,
            layout,
            placements,
        })
    }

    /// Writes the memory map `map` at offset 0 (hosted layout only): the map of the
    /// subject about to start, which reads it before anything else and never again.
    pub fn write_map(&self, map: &[u8]) -> io::Result<()> {
        if self.layout != Layout::Hosted || map.len() as u64 > MEMMAP_SIZE {
            return Err(io::Error::other(
                "a memory map belongs at the start of a hosted memory file and fits MEMMAP_SIZE",
            ));
        }
        let mut page = vec![0u8; MEMMAP_SIZE as usize];
        page[..map.len()].copy_from_slice(map);
        self.file.write_all_at(&page, 0)
    }

    /// Writes `bytes` at file offset `offset` (QEMU mode: the boot stage and its
    /// configuration in a guest's private memory, before the guest starts; the image's
    /// stubs).
    pub fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let end = offset.checked_add(bytes.len() as u64);
        if end.is_none_or(|end| end > self.len as u64) {
            return Err(io::Error::other(format!(
                "{:#x} bytes at {offset:#x} exceed the memory file",
                bytes.len()
            )));
        }
        self.file.write_all_at(bytes, offset)
    }

    /// Reads `len` bytes at file offset `offset` (the testbed's own view, e.g. to check
    /// bytes before it patches them).
    pub fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut bytes = vec![0; len];
        self.file.read_exact_at(&mut bytes, offset)?;
        Ok(bytes)
    }

    /// The aligned 64-bit word at file offset `offset`.
    ///
    /// # Panics
    ///
    /// If `offset` is not 8-byte aligned or the word is not inside the file (offsets come
    /// from `muen_testbed_abi::qemu`'s layout, not from the guest).
    pub fn word_at(&self, offset: u64) -> &AtomicU64 {
        assert!(offset % 8 == 0, "unaligned word");
        let at = usize::try_from(offset).expect("word outside the file");
        assert!(at + 8 <= self.len, "word outside the file");
        // SAFETY: `at` is 8-byte aligned and the word lies inside the mapping, which
        // lives as long as `&self`; this program accesses shared memory only
        // atomically.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(at).cast::<u64>()) }
    }

    /// The memory file, to hand to a subject (or to QEMU).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Size of the memory file.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where region `index` lies in the file.
    pub fn placement(&self, index: usize) -> Placement {
        self.placements[index]
    }

    /// Writes `bytes` at `offset` of region `index` (for initial contents such as the
    /// sinfo page, before the subject starts).
    pub fn write_initial(&self, index: usize, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let p = self.placements[index];
        let end = offset.checked_add(bytes.len() as u64);
        if end.is_none_or(|end| end > p.size) {
            return Err(io::Error::other("initial content exceeds its region"));
        }
        self.file.write_all_at(bytes, p.offset + offset)
    }

    /// Fills region `index` with `byte` (an image's zero-filled parts, loaded again
    /// when a guest starts again).
    pub fn fill(&self, index: usize, byte: u8) -> io::Result<()> {
        fill(&self.file, &self.placements[index], byte)
    }

    /// A pointer to byte `offset` of region `index` and the number of bytes from there
    /// to the region's end; `None` if `offset` is outside the region.
    pub fn range(&self, index: usize, offset: u64) -> Option<(*mut u8, u64)> {
        let p = self.placements.get(index)?;
        let rest = p.size.checked_sub(offset)?;
        // In bounds: `p.offset + p.size <= len` by construction.
        let at = usize::try_from(p.offset + offset).ok()?;
        // SAFETY: `at` is inside the mapping (see above).
        Some((unsafe { self.base.as_ptr().add(at) }, rest))
    }

    /// Region `index` as a channel the testbed reads.
    pub fn channel(
        &self,
        index: usize,
    ) -> Result<muen_channel::Region<'_>, muen_channel::RegionError> {
        let (ptr, len) = self
            .range(index, 0)
            .ok_or(muen_channel::RegionError::Null)?;
        // SAFETY: the range is inside the shared mapping, which lives as long as `self`;
        // this program accesses it only atomically (module documentation), and the
        // subject writing it concurrently is what a channel region expects.
        unsafe { muen_channel::Region::new(ptr, len as usize) }
    }

    /// Region `index` as a channel the testbed writes.
    pub fn channel_mut(
        &self,
        index: usize,
    ) -> Result<muen_channel::RegionMut<'_>, muen_channel::RegionError> {
        let (ptr, len) = self
            .range(index, 0)
            .ok_or(muen_channel::RegionError::Null)?;
        // SAFETY: as in `channel`; the mapping is writable.
        unsafe { muen_channel::RegionMut::new(ptr, len as usize) }
    }

    /// The aligned 64-bit word at `offset` of region `index`.
    ///
    /// # Panics
    ///
    /// If `offset` is not 8-byte aligned or the word is not inside the region (a bug in
    /// the caller: offsets come from the record layouts, not from the subject).
    pub fn word(&self, index: usize, offset: u64) -> &AtomicU64 {
        assert!(offset % 8 == 0, "unaligned word");
        let (ptr, rest) = self.range(index, offset).expect("word outside its region");
        assert!(rest >= 8, "word outside its region");
        // SAFETY: `ptr` is 8-byte aligned (page-aligned region + aligned offset), inside
        // the mapping for the lifetime of `&self`, and this program accesses the shared
        // memory only atomically.
        unsafe { AtomicU64::from_ptr(ptr.cast::<u64>()) }
    }
}

/// The guest physical size of a guest's private low memory: the memory map, the boot
/// configuration and the boot stage (`muen_testbed_abi::qemu`), rounded up to 2 MiB so
/// that the regions above it keep their large-page alignment.
pub const GUEST_LOW_SIZE: u64 = 0x20_0000;

const _: () = assert!(BOOT_AREA.end <= GUEST_LOW_SIZE);

/// One QEMU guest's RAM, three parts in guest physical order (QEMU joins them as three
/// NUMA nodes of one machine, `crate::qemu::machine`):
///
/// 1. its own low memory ([`GUEST_LOW_SIZE`]): the memory map at 0 (entries' offsets
///    are guest physical addresses), the boot configuration and the boot stage;
/// 2. the run's [`Memory`] (every region of the run, shared with the other guests;
///    the guest's page tables map only its own regions, as on Muen);
/// 3. its own page table pool, as large as the boot stage may need for its map.
#[derive(Debug)]
pub struct GuestMemory {
    /// The low memory, mapped by the testbed (it writes the boot stage there and waits
    /// on the boot configuration's `go` word).
    pub low: Memory,
    pool_file: File,
    /// The pool's guest physical range.
    pub pool: Range<u64>,
    /// The guest physical address of the run memory's offset 0.
    pub shared_base: u64,
    /// The guest's RAM size (the three parts).
    pub ram: u64,
}

impl GuestMemory {
    /// The guest memory for `view`, whose mappings lie at `offsets` in `shared` (of
    /// the run's memory file): writes the memory map, sizes the pool.
    pub fn new(view: &SubjectView, offsets: &[u64], shared: &Memory) -> io::Result<GuestMemory> {
        if view.mappings.len() > MEMMAP_MAX_ENTRIES {
            return Err(io::Error::other(format!(
                "{} regions do not fit the memory map (at most {MEMMAP_MAX_ENTRIES})",
                view.mappings.len()
            )));
        }
        let shared_base = GUEST_LOW_SIZE;
        let physical: Vec<u64> = offsets.iter().map(|o| shared_base + o).collect();
        let frames = muen_qemu_boot::paging::frames_needed(
            view.mappings
                .iter()
                .zip(&physical)
                .map(|(m, &p)| (m.region.address.as_u64(), p, m.region.size)),
        );
        let overflow = || io::Error::other("the regions' sizes overflow");
        let pool_start = shared_base
            .checked_add(shared.len() as u64)
            .ok_or_else(overflow)?;
        // QEMU rounds the machine's RAM size up (to 8 KiB) but not the nodes': the pool
        // takes the rest up to a whole 2 MiB, so that the sizes agree.
        let ram = frames
            .checked_mul(PAGE_SIZE)
            .and_then(|pool| pool_start.checked_add(pool))
            .and_then(|end| end.checked_next_multiple_of(GUEST_LOW_SIZE))
            .ok_or_else(overflow)?;
        let pool_size = ram - pool_start;
        if ram > RAM_LIMIT {
            return Err(io::Error::other(format!(
                "the guest needs {} MiB of RAM; QEMU mode has at most {} MiB (below the                  PCI hole, see docs/qemu.md)",
                ram.div_ceil(1 << 20),
                RAM_LIMIT >> 20
            )));
        }
        let low = Memory::blank(GUEST_LOW_SIZE, Layout::Guest, Vec::new())?;
        low.write_at(0, &memory_map(view, &physical))?;
        let pool_file = sealed_memfd(c"muen-testbed-pool", pool_size)?;
        Ok(GuestMemory {
            low,
            pool_file,
            pool: pool_start..ram,
            shared_base,
            ram,
        })
    }

    /// The pool's file, to hand to QEMU.
    pub fn pool_fd(&self) -> BorrowedFd<'_> {
        self.pool_file.as_fd()
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` created; nothing borrows it any more
        // (every accessor borrows `self`).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

fn fill(file: &File, p: &Placement, byte: u8) -> io::Result<()> {
    let chunk = vec![byte; 1 << 20];
    let mut done = 0;
    while done < p.size {
        let n = (p.size - done).min(chunk.len() as u64);
        file.write_all_at(&chunk[..n as usize], p.offset + done)?;
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy;
    use std::path::Path;
    use std::sync::atomic::Ordering;

    /// The memory file as the subject sees it: `(address, bytes)` of every entry of the map.
    fn read_back(memory: &Memory) -> io::Result<Vec<(u64, Vec<u8>)>> {
        let mut head = vec![0u8; MEMMAP_SIZE as usize];
        memory.file.read_exact_at(&mut head, 0)?;
        let map = muen_testbed_abi::hosted::MemMap::parse(&head)
            .map_err(|e| io::Error::other(format!("bad memory map: {e:?}")))?;
        let mut out = Vec::new();
        for e in map.entries() {
            let mut bytes = vec![0u8; e.size.get() as usize];
            memory.file.read_exact_at(&mut bytes, e.offset.get())?;
            out.push((e.address.get(), bytes));
        }
        Ok(out)
    }

    fn echo() -> SubjectView {
        policy::parse(
            include_str!("../../policy-gen/tests/snapshots/2026-04/echo.xml"),
            Path::new("echo.xml"),
            policy::Image::Skip,
        )
        .unwrap()
        .view
    }

    #[test]
    fn regions_follow_the_map_without_overlap() {
        let w = echo();
        let (p, size) = place(&Backing::of_view(&w), Layout::Hosted).unwrap();
        assert_eq!(p[0].offset, MEMMAP_SIZE);
        for (a, b) in p.iter().zip(&p[1..]) {
            assert!(a.offset + a.size <= b.offset);
            assert_eq!(b.offset % PAGE_SIZE, 0);
        }
        let last = p.last().unwrap();
        assert_eq!(size, last.offset + last.size);
        let offsets: Vec<u64> = p.iter().map(|p| p.offset).collect();
        let map = memory_map(&w, &offsets);
        let parsed = muen_testbed_abi::hosted::MemMap::parse(&map).unwrap();
        assert_eq!(parsed.entries().len(), w.mappings.len());
        assert_eq!(parsed.header().rip.get(), 0x20_0000);
        assert_eq!(parsed.header().rsp.get(), 0x43ff_fff8);
        for (e, r) in parsed.entries().iter().zip(&w.mappings) {
            assert_eq!(e.address.get(), r.region.address.as_u64());
            assert_eq!(e.size.get(), r.region.size);
            assert_eq!(e.flags.get() & ENTRY_WRITABLE != 0, r.writable);
        }
    }

    #[test]
    fn large_regions_lie_congruent_to_their_address_for_large_pages() {
        const LARGE: u64 = muen_qemu_boot::paging::LARGE_PAGE_SIZE;
        let mut w = echo();
        // RAM right after an image, as Solo5's: not 2 MiB-aligned.
        let ram = w.mapping_index("ram").unwrap();
        w.mappings[ram].region.address = muen_abi::VirtAddr::new(0x20_d000);
        w.mappings[ram].region.size = 0x2000_0000;
        let (p, _) = place(&Backing::of_view(&w), Layout::Guest).unwrap();
        for (m, p) in w.mappings.iter().zip(&p) {
            if m.region.size >= LARGE {
                let address = m.region.address.as_u64();
                assert_eq!(p.offset % LARGE, address % LARGE, "{}", m.name);
            }
        }
        for (a, b) in p.iter().zip(&p[1..]) {
            assert!(a.offset + a.size <= b.offset);
        }
        // Guest physical = GUEST_LOW_SIZE + offset: 4 KiB pages up to 0x40_0000, then
        // 2 MiB ones, so a few tables instead of 256.
        let physical = GUEST_LOW_SIZE + p[ram].offset;
        let frames = muen_qemu_boot::paging::frames_needed([(0x20_d000, physical, 0x2000_0000)]);
        assert!(frames < 8, "{frames} frames");
    }

    #[test]
    fn the_file_holds_map_content_and_words() {
        let mut w = echo();
        let ram = w.mapping_index("ram").unwrap();
        w.mappings[ram].content = Content::Fill(0x5a);
        let m = Memory::new(&w).unwrap();
        let sinfo = w.mapping_index("sinfo").unwrap();
        m.write_initial(sinfo, 8, b"hello").unwrap();
        assert!(m.write_initial(sinfo, 0x8000 - 2, b"abc").is_err());
        let timed = w.mapping_index("timed_event").unwrap();
        m.word(timed, 8).store(0x1234, Ordering::Relaxed);
        let seen = read_back(&m).unwrap();
        let by_addr = |a: u64| &seen.iter().find(|(addr, _)| *addr == a).unwrap().1;
        assert!(by_addr(0x4000_0000).iter().all(|b| *b == 0x5a));
        assert_eq!(&by_addr(0xe_0000_0000)[8..13], b"hello");
        assert_eq!(by_addr(0xe_0001_0000)[8..10], [0x34, 0x12]);
        assert!(m.range(timed, 0x1000).is_some_and(|(_, rest)| rest == 0));
        assert!(m.range(timed, 0x1001).is_none());
        // The size is sealed: nobody can shrink the file under the mapping.
        // SAFETY: plain ftruncate on a descriptor the memory owns.
        let rc = unsafe { libc::ftruncate(m.fd().as_raw_fd(), 0) };
        assert_eq!(rc, -1);
    }
}
