//! Reader and writer against honest and hostile writers.
//!
//! Hostile writers are simulated by storing header fields through a second
//! [`RegionMut`] over the same memory. "During the copy" and "during
//! synchronisation" cases use the reader's test hook, which runs at exactly those
//! points, so every interleaving here is deterministic.

extern crate std;

use core::num::NonZeroU64;
use core::sync::atomic::AtomicU64;
use std::vec::Vec;

use crate::reader::Step;
use crate::*;

const PROTO: u64 = 0x1234_5678_9abc_def0;
/// Not a multiple of 8, so half the slots start unaligned.
const SIZE: usize = 20;
/// 64 + 8 * 20 = 224 bytes: 8 elements.
const LEN: usize = 224;
const E: u64 = 8;

type Elem = [u8; SIZE];

fn memory(len: usize) -> Vec<AtomicU64> {
    (0..len.div_ceil(8)).map(|_| AtomicU64::new(0)).collect()
}

fn epoch(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).unwrap()
}

/// Element number `n`: the number, then a pattern derived from it.
fn elem(n: u64) -> Elem {
    let mut e = [0u8; SIZE];
    e[..8].copy_from_slice(&n.to_le_bytes());
    for (i, b) in e[8..].iter_mut().enumerate() {
        *b = (n as u8).wrapping_mul(31).wrapping_add(i as u8);
    }
    e
}

fn writer(m: &[AtomicU64]) -> Writer<'_> {
    Writer::init(RegionMut::from_atomics(m).unwrap(), PROTO, SIZE, epoch(77)).unwrap()
}

fn reader(m: &[AtomicU64]) -> Reader<'_> {
    Reader::new(Region::from_atomics(m).unwrap(), PROTO, SIZE).unwrap()
}

/// A second handle through which a test plays the hostile writer.
fn peer(m: &[AtomicU64]) -> RegionMut<'_> {
    RegionMut::from_atomics(m).unwrap()
}

/// Writer and reader, with the reader already synchronised.
fn pair(m: &[AtomicU64]) -> (Writer<'_>, Reader<'_>) {
    let w = writer(m);
    let mut r = reader(m);
    assert_eq!(r.read::<Elem>(), Err(ReadError::EpochChanged));
    assert_eq!(r.elements(), Some(E));
    (w, r)
}

fn read_hooked(r: &mut Reader<'_>, hook: impl FnMut(Step)) -> Result<Elem, ReadError> {
    let mut e = [0u8; SIZE];
    // SAFETY: `e` is SIZE private bytes.
    unsafe { r.read_raw(e.as_mut_ptr(), 1, hook) }.map(|_| e)
}

/// A hostile header on `m`: valid except for what `f` changes.
fn hostile_header(m: &[AtomicU64], f: impl FnOnce(&mut Header)) {
    let mut h = Header::new(5, PROTO, SIZE as u64, E);
    f(&mut h);
    let p = peer(m);
    p.store(Field::Epoch, 0);
    for field in Field::ALL {
        if field != Field::Epoch {
            p.store(field, field.get(&h));
        }
    }
    p.store(Field::Epoch, h.epoch.get());
}

#[test]
fn honest_round_trip_in_order() {
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    assert!(!r.has_pending_data());
    assert_eq!(r.read::<Elem>(), Err(ReadError::NoData));
    for n in 0..3 {
        w.write(&elem(n)).unwrap();
    }
    assert!(r.has_pending_data());
    for n in 0..3 {
        assert_eq!(r.read::<Elem>(), Ok(elem(n)));
    }
    assert_eq!(r.read::<Elem>(), Err(ReadError::NoData));
    // Around the ring several times, through both APIs.
    for n in 3..40 {
        w.write_bytes(&elem(n)).unwrap();
        let mut got = [0u8; SIZE];
        r.read_bytes(&mut got).unwrap();
        assert_eq!(got, elem(n));
    }
    assert_eq!(r.read_count(), 40);
    assert_eq!(w.write_count(), 40);
}

#[test]
fn writer_initialises_a_byte_exact_header_and_clears_the_ring() {
    let m = memory(LEN + 16);
    let p = peer(&m);
    // Garbage everywhere (written slot by slot, the way the writer clears).
    for f in Field::ALL {
        p.store(f, 0xeeee_eeee_eeee_eeee);
    }
    for slot in 0..E as usize {
        p.write_bytes(64 + slot * SIZE, &[0xee; SIZE]).unwrap();
    }
    p.write_bytes(LEN, &[0xee; 16]).unwrap();
    let w = writer(&m);
    let h = p.header();
    assert_eq!(
        h,
        Header::new(77, PROTO, SIZE as u64, (LEN as u64 + 16 - 64) / SIZE as u64)
    );
    let mut rest = [0xffu8; LEN + 16 - 64];
    p.read_bytes(64, &mut rest).unwrap();
    assert!(rest.iter().all(|&b| b == 0));
    assert_eq!(
        (
            w.elements(),
            w.element_size(),
            w.protocol(),
            w.epoch().get()
        ),
        (8, SIZE, PROTO, 77)
    );
    let p = w.deactivate();
    assert_eq!(p.load(Field::Epoch), 0);
}

#[test]
fn configuration_errors() {
    let m = memory(LEN);
    let small = memory(64 + 16);
    assert_eq!(
        Writer::init(peer(&m), 0, SIZE, epoch(1)).unwrap_err(),
        ConfigError::ZeroProtocol
    );
    assert_eq!(
        Writer::init(peer(&m), PROTO, 0, epoch(1)).unwrap_err(),
        ConfigError::ZeroElementSize
    );
    assert_eq!(
        Writer::init(peer(&small), PROTO, SIZE, epoch(1)).unwrap_err(),
        ConfigError::RegionTooSmall {
            region: 80,
            element_size: SIZE
        }
    );
    let region = Region::from_atomics(&small).unwrap();
    assert_eq!(
        Reader::new(region, 0, 1).unwrap_err(),
        ConfigError::ZeroProtocol
    );
    assert_eq!(
        Reader::new(region, PROTO, 0).unwrap_err(),
        ConfigError::ZeroElementSize
    );
    assert!(Reader::new(region, PROTO, 17).is_err());
    assert!(Reader::new(region, PROTO, 16).is_ok());
    assert_eq!(epoch_from(0).get(), 1);
    assert_eq!(epoch_from(42).get(), 42);
}

