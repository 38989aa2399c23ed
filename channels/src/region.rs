//! Shared memory regions: the only way this crate touches channel memory.
//!
//! A [`Region`] is a base pointer and a length, valid for `'a`, whose bytes another
//! subject (or, in tests, another thread) may change at any moment. Header fields are
//! accessed as `AtomicU64` at the offsets of [`Header`]; byte ranges are copied with
//! the [`copy`] engine. No method hands out a reference to a byte of the
//! region.

use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use crate::copy;
use crate::header::{Field, Header, HEADER_SIZE};

/// Why a region was rejected by its constructor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionError {
    /// The base pointer is null.
    Null,
    /// The base address is not 8-byte aligned (header fields are `u64`s).
    Misaligned,
    /// The region is shorter than the 64-byte header.
    TooSmall,
    /// `base + len` overflows the address space or `len` exceeds `isize::MAX`.
    TooLarge,
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegionError::Null => "channel region base is null",
            RegionError::Misaligned => "channel region base is not 8-byte aligned",
            RegionError::TooSmall => "channel region is smaller than the 64-byte header",
            RegionError::TooLarge => "channel region wraps around the address space",
        })
    }
}

/// A byte range outside the region was requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfBounds {
    /// Requested start offset.
    pub offset: usize,
    /// Requested length.
    pub len: usize,
}

impl fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes at offset {:#x} exceed the channel region",
            self.len, self.offset
        )
    }
}

/// A channel region this subject may read (on Muen: mapped read-only into a reader).
///
/// `Copy`: every access is atomic, so any number of handles may coexist.
#[derive(Clone, Copy)]
pub struct Region<'a> {
    base: NonNull<u8>,
    len: usize,
    // Behaves like a shared borrow of interior-mutable bytes.
    _shared: PhantomData<&'a [AtomicU8]>,
}

// SAFETY: a `Region` is a pointer to memory that is *designed* to be accessed from
// several threads and subjects at once: every access through it is atomic (header
// fields) or a byte-wise atomic copy (`copy`), and the constructors' contracts make
// the memory valid for `'a` no matter which thread uses the handle.
unsafe impl Send for Region<'_> {}
// SAFETY: as for `Send`; `&Region` only offers the same atomic accesses.
unsafe impl Sync for Region<'_> {}

impl fmt::Debug for Region<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("base", &self.base)
            .field("len", &self.len)
            .finish()
    }
}

fn check(base: *const u8, len: usize) -> Result<NonNull<u8>, RegionError> {
    let base = NonNull::new(base.cast_mut()).ok_or(RegionError::Null)?;
    if base.as_ptr() as usize % core::mem::align_of::<u64>() != 0 {
        return Err(RegionError::Misaligned);
    }
    if len < HEADER_SIZE {
        return Err(RegionError::TooSmall);
    }
    if len > isize::MAX as usize || (base.as_ptr() as usize).checked_add(len).is_none() {
        return Err(RegionError::TooLarge);
    }
    Ok(base)
}

impl<'a> Region<'a> {
    /// A region of `len` bytes at `base`, for example a channel mapped by Muen at the
    /// address its subject info page names.
    ///
    /// Checks that `base` is non-null and 8-byte aligned (channel mappings are
    /// page-aligned), that `len` covers at least the header, and that the range does
    /// not wrap.
    ///
    /// # Safety
    ///
    /// For all of `'a`:
    /// - every byte of `base..base + len` is mapped and readable;
    /// - it is memory outside the Rust program's own objects (not a stack, static or
    ///   heap object that Rust code accesses non-atomically), and this program accesses
    ///   it only through `Region`/`RegionMut` handles or other atomic accesses;
    /// - others (another subject, a device, another thread) may modify any byte at any
    ///   time, with atomic or hardware accesses. That is expected: nothing read from
    ///   the region is trusted.
    pub unsafe fn new(base: *const u8, len: usize) -> Result<Self, RegionError> {
        Ok(Region {
            base: check(base, len)?,
            len,
            _shared: PhantomData,
        })
    }

    /// A region over a buffer of atomic words, for tests and for in-process peers
    /// (the hosted testbed): two threads can share `words`, one writing the channel and
    /// one reading it, without undefined behaviour.
    pub fn from_atomics(words: &'a [AtomicU64]) -> Result<Self, RegionError> {
        let len = core::mem::size_of_val(words);
        // SAFETY: `words` is borrowed for `'a`, so it stays mapped; it consists of
        // `UnsafeCell`s that Rust code may only access atomically, and the pointer
        // derived from it may be used to read and write all of it.
        unsafe { Region::new(words.as_ptr().cast::<u8>(), len) }
    }

