//! The region is mapped directly before a `PROT_NONE` page, and read-only while the
//! reader runs: any access past the end (or any write by the reader) kills the test
//! process with SIGSEGV. Every hostile header below, and element reads at the very
//! last slot, must therefore stay inside the region.
//!
//! Linux only (mmap/mprotect); not under Miri, which cannot map memory.

#![cfg(all(target_os = "linux", not(miri)))]

use core::num::NonZeroU64;
use core::ptr;

use muen_channel::protocol::{debuglog, muenblock, muennet};
use muen_channel::{
    Field, Header, OutOfBounds, ReadError, Reader, Region, RegionMut, Writer, TRANSPORT_MARKER,
};

const PAGE: usize = 4096;

/// `len` bytes whose last byte is followed by a guard page.
struct Guarded {
    map: *mut u8,
    map_len: usize,
    data_pages: usize,
    base: *mut u8,
    len: usize,
}

impl Guarded {
    fn new(len: usize) -> Self {
        assert!(len % 8 == 0, "channel regions are 8-byte aligned");
        let data_pages = len.div_ceil(PAGE);
        let map_len = (data_pages + 1) * PAGE;
        // SAFETY: anonymous private mapping of fresh memory; checked below.
        let map = unsafe {
            libc::mmap(
                ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED, "mmap failed");
        let map = map.cast::<u8>();
        // SAFETY: `guard` is the last page of our own mapping.
        let guard = unsafe { map.add(data_pages * PAGE) };
        // SAFETY: the last page of our own mapping, which nothing references yet.
        let protected = unsafe { libc::mprotect(guard.cast(), PAGE, libc::PROT_NONE) };
        assert_eq!(protected, 0);
        Guarded {
            map,
            map_len,
            data_pages,
            // SAFETY: `len <= data_pages * PAGE`, so this stays in the mapping.
            base: unsafe { guard.sub(len) },
            len,
        }
    }

    fn protect(&self, prot: i32) {
        // SAFETY: the data pages of our own mapping; regions only access them with
        // the rights the test gives them.
        let protected = unsafe { libc::mprotect(self.map.cast(), self.data_pages * PAGE, prot) };
        assert_eq!(protected, 0);
    }

    /// The writer's view; the pages become writable.
    fn writable(&self) -> RegionMut<'_> {
        self.protect(libc::PROT_READ | libc::PROT_WRITE);
        // SAFETY: our mapping stays valid (and is only accessed through regions) until
        // `self` is dropped, which the borrow prevents while the region lives.
        unsafe { RegionMut::new(self.base, self.len).unwrap() }
    }

    /// Makes the pages read-only, as a reader's mapping on Muen.
    fn seal(&self) {
        self.protect(libc::PROT_READ);
    }

    fn region(&self) -> Region<'_> {
        // SAFETY: as in `writable`.
        unsafe { Region::new(self.base, self.len).unwrap() }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped; no region outlives `self`.
        unsafe { libc::munmap(self.map.cast(), self.map_len) };
    }
}

fn epoch(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).unwrap()
}

fn pattern(n: u64, size: usize) -> Vec<u8> {
    (0..size).map(|i| (n as usize * 7 + i) as u8).collect()
}

/// The guard page really faults: a child process that touches it dies of SIGSEGV.
#[test]
fn the_guard_page_faults() {
    let g = Guarded::new(PAGE);
    // SAFETY: the child only reads one byte and exits; no locks, no allocation.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: deliberately faulting: one byte past the region, which is our own
        // guard page; the child dies of it (or exits at once) and touches nothing else.
        unsafe {
            ptr::read_volatile(g.base.add(g.len));
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSEGV);
}