#[test]
fn wrong_lengths_are_refused_without_touching_the_channel() {
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    w.write(&elem(0)).unwrap();
    let wrong = WriteError::WrongLength {
        element_size: SIZE,
        found: 8,
    };
    assert_eq!(w.write(&0u64), Err(wrong));
    assert_eq!(w.write_bytes(&[0; 8]), Err(wrong));
    assert_eq!(w.write_batch(&[0u64; 5]), Err(wrong));
    assert_eq!(
        w.write_batch_bytes(&[0; SIZE + 1]),
        Err(WriteError::WrongLength {
            element_size: SIZE,
            found: SIZE + 1
        })
    );
    assert_eq!(w.write_count(), 1);
    let rwrong = ReadError::WrongLength {
        element_size: SIZE,
        found: 8,
    };
    assert_eq!(r.read::<u64>(), Err(rwrong));
    assert_eq!(r.read_bytes(&mut [0; 8]), Err(rwrong));
    assert_eq!(r.read_count(), 0);
    assert_eq!(r.read::<Elem>(), Ok(elem(0)));
}

#[test]
fn batches_are_published_together() {
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    let batch: Vec<Elem> = (0..5).map(elem).collect();
    w.write_batch(&batch).unwrap();
    assert_eq!(peer(&m).load(Field::Wsc), 5);
    assert_eq!(peer(&m).load(Field::Wc), 5);
    for n in 0..5 {
        assert_eq!(r.read::<Elem>(), Ok(elem(n)));
    }
    // Larger than the ring: written one ring at a time, the reader overruns.
    let big: Vec<Elem> = (5..5 + 2 * E + 3).map(elem).collect();
    w.write_batch(&big).unwrap();
    assert_eq!(w.write_count(), 5 + 2 * E + 3);
    assert_eq!(
        r.read::<Elem>(),
        Err(ReadError::Overrun { lost: 2 * E + 3 })
    );
    w.write(&elem(99)).unwrap();
    assert_eq!(r.read::<Elem>(), Ok(elem(99)));
}

fn read_batch_hooked(
    r: &mut Reader<'_>,
    capacity: usize,
    hook: impl FnMut(Step),
) -> Result<Vec<Elem>, ReadError> {
    let mut buf = std::vec![[0u8; SIZE]; capacity];
    // SAFETY: `buf` is `capacity` elements of private memory.
    let n = unsafe { r.read_raw(buf.as_mut_ptr().cast(), capacity as u64, hook) }?;
    buf.truncate(n as usize);
    Ok(buf)
}

#[test]
fn batch_reads_return_what_is_there_up_to_the_buffer() {
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    let mut buf = [[0u8; SIZE]; 3];
    assert_eq!(r.read_batch(&mut buf), Err(ReadError::NoData));
    for n in 0..5 {
        w.write(&elem(n)).unwrap();
    }
    assert_eq!(r.read_batch(&mut buf), Ok(3));
    assert_eq!(buf, [elem(0), elem(1), elem(2)]);
    let mut big = [[0xeeu8; SIZE]; 10];
    assert_eq!(r.read_batch(&mut big), Ok(2));
    assert_eq!(&big[..2], &[elem(3), elem(4)]);
    assert_eq!(
        big[2], [0xee; SIZE],
        "elements after the ones read are untouched"
    );
    assert_eq!(r.read_batch(&mut big), Err(ReadError::NoData));
    assert_eq!(r.read_count(), 5);
    // Across the end of the ring (slots 5, 6, 7, 0, 1), as bytes.
    for n in 5..10 {
        w.write(&elem(n)).unwrap();
    }
    let mut bytes = [0u8; 8 * SIZE];
    assert_eq!(r.read_batch_bytes(&mut bytes), Ok(5));
    for (i, e) in bytes.chunks(SIZE).take(5).enumerate() {
        assert_eq!(e, elem(5 + i as u64));
    }
    // A full ring at once, and one more is an overrun as for single reads.
    let batch: Vec<Elem> = (10..10 + E).map(elem).collect();
    w.write_batch(&batch).unwrap();
    assert_eq!(r.read_batch(&mut big), Ok(E as usize));
    assert_eq!(&big[..E as usize], &batch[..]);
    for n in 0..=E {
        w.write(&elem(100 + n)).unwrap();
    }
    assert_eq!(
        r.read_batch(&mut big),
        Err(ReadError::Overrun { lost: E + 1 })
    );
    w.write(&elem(200)).unwrap();
    assert_eq!(r.read_batch(&mut big), Ok(1));
    assert_eq!(big[0], elem(200));
}

#[test]
fn batch_reads_refuse_wrong_lengths() {
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    w.write(&elem(0)).unwrap();
    for len in [0, 1, SIZE - 1, SIZE + 1, 3 * SIZE - 1] {
        let mut buf = std::vec![0u8; len];
        assert_eq!(
            r.read_batch_bytes(&mut buf),
            Err(ReadError::WrongLength {
                element_size: SIZE,
                found: len
            })
        );
    }
    let mut empty: [Elem; 0] = [];
    assert_eq!(
        r.read_batch(&mut empty),
        Err(ReadError::WrongLength {
            element_size: SIZE,
            found: 0
        })
    );
    assert_eq!(
        r.read_batch(&mut [0u64; 4]),
        Err(ReadError::WrongLength {
            element_size: SIZE,
            found: 8
        })
    );
    assert_eq!(r.read_count(), 0);
    assert_eq!(r.read::<Elem>(), Ok(elem(0)));
}

