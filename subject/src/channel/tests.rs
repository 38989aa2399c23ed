use super::*;
use core::sync::atomic::{AtomicU64, Ordering};
use muen_channel::{Field, Incompatible, Misbehaviour};
use muen_sim::{memory, page, shared, SimSys};
use muen_sinfo::MemoryKind;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The tests' element: a number and a few bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Note {
    number: u64,
    text: [u8; 24],
}

impl ElementType for Note {
    const PROTOCOL: u64 = 0x6e6f_7465_0000_0001;
}

/// Another type of the same size and another protocol.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Other([u8; 32]);

impl ElementType for Other {
    const PROTOCOL: u64 = 0x6f74_6865_7200_0001;
}

/// A type of another size with `Note`'s protocol.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Longer([u8; 40]);

impl ElementType for Longer {
    const PROTOCOL: u64 = Note::PROTOCOL;
}

fn note(number: u64) -> Note {
    let mut text = [0u8; 24];
    text[..8].copy_from_slice(&number.to_le_bytes());
    Note { number, text }
}

/// The channel `notes` (`bytes` long) as its writer `a` and its reader `b` see it
/// (event 5 for `a`, vector 40 for `b`, if `signal`).
fn pair(
    bytes: usize,
    signal: bool,
) -> (
    SubjectInfo<'static>,
    SubjectInfo<'static>,
    &'static [AtomicU64],
) {
    let words = shared(bytes);
    let writer = page("a", |b| {
        b.memory("notes", memory(words, MemoryKind::SubjectChannel, true))
            .unwrap();
        if signal {
            b.event("notes", 5).unwrap();
        }
    });
    let reader = page("b", |b| {
        b.memory("notes", memory(words, MemoryKind::SubjectChannel, false))
            .unwrap();
        if signal {
            b.vector("notes", 40).unwrap();
        }
    });
    (writer, reader, words)
}

fn ends(
    sys: &'static SimSys,
    bytes: usize,
    signal: bool,
) -> (
    ChannelWriter<'static, Note, SimSys>,
    ChannelReader<'static, Note>,
    &'static [AtomicU64],
) {
    let (w, r, words) = pair(bytes, signal);
    // SAFETY: the pages name leaked memory; each end is taken once.
    let writer = unsafe { ChannelWriter::acquire(sys, &w, "notes") }.unwrap();
    // SAFETY: as above.
    let reader = unsafe { ChannelReader::acquire(&r, "notes") }.unwrap();
    (writer, reader, words)
}

#[test]
fn elements_arrive_whole_in_order_and_each_send_signals() {
    let sys = SimSys::leaked();
    let (mut tx, mut rx, _) = ends(sys, 0x1000, true);
    assert_eq!(rx.vector(), Some(Vector(40)));
    assert_eq!(tx.event().map(Event::number), Some(5));
    assert_eq!(tx.capacity(), (0x1000 - 64) / 32);
    // The writer's first start is no restart for a reader that never followed one.
    assert!(rx.has_data());
    assert_eq!(rx.receive(), Err(ChannelError::Again));
    assert!(!rx.has_data());
    for n in 1..=5 {
        tx.send(&note(n));
    }
    assert_eq!(sys.take_events(), [5; 5]);
    assert!(rx.has_data());
    for n in 1..=5 {
        assert_eq!(rx.receive(), Ok(note(n)));
    }
    assert_eq!(rx.receive(), Err(ChannelError::Again));
    assert!(!rx.has_data());
    // A batch: one signal; received in a batch or one by one.
    let batch: Vec<Note> = (6..=15).map(note).collect();
    tx.send_batch(&batch);
    tx.send_batch(&[]);
    assert_eq!(sys.take_events(), [5]);
    let mut out = [note(0); 4];
    assert_eq!(rx.receive_batch(&mut out), Ok(4));
    assert_eq!(out, [note(6), note(7), note(8), note(9)]);
    assert_eq!(rx.receive(), Ok(note(10)));
    let mut many = [note(0); 16];
    assert_eq!(rx.receive_batch(&mut many), Ok(5));
    assert_eq!(many[..5], batch[5..]);
    assert_eq!(rx.receive_batch(&mut many), Err(ChannelError::Again));
    assert_eq!(rx.receive_batch(&mut []), Ok(0));
    assert_eq!(tx.sent(), 15);
    assert_eq!(rx.stats().received, 15);
    assert_eq!(rx.stats().restarts, 0);
}

