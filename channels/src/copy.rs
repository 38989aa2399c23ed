//! The element copy engine: moves bytes between private memory and memory a peer may
//! be writing at the same time.
//!
//! An element slot can be overwritten by the writer while a reader copies it. That is
//! expected (the seqlock check after the copy throws such a copy away), but the copy
//! itself must not be a data race in Rust's memory model, so it is done with accesses
//! that count as atomic: each byte is read or written by an access that is
//! single-copy atomic, with relaxed ordering, exactly the "byte-wise atomic memcpy" of
//! C++ proposal P1478. Ordering against the counters comes from fences the callers
//! place around the copy (`docs/channels.md`, "Memory ordering").
//!
//! Two implementations, chosen at compile time:
//!
//! - **x86-64 (not under Miri)**, copies longer than 64 bytes: one `rep movsb`
//!   (`rep stosb` to clear); shorter copies use the portable loop below. Every byte
//!   the instruction moves is an aligned byte access, which x86 performs atomically;
//!   the asm block is opaque to the compiler, so it behaves like the sequence of
//!   relaxed atomic byte accesses it performs (it may perform them in any order, which
//!   relaxed accesses to different bytes allow anyway). On write-back memory x86 does
//!   not reorder loads with other loads, and only the stores *within* one string
//!   instruction may become visible out of order, never with stores before or after
//!   it (Intel SDM vol. 3, memory ordering of fast-string operations). So the fences
//!   around the copy are compiler barriers only, as in the C implementations (the
//!   Linux kernel's x86 seqlock readers rely on the same: `smp_rmb()` is a compiler
//!   barrier and its `memcpy` is `rep movsb` on current CPUs). With the CPU's
//!   fast-string microcode this is about as fast as the platform `memcpy`
//!   (`cargo bench -p muen-channel` prints both).
//! - **everywhere else, and under Miri**: a loop of relaxed `AtomicU8` accesses up to
//!   the first 8-byte aligned address of the shared side, `AtomicU64` accesses in the
//!   middle and `AtomicU8` accesses for the tail. The granularity depends only on the
//!   shared address and the length, so writer and reader of the same slot use the
//!   same access sizes (mixing sizes on racing atomics is not defined).
//!
//! Why not the `atomic-memcpy` crate: it implements the same P1478 semantics, but only
//! for a `T` known at compile time (protocols with a run-time element size need a
//! length), and for 1516-byte elements (`[u8; 1516]`, alignment 1) it reaches about a
//! fifth of `memcpy`'s throughput. A word loop of our own (`portable`) reaches about
//! half: relaxed atomics are never merged into vector moves. Only the string
//! instruction meets the goal of at least 0.8 of `memcpy` (the benchmark prints all
//! four side by side). On `x86_64-unknown-none` vector registers are disabled anyway,
//! and the platform `memcpy` there is itself a string instruction.
//!
//! All functions are `unsafe`: the caller vouches for the pointers. The safe wrappers
//! are [`Region`](crate::Region) and [`RegionMut`](crate::RegionMut).

/// Copies `len` bytes from shared memory at `src` into private memory at `dst`.
///
/// # Safety
///
/// - `src..src + len` is readable; other threads or subjects may write it concurrently,
///   but only with atomic (or, outside this program, hardware) accesses.
/// - `dst..dst + len` is writable, private (no concurrent access) and does not overlap
///   the source.
#[inline]
pub unsafe fn load(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: forwarded contract.
    unsafe { imp::load(src, dst, len) }
}

/// Copies `len` bytes from private memory at `src` into shared memory at `dst`.
///
/// # Safety
///
/// - `src..src + len` is readable private memory (no concurrent writes).
/// - `dst..dst + len` is writable; others may access it concurrently, but only with
///   atomic (or, outside this program, hardware) accesses. It does not overlap `src`.
#[inline]
pub unsafe fn store(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: forwarded contract.
    unsafe { imp::store(src, dst, len) }
}

/// Sets `len` bytes of shared memory at `dst` to zero.
///
/// # Safety
///
/// As for the destination of [`store`].
#[inline]
pub unsafe fn zero(dst: *mut u8, len: usize) {
    // SAFETY: forwarded contract.
    unsafe { imp::zero(dst, len) }
}