#[test]
fn a_batch_is_checked_as_one_copy() {
    // The writer laps the oldest element of the batch during the copies: all of it is
    // discarded, and the reader skips to the newest complete element.
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    for n in 0..4 {
        w.write(&elem(n)).unwrap();
    }
    let mut n = 4;
    let got = read_batch_hooked(&mut r, 4, |step| {
        if step == Step::Copied {
            while n <= E {
                w.write(&elem(n)).unwrap();
                n += 1;
            }
        }
    });
    assert_eq!(got, Err(ReadError::Overrun { lost: E + 1 }));
    assert_eq!(r.read_count(), E + 1);

    // `wsc` up to `rc + elements` touches only slots after the batch's: accepted.
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    for n in 0..4 {
        w.write(&elem(n)).unwrap();
    }
    let p = peer(&m);
    let got = read_batch_hooked(&mut r, 4, |step| {
        if step == Step::Copied {
            p.store(Field::Wsc, E);
        }
    });
    assert_eq!(got, Ok((0..4).map(elem).collect()));

    // `wsc` below the end of the batch: the writer never started its last element.
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    for n in 0..4 {
        w.write(&elem(n)).unwrap();
    }
    let p = peer(&m);
    let got = read_batch_hooked(&mut r, 4, |step| {
        if step == Step::Copied {
            p.store(Field::Wsc, 3);
        }
    });
    assert_eq!(
        got,
        Err(ReadError::Misbehaviour(
            Misbehaviour::CountersInconsistent { wsc: 3, rc: 0 }
        ))
    );
    assert_eq!(r.read_count(), 4);

    // A restart during the copies.
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    for n in 0..4 {
        w.write(&elem(n)).unwrap();
    }
    let mut writer = Some(w);
    let got = read_batch_hooked(&mut r, 4, |step| {
        if step == Step::Copied {
            writer.as_mut().unwrap().reset(epoch(1000));
        }
    });
    assert_eq!(got, Err(ReadError::EpochChanged));
    assert_eq!(r.epoch(), None);
}

// ---- reading parts of an element --------------------------------------------------

#[test]
fn read_with_copies_parts_and_checks_them_as_one_element() {
    let m = memory(LEN);
    let mut w = writer(&m);
    let mut r = reader(&m);
    let mut calls = 0;
    // Before an element is published the closure does not run.
    assert_eq!(r.read_with(|_| calls += 1), Err(ReadError::EpochChanged));
    assert_eq!(r.read_with(|_| calls += 1), Err(ReadError::NoData));
    assert_eq!(calls, 0);
    for n in 0..20 {
        w.write(&elem(n)).unwrap();
        // The number, then two bytes of the pattern: what a length-prefixed reader
        // would do.
        let got = r.read_with(|e| {
            assert_eq!(e.size(), SIZE);
            let mut number = [0u8; 8];
            e.copy_to(0, &mut number).unwrap();
            let mut tail = [0u8; 2];
            e.copy_to(SIZE - 2, &mut tail).unwrap();
            (u64::from_le_bytes(number), tail)
        });
        let want = elem(n);
        assert_eq!(got, Ok((n, [want[SIZE - 2], want[SIZE - 1]])));
    }
    assert_eq!(r.read_count(), 20);
    // Copies beyond the element are refused and copy nothing.
    w.write(&elem(20)).unwrap();
    let got = r.read_with(|e| {
        let mut buf = [0xaau8; 4];
        let beyond = e.copy_to(SIZE - 3, &mut buf);
        let overflow = e.copy_to(usize::MAX, &mut buf[..1]);
        (beyond, overflow, buf)
    });
    let (beyond, overflow, buf) = got.unwrap();
    assert_eq!(
        beyond,
        Err(OutOfBounds {
            offset: SIZE - 3,
            len: 4
        })
    );
    assert_eq!(
        overflow,
        Err(OutOfBounds {
            offset: usize::MAX,
            len: 1
        })
    );
    assert_eq!(buf, [0xaa; 4]);
}

#[test]
fn read_with_discards_copies_the_writer_overtook() {
    // The writer laps the element while the closure copies it: the result is thrown
    // away and the reader skips to the newest complete element, as `read` does.
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    w.write(&elem(0)).unwrap();
    let mut n = 1;
    let got = r.read_with_hooked(
        |e| {
            let mut b = [0u8; SIZE];
            e.copy_to(0, &mut b).unwrap();
            b
        },
        |step| {
            if step == Step::Copied {
                while n <= E {
                    w.write(&elem(n)).unwrap();
                    n += 1;
                }
            }
        },
    );
    assert_eq!(got, Err(ReadError::Overrun { lost: E + 1 }));
    assert_eq!(r.read_count(), E + 1);
    // A restart during the copy.
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    w.write(&elem(0)).unwrap();
    let got = r.read_with_hooked(
        |_| (),
        |step| {
            if step == Step::Copied {
                w.reset(epoch(1000));
            }
        },
    );
    assert_eq!(got, Err(ReadError::EpochChanged));
    assert_eq!(r.epoch(), None);
}

// ---- channel states ------------------------------------------------------------

#[test]
fn inactive_channel_and_deactivation() {
    let m = memory(LEN);
    let mut r = reader(&m);
    assert_eq!(r.read::<Elem>(), Err(ReadError::Inactive));
    assert!(!r.has_pending_data());
    assert_eq!(r.drain(), Err(ReadError::Inactive));
    let (mut w, mut r) = pair(&m);
    w.write(&elem(1)).unwrap();
    let region = w.deactivate();
    assert!(!r.has_pending_data());
    assert_eq!(r.read::<Elem>(), Err(ReadError::Inactive));
    assert_eq!(r.epoch(), None);
    // Re-activated with the same epoch: still a fresh synchronisation.
    let mut w = Writer::init(region, PROTO, SIZE, epoch(77)).unwrap();
    assert!(r.has_pending_data());
    assert_eq!(r.read::<Elem>(), Err(ReadError::EpochChanged));
    w.write(&elem(2)).unwrap();
    assert_eq!(r.read::<Elem>(), Ok(elem(2)));
}

