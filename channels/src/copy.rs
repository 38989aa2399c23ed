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
//! The implementation is chosen per target, per length and (hosted) per CPU:
//!
//! - **x86-64, not under Miri**, with inline assembly. Every byte is moved by exactly
//!   one load and one store instruction (or by one `rep movsb`), and a byte access is
//!   always single-copy atomic on x86; an asm block is opaque to the compiler, so it
//!   behaves like the sequence of relaxed atomic byte accesses it performs (in any
//!   order, which relaxed accesses to different bytes allow anyway). On write-back
//!   memory x86 orders loads with other loads and stores with other stores; only the
//!   parts of one instruction (the bytes of a vector move, the stores of one string
//!   instruction) may become visible in any order among themselves, never out of
//!   order with the accesses before or after (Intel SDM vol. 3, memory ordering). So
//!   the fences around the copy are compiler barriers only, as in the C
//!   implementations (the Linux kernel's x86 seqlock readers rely on the same:
//!   `smp_rmb()` is a compiler barrier around a `memcpy`).
//!   - on targets with SSE (hosted Linux; SSE2 is part of x86-64 there): 16 to 64
//!     bytes with at most four 16-byte moves (the first and last 16 bytes, and for
//!     more than 32 bytes the second and last but one; chunks may overlap); more than
//!     64 bytes, if the CPU has AVX (detected once, with the `cpufeatures` crate),
//!     32-byte moves: stores **from the end towards the start**, loads from the start
//!     ([`load`]) or from the end ([`load_from`] with [`Start::End`]), each aligned to 32 bytes on
//!     one side; without AVX `rep movsb`;
//!   - without SSE (`x86_64-unknown-none`, the Muen target: the runtime does not save
//!     vector registers): more than 64 bytes with one `rep movsb` (`rep stosb` to
//!     clear);
//!   - shorter copies, and every clear up to 64 bytes: the portable loop.
//! - **everywhere else, and under Miri**: the portable loop: relaxed `AtomicU8`
//!   accesses up to the first 8-byte aligned address of the shared side, `AtomicU64`
//!   accesses in the middle and `AtomicU8` accesses for the tail. The granularity
//!   depends only on the shared address and the length, so writer and reader of the
//!   same slot use the same access sizes (mixing sizes on racing atomics is not
//!   defined).
//!
//! Writer and reader of one channel copy the same length in the same program, so they
//! always take the same path.
//!
//! Measured when choosing (per element one copy into a ring slot and one out of it,
//! as the benchmarks do, on the AMD EPYC development machine): for 64 bytes the
//! 16-byte moves are as fast as glibc's `memcpy`, the word loop takes 1.7 times as
//! long and `rep movsb` 2.6 times; for 1516 bytes the 32-byte moves take 0.85 of the
//! time of `memcpy` (which uses AVX-512 there), `rep movsb` 1.2 times, a 16-byte loop
//! 1.9 times and the word loop 2.5 times. (`cargo bench -p muen-channel --bench
//! throughput` shows the engine, the word loop and `memcpy` side by side.)
//!
//! Why copies go from the end: slots are packed, so a slot's first cache line is also
//! the last line of the slot before (for 15 of every 16 1516-byte slots; the others
//! start on a line boundary), and a reader that
//! keeps up with its writer copies slot `k` while the writer fills slot `k + 1`. A
//! writer that fills a slot from its start takes the shared line away from the reader
//! right when the reader is about to copy it; and a reader that copies upwards has the
//! CPU's prefetchers run ahead of it into slot `k + 1`, taking lines away from the
//! writer. So the writer stores every slot from its end (the shared line last), and
//! [`Reader`](crate::Reader) copies an element from its end when its last read found
//! nothing new (it is right behind the writer): both then move away from each other.
//! A reader that is behind copies upwards, which suits the prefetchers better.
//! Measured with `cargo bench -p muen-channel --bench versus_solo5` (1516-byte
//! elements, 1 MiB ring, writer and reader on two CPUs 33 ns apart, ratio to Solo5's
//! C channel; median and lowest of 30 interleaved runs of six samples each): both
//! upwards 1.02 (0.81); stores from the end, loads upwards 1.12 (0.80); stores from
//! the end and a caught-up reader from the end 1.65 (1.42). A reader always copying
//! from the end did as well with two threads but cost the single-thread rows up to a
//! tenth. In one thread (one write, then one read) stores from the end cost a little:
//! 1.09 against 1.16.
//!
//! Why not the `atomic-memcpy` crate: it implements the same P1478 semantics, but only
//! for a `T` known at compile time (protocols with a run-time element size need a
//! length), and for 1516-byte elements (`[u8; 1516]`, alignment 1) it reaches about a
//! fifth of `memcpy`'s throughput: relaxed atomics are never merged into vector moves.
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