#[test]
fn without_an_event_nothing_is_signalled() {
    let sys = SimSys::leaked();
    let (mut tx, mut rx, _) = ends(sys, 0x1000, false);
    assert_eq!(rx.vector(), None);
    tx.send(&note(1));
    tx.send_batch(&[note(2)]);
    assert!(sys.events().is_empty());
    assert_eq!(rx.receive(), Ok(note(1)));
    assert_eq!(rx.receive(), Ok(note(2)));
}

#[test]
fn restarts_overruns_and_wrong_types_are_reported_and_survived() {
    let sys = SimSys::leaked();
    let (w, r, words) = pair(0x1000, true);
    // SAFETY: leaked memory; one end each (the second writer below replaces the first,
    // as a restarted subject would).
    let mut tx = unsafe { ChannelWriter::<Note, _>::acquire(sys, &w, "notes") }.unwrap();
    // SAFETY: as above.
    let mut rx = unsafe { ChannelReader::<Note>::acquire(&r, "notes") }.unwrap();
    tx.send(&note(1));
    assert_eq!(rx.receive(), Ok(note(1)));

    // The writer restarts (a later TSC, a new epoch): reported once, then its elements.
    sys.set_tsc(muen_abi::time::Tsc::from_ticks(sys.tsc().ticks() + 1000));
    tx.send(&note(2)); // lost with the restart
                       // SAFETY: as above.
    let mut tx = unsafe { ChannelWriter::<Note, _>::acquire(sys, &w, "notes") }.unwrap();
    tx.send(&note(3));
    assert!(rx.has_data());
    assert_eq!(rx.receive(), Err(ChannelError::PeerRestarted));
    assert_eq!(rx.receive(), Ok(note(3)));
    assert_eq!(rx.stats().restarts, 1);

    // An overrun: more than the ring holds; the exact number skipped, then new ones.
    let ring = tx.capacity();
    for n in 0..ring + 3 {
        tx.send(&note(100 + n));
    }
    assert_eq!(rx.receive(), Err(ChannelError::Lost { lost: ring + 3 }));
    assert_eq!(rx.receive(), Err(ChannelError::Again));
    tx.send(&note(7));
    assert_eq!(rx.receive(), Ok(note(7)));
    assert_eq!((rx.stats().overruns, rx.stats().lost), (1, ring + 3));

    // A writer of another type (protocol) or another size: refused, no element, no
    // pending data; a writer of the right type again: it works.
    for restart in 0..2 {
        sys.set_tsc(muen_abi::time::Tsc::from_ticks(sys.tsc().ticks() + 1000));
        if restart == 0 {
            // SAFETY: as above.
            let mut other =
                unsafe { ChannelWriter::<Other, _>::acquire(sys, &w, "notes") }.unwrap();
            other.send(&Other([0xff; 32]));
            assert_eq!(
                rx.receive(),
                Err(ChannelError::WrongType(Incompatible::Protocol {
                    found: Other::PROTOCOL
                }))
            );
        } else {
            // SAFETY: as above.
            let mut longer =
                unsafe { ChannelWriter::<Longer, _>::acquire(sys, &w, "notes") }.unwrap();
            longer.send(&Longer([0xff; 40]));
            assert_eq!(
                rx.receive(),
                Err(ChannelError::WrongType(Incompatible::ElementSize {
                    found: 40
                }))
            );
        }
        assert!(!rx.has_data());
        assert_eq!(
            rx.receive(),
            Err(ChannelError::WrongType(match restart {
                0 => Incompatible::Protocol {
                    found: Other::PROTOCOL
                },
                _ => Incompatible::ElementSize { found: 40 },
            }))
        );
    }
    sys.set_tsc(muen_abi::time::Tsc::from_ticks(sys.tsc().ticks() + 1000));
    // SAFETY: as above.
    let mut tx = unsafe { ChannelWriter::<Note, _>::acquire(sys, &w, "notes") }.unwrap();
    tx.send(&note(8));
    assert_eq!(rx.receive(), Err(ChannelError::PeerRestarted));
    assert_eq!(rx.receive(), Ok(note(8)));
    assert_eq!(rx.stats().wrong_type, 4);

    // A write counter that goes back: reported once, nothing delivered twice.
    tx.send(&note(9));
    assert_eq!(rx.receive(), Ok(note(9)));
    let wc = Field::Wc.offset() / 8;
    let old = words[wc].load(Ordering::Relaxed);
    words[wc].store(old - 2, Ordering::Relaxed);
    assert!(matches!(
        rx.receive(),
        Err(ChannelError::PeerMisbehaved(
            Misbehaviour::WriteCounterBehind { .. }
        ))
    ));
    assert_eq!(rx.receive(), Err(ChannelError::Again));
    words[wc].store(old, Ordering::Relaxed);
    assert_eq!(rx.receive(), Err(ChannelError::Again), "not note 9 again");
    assert_eq!(rx.stats().misbehaviour, 1);
    assert!(ChannelError::Lost { lost: 1 }.lost_elements());
    assert!(!ChannelError::Again.lost_elements());
}