/// The portable engine (relaxed atomic loops). Used by [`load`], [`store`] and
/// [`zero`] on targets without the string-instruction engine, under Miri, and on
/// x86-64 for copies of up to 64 bytes; public so that the benchmark can measure
/// it on every target.
pub mod portable {
    use core::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

    const WORD: usize = core::mem::size_of::<u64>();

    /// Splits `len` bytes at shared address `shared` into (head, words, tail) lengths:
    /// bytes up to 8-byte alignment, whole 8-byte words, the remaining bytes.
    #[inline(always)]
    fn split(shared: *const u8, len: usize) -> (usize, usize, usize) {
        let head = shared.align_offset(WORD).min(len);
        let words = (len - head) / WORD;
        (head, words, len - head - words * WORD)
    }

    /// Walks `len` bytes in the access sizes `split` gives for the shared address
    /// `shared`, calling `byte(i)` or `word(i)` for each access at offset `i`.
    #[inline(always)]
    fn walk(
        shared: *const u8,
        len: usize,
        mut byte: impl FnMut(usize),
        mut word: impl FnMut(usize),
    ) {
        let (head, words, tail) = split(shared, len);
        let mut i = 0;
        for _ in 0..head {
            byte(i);
            i += 1;
        }
        for _ in 0..words {
            word(i);
            i += WORD;
        }
        for _ in 0..tail {
            byte(i);
            i += 1;
        }
    }

    /// [`load`](super::load) with relaxed atomic accesses.
    ///
    /// # Safety
    ///
    /// As for [`load`](super::load).
    pub unsafe fn load(src: *const u8, dst: *mut u8, len: usize) {
        // In all closures: `walk` passes offsets with `i + access size <= len`, so every
        // access is inside the ranges the caller vouches for. Shared bytes are accessed
        // through atomics at their natural alignment (`split` aligns the words on the
        // shared side); the private side takes plain (unaligned) accesses.
        walk(
            src,
            len,
            // SAFETY: see above.
            |i| unsafe { *dst.add(i) = (*src.add(i).cast::<AtomicU8>()).load(Relaxed) },
            // SAFETY: see above.
            |i| unsafe {
                let v = (*src.add(i).cast::<AtomicU64>()).load(Relaxed);
                dst.add(i).cast::<u64>().write_unaligned(v);
            },
        );
    }

    /// [`store`](super::store) with relaxed atomic accesses.
    ///
    /// # Safety
    ///
    /// As for [`store`](super::store).
    pub unsafe fn store(src: *const u8, dst: *mut u8, len: usize) {
        walk(
            dst,
            len,
            // SAFETY: as in `load`, with the sides swapped.
            |i| unsafe { (*dst.add(i).cast::<AtomicU8>()).store(*src.add(i), Relaxed) },
            // SAFETY: as in `load`, with the sides swapped.
            |i| unsafe {
                let v = src.add(i).cast::<u64>().read_unaligned();
                (*dst.add(i).cast::<AtomicU64>()).store(v, Relaxed);
            },
        );
    }