#[test]
fn wrong_transport_or_protocol_is_incompatible_and_retried() {
    let m = memory(LEN);
    let mut r = reader(&m);
    hostile_header(&m, |h| h.transport = 0x5348_4d53_7472_6561.into());
    for _ in 0..2 {
        assert_eq!(
            r.read::<Elem>(),
            Err(ReadError::Incompatible(Incompatible::Transport {
                found: 0x5348_4d53_7472_6561
            }))
        );
        // Refused for this epoch: no busy loop on a broken peer.
        assert!(!r.has_pending_data());
    }
    hostile_header(&m, |h| {
        h.epoch = 6.into();
        h.protocol = 0x7ade_5c54_9b08_e814.into();
    });
    assert!(r.has_pending_data());
    assert_eq!(
        r.read::<Elem>(),
        Err(ReadError::Incompatible(Incompatible::Protocol {
            found: 0x7ade_5c54_9b08_e814
        }))
    );
    assert_eq!(
        r.drain(),
        Err(ReadError::Incompatible(Incompatible::Protocol {
            found: 0x7ade_5c54_9b08_e814
        }))
    );
    assert_eq!(r.epoch(), None);
    // The writer fixes its header under a new epoch: accepted.
    hostile_header(&m, |h| h.epoch = 7.into());
    assert_eq!(r.read::<Elem>(), Err(ReadError::EpochChanged));
    assert_eq!(r.epoch(), Some(epoch(7)));
}

/// A header refused in an epoch and then repaired in place (same epoch) is pending
/// data again: a poller that sleeps while `has_pending_data` is false must not sleep
/// through a channel that `read` would now accept.
#[test]
fn a_refused_header_repaired_in_place_is_pending_again() {
    type Breakage = fn(&mut Header);
    let breakages: [(Breakage, Field); 5] = [
        (|h| h.transport = 0.into(), Field::Transport),
        (|h| h.protocol = (PROTO + 1).into(), Field::Protocol),
        (|h| h.size = (SIZE as u64 + 4).into(), Field::Size),
        (|h| h.elements = 0.into(), Field::Elements),
        (|h| h.elements = (E + 1).into(), Field::Elements),
    ];
    for (i, (breakage, field)) in breakages.into_iter().enumerate() {
        let m = memory(LEN);
        let mut r = reader(&m);
        hostile_header(&m, breakage);
        assert!(r.read::<Elem>().is_err());
        assert!(
            !r.has_pending_data(),
            "case {i}: refused, so nothing pending"
        );
        assert_eq!(r.epoch(), None);
        // Repaired without a new epoch, and an element published.
        let p = peer(&m);
        p.store(field, field.get(&Header::new(5, PROTO, SIZE as u64, E)));
        p.store(Field::Wsc, 1);
        p.write_bytes(64, &elem(9)).unwrap();
        p.store(Field::Wc, 1);
        assert!(r.has_pending_data(), "case {i}: repaired in place");
        assert_eq!(r.read::<Elem>(), Err(ReadError::EpochChanged));
        assert_eq!(r.read::<Elem>(), Ok(elem(9)));
        assert!(!r.has_pending_data());
    }
}

#[test]
fn element_size_other_than_the_protocols_is_refused() {
    let m = memory(LEN);
    let mut r = reader(&m);
    for (i, size) in [
        0,
        1,
        SIZE as u64 - 1,
        SIZE as u64 + 1,
        LEN as u64,
        1 << 40,
        u64::MAX,
    ]
    .into_iter()
    .enumerate()
    {
        // Geometry that would even fit the region in some cases: still refused.
        hostile_header(&m, |h| {
            h.epoch = (100 + i as u64).into();
            h.size = size.into();
            h.elements = 1.into();
            h.wc = 1.into();
            h.wsc = 1.into();
        });
        assert_eq!(
            r.read::<Elem>(),
            Err(ReadError::Incompatible(Incompatible::ElementSize {
                found: size
            }))
        );
        assert_eq!(
            r.read::<Elem>(),
            Err(ReadError::Incompatible(Incompatible::ElementSize {
                found: size
            }))
        );
    }
}

#[test]
fn zero_elements_is_misbehaviour() {
    let m = memory(LEN);
    let mut r = reader(&m);
    hostile_header(&m, |h| {
        h.elements = 0.into();
        h.wc = 3.into();
        h.wsc = 3.into();
    });
    for _ in 0..2 {
        assert_eq!(
            r.read::<Elem>(),
            Err(ReadError::Misbehaviour(Misbehaviour::NoElements))
        );
        assert!(!r.has_pending_data());
    }
}

#[test]
fn ring_beyond_the_region_or_overflowing_is_misbehaviour() {
    let m = memory(LEN);
    let mut r = reader(&m);
    for elements in [
        E + 1,
        1 << 32,
        u64::MAX / SIZE as u64,
        u64::MAX / SIZE as u64 + 1,
        u64::MAX,
    ] {
        hostile_header(&m, |h| {
            h.epoch = elements.into();
            h.elements = elements.into();
            h.wc = (elements - 1).into();
            h.wsc = elements.into();
        });
        assert_eq!(
            r.read::<Elem>(),
            Err(ReadError::Misbehaviour(Misbehaviour::RingOutsideRegion {
                elements
            }))
        );
        assert_eq!(r.elements(), None);
    }
    // `size * elements` fits 64 bits but `64 + size * elements` does not.
    let mut r1 = Reader::new(Region::from_atomics(&m).unwrap(), PROTO, 1).unwrap();
    hostile_header(&m, |h| {
        h.size = 1.into();
        h.elements = (u64::MAX - 10).into();
    });
    assert_eq!(
        r1.read::<u8>(),
        Err(ReadError::Misbehaviour(Misbehaviour::RingOutsideRegion {
            elements: u64::MAX - 10
        }))
    );
    // The largest ring that fits exactly is accepted.
    hostile_header(&m, |h| {
        h.epoch = 1.into();
        h.size = 1.into();
        h.elements = (LEN as u64 - 64).into();
    });
    assert_eq!(r1.read::<u8>(), Err(ReadError::EpochChanged));
    assert_eq!(r1.elements(), Some(LEN as u64 - 64));
}