/// Rings that end exactly at the guard page: the writer fills every slot, then the
/// reader (on a read-only mapping) reads them all, including the last.
#[test]
fn element_reads_at_the_last_slot_stay_before_the_guard() {
    let cases = [
        (
            muenblock::PROTOCOL,
            muenblock::RESPONSE_SIZE,
            muenblock::RESPONSE_REGION_SIZE,
        ),
        (
            muenblock::PROTOCOL,
            muenblock::REQUEST_SIZE,
            muenblock::REQUEST_REGION_SIZE,
        ),
        (debuglog::PROTOCOL, debuglog::ELEMENT_SIZE, 0x2_0000),
        // 1516-byte elements: 64 + 1516 * 24 = 36448 bytes, last slot unaligned.
        (
            muennet::PROTOCOL,
            muennet::ELEMENT_SIZE,
            64 + muennet::ELEMENT_SIZE * 24,
        ),
        (0x77, 20, 64 + 20 * 10),
        (0x77, 1, 64 + 8),
    ];
    for (protocol, size, len) in cases {
        let g = Guarded::new(len);
        let mut w = Writer::init(g.writable(), protocol, size, epoch(3)).unwrap();
        let elements = w.elements();
        assert_eq!(
            64 + size * elements as usize,
            len,
            "ring must end at the guard"
        );
        let mut r = Reader::new(g.region(), protocol, size).unwrap();
        let mut buf = vec![0u8; size];
        // Two rounds around the ring, the second with the reader starting at the last
        // slot after an overrun.
        for round in 0..2u64 {
            g.writable();
            for n in 0..elements {
                w.write_bytes(&pattern(round * elements + n, size)).unwrap();
            }
            if round == 1 {
                // Two more: slot 0 and 1 are overwritten, the reader skips ahead.
                w.write_bytes(&pattern(999, size)).unwrap();
            }
            g.seal();
            if round == 0 {
                assert_eq!(r.read_bytes(&mut buf), Err(ReadError::EpochChanged));
                for n in 0..elements {
                    r.read_bytes(&mut buf).unwrap();
                    assert_eq!(buf, pattern(n, size));
                }
            } else {
                assert_eq!(
                    r.read_bytes(&mut buf),
                    Err(ReadError::Overrun { lost: elements + 1 })
                );
                g.writable();
                for n in 0..elements - 1 {
                    w.write_bytes(&pattern(5000 + n, size)).unwrap();
                }
                g.seal();
                // rc = 2 * elements + 1: the reader now goes through slots 1 ..= last.
                for n in 0..elements - 1 {
                    r.read_bytes(&mut buf).unwrap();
                    assert_eq!(buf, pattern(5000 + n, size), "slot {}", (n + 1) % elements);
                }
            }
            assert_eq!(r.read_bytes(&mut buf), Err(ReadError::NoData));
        }
        // Raw byte access at the very end, and one past it.
        let mut last = [0u8; 1];
        g.region().read_bytes(len - 1, &mut last).unwrap();
        assert_eq!(
            g.region().read_bytes(len, &mut last),
            Err(OutOfBounds {
                offset: len,
                len: 1
            })
        );
    }
}

/// Writes a header by hand (epoch last), as a hostile writer might.
fn put_header(g: &Guarded, h: &Header) {
    let p = g.writable();
    p.store(Field::Epoch, 0);
    for f in Field::ALL {
        if f != Field::Epoch {
            p.store(f, f.get(h));
        }
    }
    p.store(Field::Epoch, h.epoch.get());
    g.seal();
}

/// Drives a reader through everything it offers.
fn exercise(r: &mut Reader<'_>, size: usize) -> usize {
    let mut buf = vec![0u8; size];
    let mut ok = 0;
    for _ in 0..4 {
        let _ = r.has_pending_data();
        if r.read_bytes(&mut buf).is_ok() {
            ok += 1;
        }
    }
    let _ = r.drain();
    let _ = r.read_bytes(&mut buf);
    ok
}