    /// Length in bytes (at least 64).
    #[allow(clippy::len_without_is_empty)] // never empty: the constructors check
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Address of the first byte.
    pub const fn as_ptr(&self) -> *const u8 {
        self.base.as_ptr()
    }

    fn word(&self, field: Field) -> &AtomicU64 {
        // SAFETY: the constructors checked `len >= 64` and 8-byte alignment, and
        // `field.offset()` is a multiple of 8 below 64, so the word is inside the region
        // and aligned. An `AtomicU64` may alias memory others change concurrently, and
        // (per the `core::sync::atomic` docs) loads are allowed even on read-only
        // mappings.
        unsafe { &*self.base.as_ptr().add(field.offset()).cast::<AtomicU64>() }
    }

    /// Atomic load of a header field with the given ordering (`Relaxed`, `Acquire` or
    /// `SeqCst`; the crate never passes another).
    #[inline(always)]
    pub(crate) fn load_with(&self, field: Field, order: Ordering) -> u64 {
        u64::from_le(self.word(field).load(order))
    }

    /// Loads a header field (atomic, `Acquire`).
    pub fn load(&self, field: Field) -> u64 {
        self.load_with(field, Ordering::Acquire)
    }

    /// A snapshot of the header, each field loaded once (for diagnostics: the fields
    /// are not read as one consistent unit).
    pub fn header(&self) -> Header {
        let mut h = Header::default();
        for f in Field::ALL {
            f.set(&mut h, self.load(f));
        }
        h
    }

    fn range(&self, offset: usize, len: usize) -> Result<(), OutOfBounds> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(OutOfBounds { offset, len }),
        }
    }

    /// Copies `dst.len()` bytes starting at `offset` into `dst` (byte-wise atomic).
    pub fn read_bytes(&self, offset: usize, dst: &mut [u8]) -> Result<(), OutOfBounds> {
        self.range(offset, dst.len())?;
        // SAFETY: the range is inside the region (checked), `dst` is private memory.
        unsafe { self.load_unchecked(offset, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    /// Copies `len` bytes at `offset` into private memory at `dst`.
    ///
    /// # Safety
    ///
    /// `offset + len <= self.len()` (without overflow), and `dst..dst + len` is
    /// writable private memory.
    #[inline(always)]
    pub(crate) unsafe fn load_unchecked(&self, offset: usize, dst: *mut u8, len: usize) {
        // SAFETY: the caller keeps the range inside the region, which the constructor
        // contract makes readable and shared only through atomic accesses.
        unsafe { copy::load(self.base.as_ptr().add(offset), dst, len) }
    }

    /// [`Region::load_unchecked`] starting at either end of the range
    /// ([`copy::load_from`]).
    ///
    /// # Safety
    ///
    /// As for [`Region::load_unchecked`].
    #[inline(always)]
    pub(crate) unsafe fn load_unchecked_from(
        &self,
        offset: usize,
        dst: *mut u8,
        len: usize,
        start: copy::Start,
    ) {
        // SAFETY: as in `load_unchecked`.
        unsafe { copy::load_from(self.base.as_ptr().add(offset), dst, len, start) }
    }
}

/// A channel region this subject may write (on Muen: a writer channel, mapped
/// read-write). Dereferences to [`Region`] for the reading side.
///
/// Not `Copy`: a channel has one writer. (Nothing breaks if two handles exist; the
/// readers would see a misbehaving writer.)
#[derive(Debug)]
pub struct RegionMut<'a> {
    region: Region<'a>,
}

impl<'a> RegionMut<'a> {
    /// A writable region of `len` bytes at `base`; checks as [`Region::new`].
    ///
    /// # Safety
    ///
    /// As for [`Region::new`], and every byte is also writable for all of `'a`.
    pub unsafe fn new(base: *mut u8, len: usize) -> Result<Self, RegionError> {
        // SAFETY: forwarded contract.
        let region = unsafe { Region::new(base, len)? };
        Ok(RegionMut { region })
    }

    /// A writable region over a buffer of atomic words (see [`Region::from_atomics`]).
    pub fn from_atomics(words: &'a [AtomicU64]) -> Result<Self, RegionError> {
        Ok(RegionMut {
            region: Region::from_atomics(words)?,
        })
    }

    /// A read-only handle to the same memory.
    pub const fn as_region(&self) -> Region<'a> {
        self.region
    }

    /// Atomic store of a header field with the given ordering (`Relaxed`, `Release` or
    /// `SeqCst`; the crate never passes another).
    #[inline(always)]
    pub(crate) fn store_with(&self, field: Field, value: u64, order: Ordering) {
        self.region.word(field).store(value.to_le(), order)
    }

    /// Stores a header field (atomic, `Release`). For peers and tests that need to
    /// write a header by hand; a [`Writer`](crate::Writer) does it all itself.
    pub fn store(&self, field: Field, value: u64) {
        self.store_with(field, value, Ordering::Release)
    }

    /// Copies `src` into the region at `offset` (byte-wise atomic).
    pub fn write_bytes(&self, offset: usize, src: &[u8]) -> Result<(), OutOfBounds> {
        self.region.range(offset, src.len())?;
        // SAFETY: the range is inside the region (checked); `src` is private memory.
        unsafe { self.store_unchecked(offset, src.as_ptr(), src.len()) };
        Ok(())
    }

    /// Sets `len` bytes at `offset` to zero (byte-wise atomic).
    pub fn zero_bytes(&self, offset: usize, len: usize) -> Result<(), OutOfBounds> {
        self.region.range(offset, len)?;
        // SAFETY: the range is inside the region (checked), which the constructor
        // contract makes writable and shared only through atomic accesses.
        unsafe { copy::zero(self.region.base.as_ptr().add(offset), len) };
        Ok(())
    }

    /// Copies `len` bytes of private memory at `src` into the region at `offset`.
    ///
    /// # Safety
    ///
    /// `offset + len <= self.len()` (without overflow), and `src..src + len` is
    /// readable private memory.
    #[inline(always)]
    pub(crate) unsafe fn store_unchecked(&self, offset: usize, src: *const u8, len: usize) {
        // SAFETY: the caller keeps the range inside the region, which the constructor
        // contract makes writable and shared only through atomic accesses.
        unsafe { copy::store(src, self.region.base.as_ptr().add(offset), len) }
    }
}