#[test]
fn geometry_is_never_read_again_after_synchronisation() {
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    let p = peer(&m);
    p.store(Field::Elements, u64::MAX);
    p.store(Field::Size, 1 << 30);
    for n in 0..3 * E {
        w.write(&elem(n)).unwrap();
        assert_eq!(r.read::<Elem>(), Ok(elem(n)));
    }
    assert_eq!(r.elements(), Some(E));
}

// ---- counters -------------------------------------------------------------------

#[test]
fn a_full_ring_is_readable_and_one_more_is_an_overrun() {
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    for n in 0..E {
        w.write(&elem(n)).unwrap();
    }
    for n in 0..E {
        assert_eq!(r.read::<Elem>(), Ok(elem(n)));
    }
    for n in E..2 * E + 1 {
        w.write(&elem(n)).unwrap();
    }
    assert_eq!(r.read::<Elem>(), Err(ReadError::Overrun { lost: E + 1 }));
    assert_eq!(r.read_count(), 2 * E + 1);
    assert!(!r.has_pending_data());
    assert_eq!(r.read::<Elem>(), Err(ReadError::NoData));
    w.write(&elem(500)).unwrap();
    assert_eq!(r.read::<Elem>(), Ok(elem(500)));
}

#[test]
fn write_counter_jumping_ahead_is_an_overrun_and_the_reader_recovers() {
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    w.write(&elem(0)).unwrap();
    assert_eq!(r.read::<Elem>(), Ok(elem(0)));
    let p = peer(&m);
    p.store(Field::Wsc, 1_000_000_000_001);
    p.store(Field::Wc, 1_000_000_000_001);
    assert!(r.has_pending_data());
    assert_eq!(
        r.read::<Elem>(),
        Err(ReadError::Overrun {
            lost: 1_000_000_000_000
        })
    );
    assert_eq!(r.read_count(), 1_000_000_000_001);
    assert!(!r.has_pending_data());
    assert_eq!(r.read::<Elem>(), Err(ReadError::NoData));
    // The peer goes on from there: slot (10^12 + 1) mod 8 = 1.
    let slot = 64 + ((1_000_000_000_001 % E) as usize) * SIZE;
    p.store(Field::Wsc, 1_000_000_000_002);
    p.write_bytes(slot, &elem(7)).unwrap();
    p.store(Field::Wc, 1_000_000_000_002);
    assert_eq!(r.read::<Elem>(), Ok(elem(7)));
    // A jump to the largest counter value does not overflow anything either.
    p.store(Field::Wc, u64::MAX);
    p.store(Field::Wsc, u64::MAX);
    assert_eq!(
        r.read::<Elem>(),
        Err(ReadError::Overrun {
            lost: u64::MAX - 1_000_000_000_002
        })
    );
    assert_eq!(r.read::<Elem>(), Err(ReadError::NoData));
}

#[test]
fn a_write_counter_that_goes_back_is_reported_once_and_never_followed() {
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    for n in 0..6 {
        w.write(&elem(n)).unwrap();
        assert_eq!(r.read::<Elem>(), Ok(elem(n)));
    }
    let p = peer(&m);
    // Back without a new epoch (and without passing through epoch 0).
    p.store(Field::Wc, 2);
    assert!(r.has_pending_data(), "the read has something to report");
    assert_eq!(
        r.read::<Elem>(),
        Err(ReadError::Misbehaviour(Misbehaviour::WriteCounterBehind {
            wc: 2,
            rc: 6
        }))
    );
    // Reported once; nothing to do until the writer passes the read counter.
    assert!(!r.has_pending_data());
    assert_eq!(r.read::<Elem>(), Err(ReadError::NoData));
    assert_eq!(r.read_count(), 6);
    p.store(Field::Wc, 4);
    assert!(!r.has_pending_data());
    assert_eq!(r.read::<Elem>(), Err(ReadError::NoData));
    // The writer restores its counter: slots 2..6 hold elements this reader has
    // delivered already, and they are not delivered again.
    p.store(Field::Wc, 6);
    assert!(!r.has_pending_data());
    assert_eq!(r.read::<Elem>(), Err(ReadError::NoData));
    // New elements flow again.
    w.write(&elem(6)).unwrap();
    assert!(r.has_pending_data());
    assert_eq!(r.read::<Elem>(), Ok(elem(6)));
    // Going back again later is reported again.
    p.store(Field::Wc, 1);
    assert_eq!(
        r.read::<Elem>(),
        Err(ReadError::Misbehaviour(Misbehaviour::WriteCounterBehind {
            wc: 1,
            rc: 7
        }))
    );
    assert_eq!(r.read::<Elem>(), Err(ReadError::NoData));
}

#[test]
fn a_restart_with_a_constant_epoch_is_followed_when_seen_or_drained() {
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    for n in 0..5 {
        w.write(&elem(n)).unwrap();
        r.read::<Elem>().unwrap();
    }
    // Seen: the reader looks while the re-initialising writer is inactive.
    let region = w.deactivate();
    assert_eq!(r.read::<Elem>(), Err(ReadError::Inactive));
    let mut w = Writer::init(region, PROTO, SIZE, epoch(77)).unwrap();
    w.write(&elem(100)).unwrap();
    assert_eq!(r.read::<Elem>(), Err(ReadError::EpochChanged));
    assert_eq!(r.read::<Elem>(), Ok(elem(100)));

    // Not seen: the counters say the writer went back, which the reader reports and
    // does not follow by itself ...
    for n in 101..105 {
        w.write(&elem(n)).unwrap();
        r.read::<Elem>().unwrap();
    }
    w.reset(epoch(77));
    w.write(&elem(200)).unwrap();
    w.write(&elem(201)).unwrap();
    assert_eq!(
        r.read::<Elem>(),
        Err(ReadError::Misbehaviour(Misbehaviour::WriteCounterBehind {
            wc: 2,
            rc: 5
        }))
    );
    assert_eq!(r.read::<Elem>(), Err(ReadError::NoData));
    // ... until the application decides to follow it: `drain` re-bases the reader on
    // the writer's counter (and says once more that it went back).
    assert_eq!(
        r.drain(),
        Err(ReadError::Misbehaviour(Misbehaviour::WriteCounterBehind {
            wc: 2,
            rc: 5
        }))
    );
    assert_eq!(r.read_count(), 2);
    w.write(&elem(202)).unwrap();
    assert_eq!(r.read::<Elem>(), Ok(elem(202)));
}

