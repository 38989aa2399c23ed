//! The subject's memory: one shared memory file in place of Muen's physical memory.
//!
//! [`Memory::new`] creates a `memfd`, places every mapping of the [`SubjectView`] at a
//! page-aligned offset after the memory map (`muen_testbed_abi::hosted`), writes the map and
//! the regions' initial content, seals the file's size and maps all of it into the
//! testbed. The subject maps the same file at the regions' virtual addresses, so a
//! channel is the same bytes for the subject and for the testbed's peer, as on Muen.
//!
//! The subject may write any byte of the file at any time, so this module never hands
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
use zerocopy::IntoBytes;

use muen_spec::{Content, SubjectView};

/// Where a region lies in the memory file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Offset in the file (page-aligned, at least `MEMMAP_SIZE`).
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

/// How the regions lie in the memory file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Hosted mode: one after another after the memory map ([`place`]).
    Hosted,
    /// QEMU mode: the file is the guest's RAM ([`place_qemu`]).
    Qemu,
}

/// Places the regions one after another after the memory map. Returns the placements
/// (in mapping order) and the file size, or `None` if the sizes overflow.
pub fn place(view: &SubjectView) -> Option<(Vec<Placement>, u64)> {
    let mut offset = MEMMAP_SIZE;
    let mut placements = Vec::with_capacity(view.mappings.len());
    for m in &view.mappings {
        placements.push(Placement {
            offset,
            size: m.region.size,
        });
        offset = offset
            .checked_add(m.region.size)?
            .checked_next_multiple_of(PAGE_SIZE)?;
    }
    Some((placements, offset))
}