#[test]
fn hostile_headers_never_reach_the_guard_page() {
    const SIZE: usize = 1516;
    const K: u64 = 24;
    let len = 64 + SIZE * K as usize;
    let g = Guarded::new(len);
    let sz = SIZE as u64;
    let base = Header::new(1, muennet::PROTOCOL, sz, K);
    let mut hostile: Vec<Header> = Vec::new();
    let with = |f: &dyn Fn(&mut Header)| {
        let mut h = base;
        f(&mut h);
        h
    };
    for elements in [
        0,
        K + 1,
        K * 2,
        1 << 20,
        u64::MAX / sz,
        u64::MAX / sz + 1,
        u64::MAX,
    ] {
        for wc in [0, 1, K - 1, K, K + 1, elements.wrapping_sub(1), u64::MAX] {
            hostile.push(with(&|h| {
                h.elements = elements.into();
                h.wc = wc.into();
                h.wsc = wc.into();
            }));
        }
    }
    for size in [0, 1, sz - 1, sz + 1, 1 << 16, len as u64, u64::MAX] {
        hostile.push(with(&|h| {
            h.size = size.into();
            h.elements = 1.into();
            h.wc = 1.into();
        }));
    }
    hostile.push(with(&|h| h.transport = 0.into()));
    hostile.push(with(&|h| h.protocol = debuglog::PROTOCOL.into()));
    // Pseudo-random headers around the interesting values.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let picks = [0, 1, K - 1, K, K + 1, sz, u64::MAX, u64::MAX / sz + 1];
    for _ in 0..2000 {
        let mut h = base;
        for f in [Field::Elements, Field::Wc, Field::Wsc, Field::Size] {
            let v = match next() % 3 {
                0 => picks[(next() % picks.len() as u64) as usize],
                1 => next() % (2 * K),
                _ => next(),
            };
            f.set(&mut h, v);
        }
        if next() % 8 == 0 {
            h.size = sz.into();
        }
        hostile.push(h);
    }

    let mut accepted = 0;
    for (i, h) in hostile.iter().enumerate() {
        let mut h = *h;
        h.epoch = (i as u64 + 1).into();
        put_header(&g, &h);
        let mut r = Reader::new(g.region(), muennet::PROTOCOL, SIZE).unwrap();
        let ok = exercise(&mut r, SIZE);
        let geometry_ok = h.transport.get() == TRANSPORT_MARKER
            && h.protocol.get() == muennet::PROTOCOL
            && h.size.get() == sz
            && (1..=K).contains(&h.elements.get());
        assert!(
            ok == 0 || geometry_ok,
            "element returned for refused header {h:?}"
        );
        accepted += usize::from(r.elements().is_some());
    }
    assert!(
        accepted > 0,
        "no header was valid: the test would prove nothing"
    );

    // A valid channel whose writer turns hostile after the reader synchronised:
    // geometry and counters pointing past the end must not be followed.
    let mut w = Writer::init(g.writable(), muennet::PROTOCOL, SIZE, epoch(77)).unwrap();
    for n in 0..K - 1 {
        w.write_bytes(&pattern(n, SIZE)).unwrap();
    }
    g.seal();
    let mut r = Reader::new(g.region(), muennet::PROTOCOL, SIZE).unwrap();
    let mut buf = vec![0u8; SIZE];
    assert_eq!(r.read_bytes(&mut buf), Err(ReadError::EpochChanged));
    for n in 0..K - 2 {
        r.read_bytes(&mut buf).unwrap();
        assert_eq!(buf, pattern(n, SIZE));
    }
    for (elements, size, wc, wsc) in [
        (K + 1, sz, K, K),
        (u64::MAX, 1 << 40, K, K + 1),
        (2 * K, sz, 2 * K - 1, 2 * K - 1),
        (K, sz, u64::MAX, u64::MAX),
    ] {
        let p = g.writable();
        p.store(Field::Elements, elements);
        p.store(Field::Size, size);
        p.store(Field::Wsc, wsc);
        p.store(Field::Wc, wc);
        g.seal();
        exercise(&mut r, SIZE);
        assert_eq!(r.elements(), Some(K));
    }
}

/// The writer's clearing and element stores end exactly at the guard page.
#[test]
fn writer_stays_inside_the_region() {
    // The ring does not fill the region: the writer also clears the unused tail.
    let len = 3 * PAGE;
    let g = Guarded::new(len);
    let mut w = Writer::init(
        g.writable(),
        muennet::PROTOCOL,
        muennet::ELEMENT_SIZE,
        epoch(1),
    )
    .unwrap();
    assert_eq!(w.elements(), (len as u64 - 64) / 1516);
    let frame = muennet::Element::new(&[0x5a; muennet::FRAME_MAX]).unwrap();
    for _ in 0..3 * w.elements() {
        w.write(&frame).unwrap();
    }
    let batch = vec![0xa5u8; muennet::ELEMENT_SIZE * 5];
    w.write_batch_bytes(&batch).unwrap();
    w.reset(epoch(2));
    let p = w.deactivate();
    p.zero_bytes(len - 8, 8).unwrap();
    assert!(p.zero_bytes(len - 8, 9).is_err());
    assert!(p.write_bytes(len, &[1]).is_err());
}