impl<'a> core::ops::Deref for RegionMut<'a> {
    type Target = Region<'a>;

    fn deref(&self) -> &Region<'a> {
        &self.region
    }
}

impl core::error::Error for RegionError {}

impl core::error::Error for OutOfBounds {}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::header::TRANSPORT_MARKER;
    use std::vec::Vec;

    fn words(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn constructors_check_the_range() {
        let w = words(8);
        let base = w.as_ptr().cast::<u8>();
        // SAFETY: `w` is 64 bytes of atomics, alive for the whole test; the
        // rejected calls never touch memory.
        unsafe {
            assert_eq!(
                Region::new(core::ptr::null(), 64).unwrap_err(),
                RegionError::Null
            );
            assert_eq!(
                Region::new(base.add(4), 56).unwrap_err(),
                RegionError::Misaligned
            );
            assert_eq!(Region::new(base, 63).unwrap_err(), RegionError::TooSmall);
            assert_eq!(
                Region::new(core::ptr::without_provenance(usize::MAX & !7), 64).unwrap_err(),
                RegionError::TooLarge
            );
            assert_eq!(Region::new(base, 64).unwrap().len(), 64);
        }
        assert_eq!(
            Region::from_atomics(&w[..7]).unwrap_err(),
            RegionError::TooSmall
        );
        assert_eq!(RegionMut::from_atomics(&w).unwrap().len(), 64);
    }

    #[test]
    fn fields_and_bytes_round_trip_in_little_endian() {
        let w = words(16);
        let r = RegionMut::from_atomics(&w).unwrap();
        r.store(Field::Transport, TRANSPORT_MARKER);
        r.store(Field::Wc, 0x0102_0304_0506_0708);
        let mut b = [0u8; 8];
        r.read_bytes(0, &mut b).unwrap();
        assert_eq!(b, [0x6d, 0x9b, 0x9a, 0xb7, 0xb6, 0x12, 0x73, 0x48]);
        r.read_bytes(56, &mut b).unwrap();
        assert_eq!(b, [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(r.header().wc.get(), 0x0102_0304_0506_0708);
        r.write_bytes(100, &[1, 2, 3]).unwrap();
        let mut b3 = [0u8; 3];
        r.as_region().read_bytes(100, &mut b3).unwrap();
        assert_eq!(b3, [1, 2, 3]);
        r.zero_bytes(100, 28).unwrap();
        r.read_bytes(100, &mut b3).unwrap();
        assert_eq!(b3, [0; 3]);
        assert_eq!(
            r.read_bytes(126, &mut b3),
            Err(OutOfBounds {
                offset: 126,
                len: 3
            })
        );
        assert_eq!(
            r.write_bytes(usize::MAX, &[1]),
            Err(OutOfBounds {
                offset: usize::MAX,
                len: 1
            })
        );
        assert_eq!(
            r.zero_bytes(1, usize::MAX),
            Err(OutOfBounds {
                offset: 1,
                len: usize::MAX
            })
        );
    }
}