#[test]
fn wsc_moving_during_the_copy_discards_the_copy() {
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    w.write(&elem(0)).unwrap();
    // While element 0 is copied, the writer laps the reader: elements 1..=E, the last
    // of which reuses slot 0.
    let mut n = 1;
    let got = read_hooked(&mut r, |step| {
        if step == Step::Copied {
            while n <= E {
                w.write(&elem(n)).unwrap();
                n += 1;
            }
        }
    });
    assert_eq!(got, Err(ReadError::Overrun { lost: E + 1 }));
    assert_eq!(r.read_count(), E + 1);

    // Only `wsc` moves (the writer has started, not finished, the overwrite of the
    // slot and has already changed some of its bytes).
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    for n in 0..E {
        w.write(&elem(n)).unwrap();
    }
    let p = peer(&m);
    let got = read_hooked(&mut r, |step| {
        if step == Step::Copied {
            p.store(Field::Wsc, E + 1);
            p.write_bytes(64, &elem(E)).unwrap();
        }
    });
    assert_eq!(got, Err(ReadError::Overrun { lost: E }));
    assert_eq!(r.read_count(), E);

    // `wsc == rc + elements` is the element in the slot *before* ours: no overrun.
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    w.write(&elem(0)).unwrap();
    let p = peer(&m);
    let got = read_hooked(&mut r, |step| {
        if step == Step::Copied {
            p.store(Field::Wsc, E);
        }
    });
    assert_eq!(got, Ok(elem(0)));
}

#[test]
fn wsc_that_never_started_the_element_is_misbehaviour() {
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    for n in 0..3 {
        w.write(&elem(n)).unwrap();
    }
    let p = peer(&m);
    let got = read_hooked(&mut r, |step| {
        if step == Step::Copied {
            p.store(Field::Wsc, 0);
        }
    });
    assert_eq!(
        got,
        Err(ReadError::Misbehaviour(
            Misbehaviour::CountersInconsistent { wsc: 0, rc: 0 }
        ))
    );
    // Skipped to the write counter seen: no endless retries of the same element.
    assert_eq!(r.read_count(), 3);
    assert_eq!(r.read::<Elem>(), Err(ReadError::NoData));

    // `wsc` says overrun but `wc` went back below the element.
    w.write(&elem(3)).unwrap();
    let got = read_hooked(&mut r, |step| {
        if step == Step::Copied {
            p.store(Field::Wsc, 1000);
            p.store(Field::Wc, 1);
        }
    });
    assert_eq!(
        got,
        Err(ReadError::Misbehaviour(
            Misbehaviour::CountersInconsistent { wsc: 1000, rc: 3 }
        ))
    );
    assert_eq!(r.read_count(), 4);
}

// ---- epochs -----------------------------------------------------------------------

#[test]
fn epoch_change_between_reads_resynchronises() {
    // Nothing left unread: the next read sees the new epoch and synchronises.
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    w.write(&elem(0)).unwrap();
    assert_eq!(r.read::<Elem>(), Ok(elem(0)));
    w.reset(epoch(78));
    w.write(&elem(10)).unwrap();
    assert!(r.has_pending_data());
    assert_eq!(r.read::<Elem>(), Err(ReadError::EpochChanged));
    assert_eq!((r.epoch(), r.read_count()), (Some(epoch(78)), 0));
    assert_eq!(r.read::<Elem>(), Ok(elem(10)));
    assert_eq!(r.read::<Elem>(), Err(ReadError::NoData));

    // Elements the reader knew to be published were left: the next read copies one
    // without looking at the header first, and the check after the copy sees the new
    // epoch (the copy is discarded); the read after that synchronises.
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    for n in 0..4 {
        w.write(&elem(n)).unwrap();
    }
    assert_eq!(r.read::<Elem>(), Ok(elem(0)));
    w.reset(epoch(78));
    w.write(&elem(10)).unwrap();
    assert!(r.has_pending_data());
    assert_eq!(r.read::<Elem>(), Err(ReadError::EpochChanged));
    assert_eq!(r.epoch(), None);
    assert_eq!(r.read::<Elem>(), Err(ReadError::EpochChanged));
    assert_eq!((r.epoch(), r.read_count()), (Some(epoch(78)), 0));
    assert_eq!(r.read::<Elem>(), Ok(elem(10)));
    assert_eq!(r.read::<Elem>(), Err(ReadError::NoData));
}

/// A reader with elements it knew to be published reads them without loading the
/// header first; whatever the writer did meanwhile, the checks after the copy decide.
#[test]
fn known_elements_are_still_checked_after_the_copy() {
    // Deactivated: the copy is discarded, then the channel is inactive.
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    for n in 0..3 {
        w.write(&elem(n)).unwrap();
    }
    assert_eq!(r.read::<Elem>(), Ok(elem(0)));
    let region = w.deactivate();
    assert_eq!(r.read::<Elem>(), Err(ReadError::EpochChanged));
    assert_eq!(r.read::<Elem>(), Err(ReadError::Inactive));

    // Re-initialised with the same epoch: `wsc` starts again below the element.
    let mut w = Writer::init(region, PROTO, SIZE, epoch(77)).unwrap();
    let mut r = reader(&m);
    assert_eq!(r.read::<Elem>(), Err(ReadError::EpochChanged));
    for n in 0..4 {
        w.write(&elem(n)).unwrap();
    }
    assert_eq!(r.read::<Elem>(), Ok(elem(0)));
    w.reset(epoch(77));
    w.write(&elem(50)).unwrap();
    assert_eq!(
        r.read::<Elem>(),
        Err(ReadError::Misbehaviour(
            Misbehaviour::CountersInconsistent { wsc: 1, rc: 1 }
        ))
    );
    // The read counter moved forward to the write counter known before (never back);
    // now the counters say the writer went back.
    assert_eq!(r.read_count(), 4);
    assert_eq!(
        r.read::<Elem>(),
        Err(ReadError::Misbehaviour(Misbehaviour::WriteCounterBehind {
            wc: 1,
            rc: 4
        }))
    );

    // Lapped: an overrun as if the write counter had been loaded.
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    for n in 0..4 {
        w.write(&elem(n)).unwrap();
    }
    assert_eq!(r.read::<Elem>(), Ok(elem(0)));
    for n in 4..4 + 2 * E {
        w.write(&elem(n)).unwrap();
    }
    assert_eq!(
        r.read::<Elem>(),
        Err(ReadError::Overrun { lost: 3 + 2 * E })
    );
    assert_eq!(r.read_count(), 4 + 2 * E);
    w.write(&elem(99)).unwrap();
    assert_eq!(r.read::<Elem>(), Ok(elem(99)));
}