    /// [`zero`](super::zero) with relaxed atomic accesses.
    ///
    /// # Safety
    ///
    /// As for [`zero`](super::zero).
    pub unsafe fn zero(dst: *mut u8, len: usize) {
        walk(
            dst,
            len,
            // SAFETY: as in `store`.
            |i| unsafe { (*dst.add(i).cast::<AtomicU8>()).store(0, Relaxed) },
            // SAFETY: as in `store`.
            |i| unsafe { (*dst.add(i).cast::<AtomicU64>()).store(0, Relaxed) },
        );
    }
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod imp {
    use super::portable;
    use core::arch::asm;

    /// Up to this length the word loop beats `rep movsb`'s start-up cost (measured:
    /// 16..32-byte copies take about 60% of the time). Writer and reader of a channel
    /// copy the same length, so they always pick the same engine.
    const SMALL: usize = 64;

    /// `rep movsb` from `src` to `dst`: shared memory on one side, private on the
    /// other, in either direction.
    ///
    /// # Safety
    ///
    /// `src..src+len` is readable and `dst..dst+len` writable, as `load`/`store`
    /// require.
    #[inline(always)]
    unsafe fn rep_movsb(src: *const u8, dst: *mut u8, len: usize) {
        // SAFETY: the caller guarantees both ranges. `rep movsb` touches exactly
        // `src..src+len` and `dst..dst+len` (DF is clear on entry to an asm block, so it
        // copies upwards) and leaves the stack and flags alone. Its per-byte accesses
        // are single-copy atomic (see the module docs).
        unsafe {
            asm!(
                "rep movsb",
                inout("rcx") len => _,
                inout("rsi") src => _,
                inout("rdi") dst => _,
                options(nostack, preserves_flags),
            );
        }
    }

    #[inline(always)]
    pub(super) unsafe fn load(src: *const u8, dst: *mut u8, len: usize) {
        if len <= SMALL {
            // SAFETY: forwarded contract.
            return unsafe { portable::load(src, dst, len) };
        }
        // SAFETY: `load`'s contract is `rep_movsb`'s.
        unsafe { rep_movsb(src, dst, len) }
    }

    #[inline(always)]
    pub(super) unsafe fn store(src: *const u8, dst: *mut u8, len: usize) {
        if len <= SMALL {
            // SAFETY: forwarded contract.
            return unsafe { portable::store(src, dst, len) };
        }
        // SAFETY: `store`'s contract is `rep_movsb`'s.
        unsafe { rep_movsb(src, dst, len) }
    }

    #[inline(always)]
    pub(super) unsafe fn zero(dst: *mut u8, len: usize) {
        if len <= SMALL {
            // SAFETY: forwarded contract.
            return unsafe { portable::zero(dst, len) };
        }
        // SAFETY: `rep stosb` writes AL to exactly `dst..dst+len`, which the caller
        // vouches for (`zero`'s contract); it leaves the stack and flags alone.
        unsafe {
            asm!(
                "rep stosb",
                inout("rcx") len => _,
                inout("rdi") dst => _,
                in("al") 0u8,
                options(nostack, preserves_flags),
            );
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", not(miri))))]
mod imp {
    pub(super) use super::portable::{load, store, zero};
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::sync::atomic::AtomicU64;
    use std::vec::Vec;

    fn shared(words: usize) -> Vec<AtomicU64> {
        (0..words).map(|_| AtomicU64::new(0)).collect()
    }

    /// Every (offset, length) combination around word boundaries copies exactly the
    /// requested bytes, through both engines.
    #[test]
    fn copies_exact_ranges_at_every_alignment() {
        type Engine = (
            unsafe fn(*const u8, *mut u8, usize),
            unsafe fn(*const u8, *mut u8, usize),
            unsafe fn(*mut u8, usize),
        );
        let engines: [Engine; 2] = [
            (load, store, zero),
            (portable::load, portable::store, portable::zero),
        ];
        for (ld, st, zr) in engines {
            for offset in 0..9 {
                for len in [0, 1, 7, 8, 9, 15, 16, 17, 31, 64, 65, 100, 200] {
                    let mem = shared(32);
                    let base = mem.as_ptr() as *mut u8;
                    let src: Vec<u8> = (0..len).map(|i| i as u8 ^ 0xa5).collect();
                    // SAFETY: offset + len <= 108 < 256 bytes of `mem`; no other
                    // thread accesses it.
                    unsafe { st(src.as_ptr(), base.add(offset), len) };
                    let mut all = [0u8; 256];
                    // SAFETY: whole buffer, private destination.
                    unsafe { ld(base, all.as_mut_ptr(), 256) };
                    assert!(all[..offset].iter().all(|&b| b == 0));
                    assert_eq!(&all[offset..offset + len], &src[..]);
                    assert!(all[offset + len..].iter().all(|&b| b == 0));
                    let mut back = std::vec![0xffu8; len];
                    // SAFETY: as above.
                    unsafe { ld(base.add(offset), back.as_mut_ptr(), len) };
                    assert_eq!(back, src);
                    // SAFETY: as above.
                    unsafe { zr(base.add(offset), len) };
                    // SAFETY: as above.
                    unsafe { ld(base, all.as_mut_ptr(), 256) };
                    assert!(all.iter().all(|&b| b == 0));
                }
            }
        }
    }
}