/// Which end of the range a [`load_from`] starts at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The lowest address, as [`load`].
    Front,
    /// The highest address: the copy moves downwards, where the engine has a direction
    /// (vector moves; `rep movsb` and copies of up to 64 bytes go upwards). Readers
    /// start there for an element the writer published last, while it is probably
    /// filling the next slot (see the module documentation).
    End,
}

/// [`load`] starting at either end of the range.
///
/// # Safety
///
/// As for [`load`].
#[inline]
pub unsafe fn load_from(src: *const u8, dst: *mut u8, len: usize, start: Start) {
    // SAFETY: forwarded contract.
    unsafe { imp::load_from(src, dst, len, start) }
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
    #[inline]
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
    #[inline]
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
    #[inline]
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
    use super::{portable, Start};
    use core::arch::asm;

    /// Up to this length the small-copy path beats the large one's start-up cost
    /// (measured for 64 bytes: `rep movsb` takes 1.5 times as long as the word loop and
    /// 2.6 times as long as the 16-byte moves of the hosted path). Writer and reader of
    /// a channel copy the same length, so they always pick the same engine.
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

    /// Copies of up to [`SMALL`] bytes: from 16 bytes on, 16-byte vector moves on
    /// targets with SSE ([`vector::small`]), else the word loop.
    #[inline(always)]
    unsafe fn small(src: *const u8, dst: *mut u8, len: usize, load: bool) {
        #[cfg(target_feature = "sse2")]
        if len >= vector::XMM {
            // SAFETY: forwarded contract; `16 <= len <= SMALL`.
            return unsafe { vector::small(src, dst, len) };
        }
        // SAFETY: forwarded contract.
        unsafe {
            if load {
                portable::load(src, dst, len)
            } else {
                portable::store(src, dst, len)
            }
        }
    }

    /// Copies of more than [`SMALL`] bytes: 32-byte vector moves where the CPU has AVX
    /// (hosted targets), else `rep movsb`.
    #[inline(always)]
    unsafe fn large(src: *const u8, dst: *mut u8, len: usize) {
        #[cfg(target_feature = "sse2")]
        if vector::avx() {
            // SAFETY: forwarded contract; `len > 64`; the CPU and OS support AVX.
            return unsafe { vector::large(src, dst, len) };
        }
        // SAFETY: forwarded contract.
        unsafe { rep_movsb(src, dst, len) }
    }

    #[inline(always)]
    pub(super) unsafe fn load(src: *const u8, dst: *mut u8, len: usize) {
        // SAFETY: forwarded contract.
        unsafe { load_from(src, dst, len, Start::Front) }
    }

    #[inline(always)]
    pub(super) unsafe fn load_from(src: *const u8, dst: *mut u8, len: usize, start: Start) {
        // SAFETY: `load`'s contract is the helpers' (one side shared, the other private).
        unsafe {
            if len <= SMALL {
                small(src, dst, len, true)
            } else if start == Start::End {
                large_load_from_end(src, dst, len)
            } else {
                large(src, dst, len)
            }
        }
    }

    /// Stores of more than [`SMALL`] bytes: from the end towards the start with
    /// 32-byte moves where the CPU has AVX ([`vector::backward_store`]), so that the
    /// first line of a slot, which it shares with the end of the slot before, is
    /// written last (see the module documentation); else `rep movsb`.
    #[inline(always)]
    unsafe fn large_store(src: *const u8, dst: *mut u8, len: usize) {
        #[cfg(target_feature = "sse2")]
        if vector::avx() {
            // SAFETY: forwarded contract; `len > 64`; the CPU and OS support AVX.
            return unsafe { vector::backward_store(src, dst, len) };
        }
        // SAFETY: forwarded contract.
        unsafe { rep_movsb(src, dst, len) }
    }

    /// Loads of more than [`SMALL`] bytes from the end towards the start with 32-byte
    /// moves where the CPU has AVX ([`vector::backward_load`]); else `rep movsb`.
    #[inline(always)]
    unsafe fn large_load_from_end(src: *const u8, dst: *mut u8, len: usize) {
        #[cfg(target_feature = "sse2")]
        if vector::avx() {
            // SAFETY: forwarded contract; `len > 64`; the CPU and OS support AVX.
            return unsafe { vector::backward_load(src, dst, len) };
        }
        // SAFETY: forwarded contract.
        unsafe { rep_movsb(src, dst, len) }
    }

    #[inline(always)]
    pub(super) unsafe fn store(src: *const u8, dst: *mut u8, len: usize) {
        // SAFETY: `store`'s contract is the helpers'.
        unsafe {
            if len <= SMALL {
                small(src, dst, len, false)
            } else {
                large_store(src, dst, len)
            }
        }
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

    /// Vector moves, for targets whose code may use SSE registers (hosted x86-64; not
    /// `x86_64-unknown-none`, where the runtime does not save them).
    #[cfg(target_feature = "sse2")]
    pub(super) mod vector {
        use core::arch::asm;

        /// Bytes per SSE register.
        pub(super) const XMM: usize = 16;

        cpufeatures::new!(avx_cpuid, "avx");

        /// Whether the CPU and the OS support AVX (detected once, then a relaxed load).
        #[inline(always)]
        pub(crate) fn avx() -> bool {
            avx_cpuid::get()
        }

        /// Copies 16..=64 bytes with (at most four) 16-byte moves: the first and last 16
        /// bytes, and for more than 32 bytes also the second and the last but one 16
        /// bytes (the chunks may overlap; every byte is copied).
        ///
        /// # Safety
        ///
        /// `16 <= len <= 64`; `src..src+len` readable, `dst..dst+len` writable, not
        /// overlapping.
        #[inline(always)]
        pub(super) unsafe fn small(src: *const u8, dst: *mut u8, len: usize) {
            // SAFETY: every access lies within `src..src+len` or `dst..dst+len`: offsets
            // 0 and 16 (only if `len > 32`) and `len - 32` (only if `len > 32`) and
            // `len - 16`, each 16 bytes long. SSE2 is a feature of the target. Each
            // byte is moved by single-copy atomic loads and stores (see the module
            // docs); bytes in overlapping chunks are loaded twice and stored twice
            // with the same value, which a sequence of relaxed byte accesses may do.
            unsafe {
                asm!(
                    "movdqu {a}, [{s}]",
                    "movdqu {b}, [{s} + {n} - 16]",
                    "cmp {n}, 32",
                    "jbe 2f",
                    "movdqu {c}, [{s} + 16]",
                    "movdqu {d}, [{s} + {n} - 32]",
                    "movdqu [{t} + 16], {c}",
                    "movdqu [{t} + {n} - 32], {d}",
                    "2:",
                    "movdqu [{t}], {a}",
                    "movdqu [{t} + {n} - 16], {b}",
                    s = in(reg) src,
                    t = in(reg) dst,
                    n = in(reg) len,
                    a = out(xmm_reg) _,
                    b = out(xmm_reg) _,
                    c = out(xmm_reg) _,
                    d = out(xmm_reg) _,
                    options(nostack),
                );
            }
        }

        /// Copies more than 64 bytes with 32-byte moves: the first 32 bytes, then
        /// 64 bytes per iteration with the stores aligned to 32 bytes, then the last 64
        /// bytes (loaded before the loop), each chunk possibly overlapping the one
        /// before. Aligned stores never split a cache line: a 1516-byte muennet element
        /// starts at every 4-byte offset of a line, and a split store into a line the
        /// other side holds costs two ownership requests instead of one.
        ///
        /// # Safety
        ///
        /// `len > 64`; ranges as for [`small`]; the CPU and the OS support AVX
        /// ([`avx`]).
        #[inline]
        #[target_feature(enable = "avx")]
        pub(crate) unsafe fn large(src: *const u8, dst: *mut u8, len: usize) {
            // SAFETY: the first chunk is `0..32` and the last two `len-64..len`, inside
            // the ranges because `len > 64`. The destination then advances by 0..=31
            // bytes to a 32-byte boundary (those bytes were stored by the first
            // chunk), leaving at least 34 bytes; the loop copies 64-byte blocks while
            // more than 64 bytes are left, so every block lies within the ranges and
            // its stores are aligned (`vmovdqa`), and what is left (at most 64 bytes)
            // lies inside the last 64 bytes, stored last. Accesses as in `small`:
            // bytes in overlapping chunks are moved twice with the same value.
            // `vzeroupper` leaves the upper halves of the vector registers clean for
            // the SSE code around (no transition penalties).
            unsafe {
                asm!(
                    "vmovdqu ymm0, [rsi]",
                    "vmovdqu ymm1, [rsi + rcx - 64]",
                    "vmovdqu ymm2, [rsi + rcx - 32]",
                    "lea r8, [rdi + rcx]",
                    "vmovdqu [rdi], ymm0",
                    "mov rax, rdi",
                    "neg rax",
                    "and rax, 31",
                    "add rsi, rax",
                    "add rdi, rax",
                    "sub rcx, rax",
                    "cmp rcx, 64",
                    "jbe 3f",
                    "2:",
                    "vmovdqu ymm0, [rsi]",
                    "vmovdqu ymm3, [rsi + 32]",
                    "vmovdqa [rdi], ymm0",
                    "vmovdqa [rdi + 32], ymm3",
                    "add rsi, 64",
                    "add rdi, 64",
                    "sub rcx, 64",
                    "cmp rcx, 64",
                    "ja 2b",
                    "3:",
                    "vmovdqu [r8 - 64], ymm1",
                    "vmovdqu [r8 - 32], ymm2",
                    "vzeroupper",
                    inout("rsi") src => _,
                    inout("rdi") dst => _,
                    inout("rcx") len => _,
                    // rax, r8, ymm0..ymm3, and `vzeroupper` changes every vector
                    // register.
                    clobber_abi("C"),
                    options(nostack),
                );
            }
        }

        /// The body of [`backward_store`] and [`backward_load`]: more than 64 bytes
        /// from `$src` to `$dst`, from the end towards the start, with 32-byte moves:
        /// the last 32 bytes, then 64 bytes per iteration downwards from the end of the
        /// side in register `$side` rounded down to 32 bytes (so that the loop's
        /// accesses on that side are aligned: `$load` and `$store` are the loop's
        /// mnemonics, the aligned one on that side), then the first 64 bytes (loaded
        /// before the loop). `rax`, `ymm0..ymm3` and, through `vzeroupper`, every
        /// vector register are clobbered.
        macro_rules! from_end {
            ($src:expr, $dst:expr, $len:expr, $side:literal, $load:literal, $store:literal) => {
                asm!(
                    "vmovdqu ymm0, [rsi + rcx - 32]",
                    "vmovdqu ymm1, [rsi]",
                    "vmovdqu ymm2, [rsi + 32]",
                    "vmovdqu [rdi + rcx - 32], ymm0",
                    concat!("lea rax, [", $side, " + rcx]"),
                    "and rax, -32",
                    concat!("sub rax, ", $side),
                    "cmp rax, 64",
                    "jbe 3f",
                    "2:",
                    "sub rax, 64",
                    concat!($load, " ymm0, [rsi + rax]"),
                    concat!($load, " ymm3, [rsi + rax + 32]"),
                    concat!($store, " [rdi + rax], ymm0"),
                    concat!($store, " [rdi + rax + 32], ymm3"),
                    "cmp rax, 64",
                    "ja 2b",
                    "3:",
                    "vmovdqu [rdi], ymm1",
                    "vmovdqu [rdi + 32], ymm2",
                    "vzeroupper",
                    inout("rsi") $src => _,
                    inout("rdi") $dst => _,
                    inout("rcx") $len => _,
                    clobber_abi("C"),
                    options(nostack),
                )
            };
        }

        /// Copies more than 64 bytes from the end towards the start with 32-byte
        /// moves: the last 32 bytes, then 64 bytes per iteration downwards from the
        /// end rounded down to 32 bytes (aligned stores), then the first 64 bytes
        /// (loaded before the loop), each chunk possibly overlapping the one stored
        /// before.
        ///
        /// # Safety
        ///
        /// As for [`large`].
        #[inline]
        #[target_feature(enable = "avx")]
        pub(crate) unsafe fn backward_store(src: *const u8, dst: *mut u8, len: usize) {
            // SAFETY: the first chunk is `len-32..len` and the last two `0..64`, inside
            // the ranges because `len > 64`. `rax` starts as the offset of the end
            // rounded down to a 32-byte boundary of the destination, at most 31 bytes
            // below the end (covered by the first chunk). The loop stores the 64-byte
            // block below `rax` while more than 64 bytes lie below `rax`, so every block
            // starts above offset 0 and ends at or below the end, its stores aligned;
            // what is left below `rax` (at most 64 bytes) lies inside the first 64
            // bytes, stored last. Accesses as in `large`: bytes in overlapping chunks
            // are moved twice with the same value.
            unsafe { from_end!(src, dst, len, "rdi", "vmovdqu", "vmovdqa") }
        }

        /// Copies more than 64 bytes from the end towards the start with 32-byte
        /// moves, as [`backward_store`] but with the *loads* aligned to 32 bytes (the
        /// source is the shared side): the last 32 bytes, then 64 bytes per iteration
        /// downwards from the source's end rounded down to 32 bytes, then the first 64
        /// bytes (loaded before the loop).
        ///
        /// # Safety
        ///
        /// As for [`large`].
        #[inline]
        #[target_feature(enable = "avx")]
        pub(crate) unsafe fn backward_load(src: *const u8, dst: *mut u8, len: usize) {
            // SAFETY: as in `backward_store`, with the offsets counted from the 32-byte
            // boundary of the source instead of the destination: every chunk lies
            // between offset 0 and `len`, the loop's loads are aligned, and what is
            // left below the loop (at most 64 bytes) lies inside the first 64 bytes.
            unsafe { from_end!(src, dst, len, "rsi", "vmovdqa", "vmovdqu") }
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", not(miri))))]
mod imp {
    pub(super) use super::portable::{load, store, zero};

    /// The portable engine has one direction.
    ///
    /// # Safety
    ///
    /// As for [`load`](super::load).
    #[inline(always)]
    pub(super) unsafe fn load_from(src: *const u8, dst: *mut u8, len: usize, _: super::Start) {
        // SAFETY: forwarded contract.
        unsafe { load(src, dst, len) }
    }
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
            for offset in 0..9usize {
                // Around the word size, the 16-byte and 32-byte vector moves, the small
                // path's limit (64) and a muennet element.
                for len in [
                    0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 100, 127, 128, 129, 200,
                    1516,
                ] {
                    if cfg!(miri) && len > 200 {
                        // Miri runs the portable engine only; nothing new at this size.
                        continue;
                    }
                    let total = (offset + len + 16).next_multiple_of(8);
                    let mem = shared(total / 8);
                    let base = mem.as_ptr() as *mut u8;
                    // No period of 256: a chunk copied to the wrong place shows.
                    let src: Vec<u8> = (0..len)
                        .map(|i: usize| (i ^ ((i >> 8) * 31)) as u8 ^ 0xa5)
                        .collect();
                    // SAFETY: offset + len < total bytes of `mem`; no other thread
                    // accesses it.
                    unsafe { st(src.as_ptr(), base.add(offset), len) };
                    let mut all = std::vec![0u8; total];
                    // SAFETY: whole buffer, private destination.
                    unsafe { ld(base, all.as_mut_ptr(), total) };
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
                    unsafe { ld(base, all.as_mut_ptr(), total) };
                    assert!(all.iter().all(|&b| b == 0));
                }
            }
        }
    }

    /// Every large-copy routine the CPU can run stores exactly the requested bytes at
    /// every offset from a cache line (the aligned loops start at a different block
    /// for each) and for every length class around their chunk sizes.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(miri)))]
    #[test]
    fn vector_routines_copy_exact_ranges_at_every_line_offset() {
        use imp::vector;
        let mut routines: Vec<&str> = Vec::new();
        if vector::avx() {
            routines.extend(["large", "backward_store", "backward_load"]);
        }
        /// # Safety
        ///
        /// As for `vector::large`, and `name` is one of the routines the CPU runs.
        unsafe fn copy(name: &str, src: *const u8, dst: *mut u8, len: usize) {
            // SAFETY: forwarded contract.
            unsafe {
                match name {
                    "large" => vector::large(src, dst, len),
                    "backward_store" => vector::backward_store(src, dst, len),
                    _ => vector::backward_load(src, dst, len),
                }
            }
        }
        // Which routines ran, so that a machine without AVX does not pass silently.
        std::println!("routines: {routines:?}");
        #[repr(C, align(64))]
        struct Lines([u8; 2048]);
        for name in routines {
            for offset in 0..64usize {
                for len in (65..=200).chain([255, 256, 257, 319, 320, 321, 1515, 1516, 1517]) {
                    let mut mem = Lines([0u8; 2048]);
                    let src: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
                    // SAFETY: `64 < len` and `offset + len < 2048`: both ranges are
                    // inside private buffers; `name` was detected above.
                    unsafe { copy(name, src.as_ptr(), mem.0.as_mut_ptr().add(offset), len) };
                    assert!(
                        mem.0[..offset].iter().all(|&b| b == 0),
                        "{name} {offset}+{len}"
                    );
                    assert_eq!(
                        &mem.0[offset..offset + len],
                        &src[..],
                        "{name} {offset}+{len}"
                    );
                    assert!(
                        mem.0[offset + len..].iter().all(|&b| b == 0),
                        "{name} {offset}+{len}"
                    );
                }
            }
        }
    }
}