#[test]
fn epoch_change_during_a_read_discards_the_copy() {
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    w.write(&elem(0)).unwrap();
    w.write(&elem(1)).unwrap();
    let region = Region::from_atomics(&m).unwrap();
    let mut writer = Some(w);
    let got = read_hooked(&mut r, |step| {
        if step == Step::Copied {
            // The writer restarts while we copy: clears the ring, new epoch.
            writer.as_mut().unwrap().reset(epoch(99));
        }
    });
    assert_eq!(got, Err(ReadError::EpochChanged));
    assert_eq!(r.epoch(), None);
    let mut w = writer.take().unwrap();
    w.write(&elem(20)).unwrap();
    assert_eq!(r.read::<Elem>(), Err(ReadError::EpochChanged));
    assert_eq!(r.read::<Elem>(), Ok(elem(20)));

    // Deactivated during the copy.
    w.write(&elem(21)).unwrap();
    let p = peer(&m);
    let got = read_hooked(&mut r, |step| {
        if step == Step::Copied {
            p.store(Field::Epoch, 0);
        }
    });
    assert_eq!(got, Err(ReadError::EpochChanged));
    assert_eq!(r.read::<Elem>(), Err(ReadError::Inactive));
    assert_eq!(region.load(Field::Epoch), 0);
}

#[test]
fn epoch_change_during_synchronisation_is_not_accepted() {
    let m = memory(LEN);
    let mut w = writer(&m);
    let mut r = reader(&m);
    let p = peer(&m);
    let got = read_hooked(&mut r, |step| {
        if step == Step::Synchronising {
            // Re-initialisation with another geometry races with our header loads.
            p.store(Field::Epoch, 0);
            p.store(Field::Elements, 1);
            p.store(Field::Epoch, 1234);
        }
    });
    assert_eq!(got, Err(ReadError::EpochChanged));
    assert_eq!(r.epoch(), None);
    assert!(r.has_pending_data());
    // Next call synchronises to epoch 1234 with its (valid) geometry.
    assert_eq!(r.read::<Elem>(), Err(ReadError::EpochChanged));
    assert_eq!((r.epoch(), r.elements()), (Some(epoch(1234)), Some(1)));
    w.reset(epoch(5));
    w.write(&elem(1)).unwrap();
    assert_eq!(r.read::<Elem>(), Err(ReadError::EpochChanged));
    assert_eq!(r.read::<Elem>(), Ok(elem(1)));
}

#[test]
fn counter_verdicts_are_not_blamed_on_a_restart() {
    // The writer restarts right after the reader loaded the (old) epoch: the reader
    // then sees the new, smaller write counter, or a larger one from a fast new
    // incarnation. Both verdicts re-check the epoch and report the restart instead.
    let m = memory(LEN);
    let (mut w, mut r) = pair(&m);
    for n in 0..3 {
        w.write(&elem(n)).unwrap();
        r.read::<Elem>().unwrap();
    }
    let mut writer = Some(w);
    let got = read_hooked(&mut r, |step| {
        if step == Step::EpochLoaded {
            let w = writer.as_mut().unwrap();
            w.reset(epoch(4242));
            w.write(&elem(0)).unwrap();
        }
    });
    assert_eq!(got, Err(ReadError::EpochChanged));
    assert_eq!(r.epoch(), None);
    let mut w = writer.take().unwrap();
    assert_eq!(r.read::<Elem>(), Err(ReadError::EpochChanged));
    assert_eq!(r.read::<Elem>(), Ok(elem(0)));
    let mut writer = Some(w);
    let got = read_hooked(&mut r, |step| {
        if step == Step::EpochLoaded {
            let w = writer.as_mut().unwrap();
            w.reset(epoch(4243));
            for n in 0..3 * E {
                w.write(&elem(n)).unwrap();
            }
        }
    });
    assert_eq!(got, Err(ReadError::EpochChanged));
    w = writer.take().unwrap();
    assert_eq!(r.read::<Elem>(), Err(ReadError::EpochChanged));
    assert_eq!(r.read::<Elem>(), Err(ReadError::Overrun { lost: 3 * E }));
    w.write(&elem(1)).unwrap();
    assert_eq!(r.read::<Elem>(), Ok(elem(1)));
}

// ---- drain and pending ------------------------------------------------------------

#[test]
fn drain_discards_everything_and_synchronises_first() {
    let m = memory(LEN);
    let mut w = writer(&m);
    for n in 0..5 {
        w.write(&elem(n)).unwrap();
    }
    let mut r = reader(&m);
    assert_eq!(r.drain(), Ok(5));
    assert_eq!(r.read::<Elem>(), Err(ReadError::NoData));
    assert_eq!(r.drain(), Ok(0));
    w.write(&elem(5)).unwrap();
    assert_eq!(r.read::<Elem>(), Ok(elem(5)));
    peer(&m).store(Field::Wc, 1);
    assert_eq!(
        r.drain(),
        Err(ReadError::Misbehaviour(Misbehaviour::WriteCounterBehind {
            wc: 1,
            rc: 6
        }))
    );
    assert_eq!(r.read_count(), 1);
}