/// Places the regions in guest RAM (`muen_testbed_abi::qemu`): from `REGIONS_BASE` on, above the
/// boot stage and the legacy hole, a region of at least 2 MiB at an offset congruent
/// to its address modulo 2 MiB (so that the boot stage maps its 2 MiB-aligned part
/// with large pages: a Solo5 unikernel's RAM starts right after its image, e.g. at
/// 0x20d000, and in 4 KiB pages its 512 MiB would need 131 072 page table entries,
/// which a hypervisor that emulates the boot stage writes slowly); then the page table
/// pool, as large as the boot stage may need for these regions. Returns the
/// placements, the pool and the file size, or `None` if the sizes overflow.
pub fn place_qemu(view: &SubjectView) -> Option<(Vec<Placement>, Range<u64>, u64)> {
    const LARGE: u64 = muen_qemu_boot::paging::LARGE_PAGE_SIZE;
    let mut offset = muen_testbed_abi::qemu::REGIONS_BASE;
    let mut placements = Vec::with_capacity(view.mappings.len());
    for m in &view.mappings {
        let r = m.region;
        if r.size >= LARGE {
            // The first offset from here with offset ≡ address (mod 2 MiB).
            let gap = (r.address.as_u64() % LARGE + LARGE - offset % LARGE) % LARGE;
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
    let frames = muen_qemu_boot::paging::frames_needed(
        view.mappings
            .iter()
            .zip(&placements)
            .map(|(m, p)| (m.region.address.as_u64(), p.offset, p.size)),
    );
    let end = offset.checked_add(frames.checked_mul(PAGE_SIZE)?)?;
    Some((placements, offset..end, end))
}

/// The memory map for `view` at `placements`: the header (RIP and RSP, 0 where the
/// specification sets none) and one entry per mapping.
pub fn memory_map(view: &SubjectView, placements: &[Placement]) -> Vec<u8> {
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
    for (r, p) in view.mappings.iter().zip(placements) {
        let mut flags = 0;
        if r.writable {
            flags |= ENTRY_WRITABLE;
        }
        if r.executable {
            flags |= ENTRY_EXECUTABLE;
        }
        let entry = MemMapEntry {
            address: r.region.address.as_u64().into(),
            offset: p.offset.into(),
            size: p.size.into(),
            flags: flags.into(),
        };
        bytes.extend_from_slice(entry.as_bytes());
    }
    bytes
}

/// The memory file and the testbed's mapping of all of it.
#[derive(Debug)]
pub struct Memory {
    file: File,
    base: NonNull<u8>,
    len: usize,
    placements: Vec<Placement>,
    pool: Option<Range<u64>>,
}

// SAFETY: `base` points to a shared mapping that lives as long as `Memory`. All access
// through it is atomic or goes through muen-channel's race-free copies or the kernel
// (`pread`/`pwrite`), so using it from several threads is no data race in this program.
unsafe impl Send for Memory {}
// SAFETY: as for `Send`; `&Memory` offers only the accesses listed there.
unsafe impl Sync for Memory {}

impl Memory {
    /// Creates and fills the memory file for `view` in hosted mode.
    pub fn new(view: &SubjectView) -> io::Result<Memory> {
        Self::with_layout(view, Layout::Hosted)
    }

    /// Creates and fills the memory file for `view` with `layout`.
    pub fn with_layout(view: &SubjectView, layout: Layout) -> io::Result<Memory> {
        if view.mappings.len() > MEMMAP_MAX_ENTRIES {
            return Err(io::Error::other(format!(
                "{} regions do not fit the memory map (at most {MEMMAP_MAX_ENTRIES})",
                view.mappings.len()
            )));
        }
        let overflow = || io::Error::other("the regions' sizes overflow");
        let (placements, pool, size) = match layout {
            Layout::Hosted => {
                let (placements, size) = place(view).ok_or_else(overflow)?;
                (placements, None, size)
            }
            Layout::Qemu => {
                let (placements, pool, size) = place_qemu(view).ok_or_else(overflow)?;
                let limit = muen_testbed_abi::qemu::RAM_LIMIT;
                if size > limit {
                    return Err(io::Error::other(format!(
                        "the subject needs {} MiB of guest RAM; QEMU mode has at most {} MiB \
                         (below the PCI hole, see docs/qemu.md)",
                        size.div_ceil(1 << 20),
                        limit >> 20
                    )));
                }
                (placements, Some(pool), size)
            }
        };
        let len = usize::try_from(size).map_err(io::Error::other)?;
        let name = c"muen-testbed-memory";
        // SAFETY: `name` is a NUL-terminated string; the call has no other pointers.
        let fd = unsafe {
            libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        let fd = crate::os::cvt(fd)?;
        // SAFETY: `memfd_create` just returned `fd`; nothing else owns it.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.set_len(size)?;
        // The subject gets the descriptor read-write; sealing the size keeps it from
        // shrinking the file under the testbed's mapping (which would raise SIGBUS here).
        // SAFETY: plain fcntl on a descriptor we own.
        crate::os::cvt(unsafe {
            libc::fcntl(
                file.as_raw_fd(),
                libc::F_ADD_SEALS,
                libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
            )
        })?;
        file.write_all_at(&memory_map(view, &placements), 0)?;
        for (r, p) in view.mappings.iter().zip(&placements) {
            if let Content::Fill(byte) = r.content {
                if byte != 0 {
                    fill(&file, p, byte)?;
                }
            }
        }
        // SAFETY: maps `len` bytes of a file of exactly that size (sealed), shared and
        // read-write, at an address the kernel chooses; the result is checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
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
            placements,
            pool,
        })
    }

    /// The page table pool (QEMU layout only).
    pub fn pool(&self) -> Option<Range<u64>> {
        self.pool.clone()
    }

    /// Writes `bytes` at file offset `offset`, outside the regions' view (QEMU mode: the
    /// boot stage and its configuration, before the guest starts).
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

    /// The memory file, to hand to the subject.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Size of the memory file.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the file is empty (never: the memory map is always there).
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
        let (p, size) = place(&w).unwrap();
        assert_eq!(p[0].offset, MEMMAP_SIZE);
        for (a, b) in p.iter().zip(&p[1..]) {
            assert!(a.offset + a.size <= b.offset);
            assert_eq!(b.offset % PAGE_SIZE, 0);
        }
        let last = p.last().unwrap();
        assert_eq!(size, last.offset + last.size);
        let map = memory_map(&w, &p);
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
        let (p, pool, _) = place_qemu(&w).unwrap();
        for (m, p) in w.mappings.iter().zip(&p) {
            assert!(p.offset >= muen_testbed_abi::qemu::REGIONS_BASE);
            if m.region.size >= LARGE {
                assert_eq!(
                    p.offset % LARGE,
                    m.region.address.as_u64() % LARGE,
                    "{}",
                    m.name
                );
            }
        }
        for (a, b) in p.iter().zip(&p[1..]) {
            assert!(a.offset + a.size <= b.offset);
        }
        // 4 KiB pages up to 0x40_0000, then 2 MiB ones: a few tables, not 256.
        let frames =
            muen_qemu_boot::paging::frames_needed([(0x20_d000, p[ram].offset, 0x2000_0000)]);
        assert!(frames < 8, "{frames} frames");
        assert!(pool.end - pool.start < 64 * PAGE_SIZE);
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