#[test]
fn a_restart_with_elements_left_unread_is_reported_once() {
    let sys = SimSys::leaked();
    let (w, r, _) = pair(0x1000, true);
    // SAFETY: leaked memory; one end each (the second writer replaces the first, as a
    // restarted subject would).
    let mut tx = unsafe { ChannelWriter::<Note, _>::acquire(sys, &w, "notes") }.unwrap();
    // SAFETY: as above.
    let mut rx = unsafe { ChannelReader::<Note>::acquire(&r, "notes") }.unwrap();
    for n in 1..=3 {
        tx.send(&note(n));
    }
    // The reader knows three elements are published and reads one ...
    assert_eq!(rx.receive(), Ok(note(1)));
    // ... the writer restarts: the copy of element 2 is discarded for the new epoch,
    // and the reader synchronises to it: one restart, one report.
    sys.set_tsc(muen_abi::time::Tsc::from_ticks(sys.tsc().ticks() + 1000));
    // SAFETY: as above.
    let mut tx = unsafe { ChannelWriter::<Note, _>::acquire(sys, &w, "notes") }.unwrap();
    assert_eq!(rx.receive(), Err(ChannelError::PeerRestarted));
    assert_eq!(rx.receive(), Err(ChannelError::Again));
    tx.send(&note(4));
    assert_eq!(rx.receive(), Ok(note(4)));
    assert_eq!(rx.stats().restarts, 1);
}

#[test]
fn drain_skips_what_was_written_before() {
    let sys = SimSys::leaked();
    let (mut tx, mut rx, _) = ends(sys, 0x1000, true);
    for n in 0..7 {
        tx.send(&note(n));
    }
    assert_eq!(rx.drain(), Ok(7));
    assert_eq!(rx.receive(), Err(ChannelError::Again));
    tx.send(&note(50));
    assert_eq!(rx.receive(), Ok(note(50)));
}

#[test]
fn acquisition_checks_name_region_direction_and_size() {
    let sys = SimSys::leaked();
    let (w, r, _) = pair(0x1000, true);
    let tiny = shared(64);
    let other = page("c", |b| {
        b.memory("tiny", memory(tiny, MemoryKind::SubjectChannel, false))
            .unwrap()
            .memory("ram", memory(shared(0x1000), MemoryKind::Subject, true))
            .unwrap()
            .memory("plain", memory(shared(0x1000), MemoryKind::Subject, true))
            .unwrap();
    });
    let reader = |info: &SubjectInfo<'_>, name: &str| {
        // SAFETY: leaked memory.
        unsafe { ChannelReader::<Note>::acquire(info, name) }
            .err()
            .map(|e| e.to_string())
    };
    let writer = |info: &SubjectInfo<'_>, name: &str| {
        // SAFETY: leaked memory.
        unsafe { ChannelWriter::<Note, _>::acquire(sys, info, name) }
            .err()
            .map(|e| e.to_string())
    };
    assert_eq!(
        reader(&r, "no|tes"),
        Some(
            "channel name `no|tes` has the character '|' at position 2, which is not allowed"
                .into()
        )
    );
    assert!(reader(&other, "ram")
        .unwrap()
        .starts_with("channel name `ram` is reserved"));
    assert_eq!(
        reader(&r, "missing"),
        Some("region `missing`: not in the subject info page".into())
    );
    assert_eq!(
        writer(&other, "plain"),
        Some("region `plain`: memory kind subject, expected subject_channel".into())
    );
    assert_eq!(
        reader(&w, "notes"),
        Some(
            "region `notes`: writable, so this subject is the channel's writer; a reader \
             takes a channel the subject reads"
                .into()
        )
    );
    assert_eq!(
        writer(&r, "notes"),
        Some("region `notes`: not writable, but this subject writes it".into())
    );
    assert!(
        reader(&other, "tiny")
            .unwrap()
            .starts_with("region `tiny`: "),
        "{:?}",
        reader(&other, "tiny")
    );
}