#[test]
fn pending_data_changes_nothing() {
    let m = memory(LEN);
    let mut w = writer(&m);
    w.write(&elem(0)).unwrap();
    let mut r = reader(&m);
    for _ in 0..3 {
        assert!(r.has_pending_data());
    }
    assert_eq!((r.epoch(), r.read_count()), (None, 0));
    assert_eq!(r.read::<Elem>(), Err(ReadError::EpochChanged));
    assert!(r.has_pending_data());
    assert_eq!(r.read::<Elem>(), Ok(elem(0)));
    assert!(!r.has_pending_data());
}

// ---- random hostile headers ---------------------------------------------------

#[cfg(not(miri))] // thousands of cases: too slow under Miri; the cases above cover it
mod random {
    use super::*;
    use proptest::prelude::*;

    fn interesting() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(1),
            Just(E),
            Just(E + 1),
            Just(SIZE as u64),
            Just(u64::MAX),
            Just(u64::MAX / SIZE as u64 + 1),
            0u64..64,
            any::<u64>(),
        ]
    }

    proptest! {
        /// Honest writes (single and batched) and reads (single and batched) in any
        /// order deliver exactly the model's elements: every element in order, and an
        /// overrun of the right size whenever the writer is more than a ring ahead.
        #[test]
        fn honest_traffic_matches_the_model(
            ops in proptest::collection::vec((any::<bool>(), 1usize..12), 1..60),
        ) {
            let m = memory(LEN);
            let (mut w, mut r) = pair(&m);
            let mut written = 0u64;
            let mut expected = 0u64;
            for (write, k) in ops {
                if write {
                    let batch: Vec<Elem> = (written..written + k as u64).map(elem).collect();
                    if k % 2 == 0 {
                        w.write_batch(&batch).unwrap();
                    } else {
                        for e in &batch {
                            w.write(e).unwrap();
                        }
                    }
                    written += k as u64;
                    continue;
                }
                let mut buf = std::vec![[0u8; SIZE]; k];
                let got = r.read_batch(&mut buf);
                if written == expected {
                    prop_assert_eq!(got, Err(ReadError::NoData));
                } else if written - expected > E {
                    prop_assert_eq!(got, Err(ReadError::Overrun { lost: written - expected }));
                    expected = written;
                } else {
                    let n = (written - expected).min(k as u64);
                    prop_assert_eq!(got, Ok(n as usize));
                    for (i, e) in buf.iter().take(n as usize).enumerate() {
                        prop_assert_eq!(*e, elem(expected + i as u64));
                    }
                    expected += n;
                }
                prop_assert_eq!(r.read_count(), expected);
            }
        }

        /// Whatever the header says, the reader neither panics nor returns an element
        /// from a geometry it should have refused, and stays within its counters.
        #[test]
        fn hostile_headers_never_break_the_reader(
            fields in proptest::array::uniform8(interesting()),
            marker in any::<bool>(),
            proto in any::<bool>(),
            rounds in 1usize..6,
        ) {
            let m = memory(LEN);
            let p = peer(&m);
            for (f, v) in Field::ALL.into_iter().zip(fields) {
                p.store(f, v);
            }
            if marker {
                p.store(Field::Transport, TRANSPORT_MARKER);
            }
            if proto {
                p.store(Field::Protocol, PROTO);
            }
            let h = p.header();
            let valid = h.epoch.get() != 0
                && h.transport.get() == TRANSPORT_MARKER
                && h.protocol.get() == PROTO
                && h.size.get() == SIZE as u64
                && h.elements.get() >= 1
                && h.elements.get() <= E;
            let mut r = reader(&m);
            for _ in 0..rounds {
                let res = r.read::<Elem>();
                if res.is_ok() {
                    prop_assert!(valid);
                }
                if let Err(ReadError::Misbehaviour(Misbehaviour::RingOutsideRegion { .. } | Misbehaviour::NoElements)) = res {
                    prop_assert!(!valid);
                }
                let _ = r.has_pending_data();
                let _ = r.drain();
            }
        }
    }
}

/// Large elements (the vector paths of the copy engine on x86-64) arrive intact both
/// ways a reader copies them: from the end when its last read found nothing new (it
/// is right behind the writer), from the start when elements were waiting.
#[test]
fn large_elements_arrive_intact_from_either_end() {
    for size in [65usize, 100, 1516] {
        let ring = 5u64;
        let m = memory(64 + size * ring as usize);
        let mut w =
            Writer::init(RegionMut::from_atomics(&m).unwrap(), PROTO, size, epoch(3)).unwrap();
        let mut r = Reader::new(Region::from_atomics(&m).unwrap(), PROTO, size).unwrap();
        let mut got = std::vec![0u8; size];
        assert_eq!(r.read_bytes(&mut got), Err(ReadError::EpochChanged));
        let element = |n: u64| -> Vec<u8> {
            (0..size)
                .map(|i| (n as usize * 7 + i * 13 + i / 256) as u8)
                .collect()
        };
        let mut n = 0u64;
        for round in 0..12u64 {
            // Caught up (nothing new), then one element: copied from its end.
            assert_eq!(r.read_bytes(&mut got), Err(ReadError::NoData));
            assert!(r.copies_from_end());
            w.write_bytes(&element(n)).unwrap();
            r.read_bytes(&mut got).unwrap();
            assert_eq!(got, element(n), "size {size}, element {n} from the end");
            n += 1;
            // Several waiting: copied from the start.
            let waiting = 1 + round % 3;
            for k in 0..waiting {
                w.write_bytes(&element(n + k)).unwrap();
            }
            for k in 0..waiting {
                assert!(!r.copies_from_end());
                r.read_bytes(&mut got).unwrap();
                assert_eq!(
                    got,
                    element(n + k),
                    "size {size}, element {} from the start",
                    n + k
                );
            }
            n += waiting;
        }
    }
}
