//! Fuzzes `muen_channel::Reader` against a hostile writer.
//!
//! The input chooses a channel geometry (element size, ring length) and a sequence of
//! operations. The writer's operations are arbitrary header stores (of any value, of
//! the value an honest writer would store, or of a value near the current one),
//! arbitrary bytes anywhere in the region, honest element writes and honest
//! (re)initialisations. The reader's operations are single reads (bytes, typed, and in
//! two parts through `read_with`), batch reads, drains and pending-data queries, and
//! reads during which the writer acts at one of the points inside the read (after the
//! epoch check, during synchronisation, after the copies).
//!
//! Checked:
//! - nothing panics; the region ends at an inaccessible page (a read past it faults),
//!   and the reader's buffers are followed by bytes that must stay untouched;
//! - between reads (the channel does not change during the call) every result, error
//!   value and returned byte is exactly what a model of the reader's specification
//!   (`docs/channels.md`) says, and so is the reader's private state afterwards:
//!   elements are whole, come from the right slots, and are returned only after their
//!   checks passed;
//! - with the writer acting during a read, the result is consistent: returned elements
//!   are the slot contents the reader copied, the counters it checked accepted them,
//!   error values describe the reader's counter moves;
//! - the read counter never goes back within an epoch (except by `drain`), and no
//!   element number is delivered twice.
//!
//! Run: `cargo +nightly fuzz run reader` in `channels/` (see docs/channels.md).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use muen_channel::reader::Step;
use muen_channel::{
    epoch_from, Field, Header, Incompatible, Misbehaviour, ReadError, Reader, Region, RegionMut,
    Writer, HEADER_SIZE, TRANSPORT_MARKER,
};

const PROTO: u64 = 0x6675_7a7a_6368_616e;
/// Element sizes: odd, unaligned, a word, a debuglog element, larger.
const SIZES: [usize; 6] = [1, 3, 8, 20, 64, 100];
const MAX_SLOTS: usize = 40;
const PAGE: usize = 4096;
/// Room for the largest region (64 + 100 * 40 + 99 bytes), in pages.
const REGION_PAGES: usize = 2;
/// Bytes after a reader's buffer that must stay untouched.
const SENTINEL: usize = 64;

#[derive(Arbitrary, Debug)]
struct Input {
    size: u8,
    slots: u8,
    pad: u8,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Value {
    /// What an honest writer of this channel would store.
    Honest,
    Small(u8),
    /// The current value plus this.
    Near(i8),
    /// A value at the edge of the counters' range (see `EDGES`).
    Edge(u8),
    Any(u64),
}

const EDGES: [u64; 8] = [
    u64::MAX,
    u64::MAX - 1,
    u64::MAX - 40,
    1 << 63,
    (1 << 63) - 1,
    1 << 32,
    u32::MAX as u64,
    0,
];

#[derive(Arbitrary, Debug, Clone)]
enum Action {
    Store(u8, Value),
    Bytes { offset: u16, len: u16, seed: u8 },
    Write { count: u8 },
    Init { epoch: u64 },
}

#[derive(Arbitrary, Debug)]
enum Op {
    Writer(Action),
    Read,
    /// Several reads in a row (single or batch), as a poll loop does.
    Reads {
        count: u8,
        capacity: u8,
    },
    ReadTyped,
    ReadBatch {
        capacity: u8,
    },
    /// One element through `read_with`, copied in two parts split here (and a copy
    /// beyond the element, which must fail and copy nothing).
    ReadParts {
        split: u8,
    },
    Drain,
    Pending,
    During {
        capacity: u8,
        step: u8,
        actions: Vec<Action>,
    },
}

/// Page-aligned memory followed by an inaccessible page, mapped once per process.
fn mapping() -> usize {
    static MAP: OnceLock<usize> = OnceLock::new();
    *MAP.get_or_init(|| {
        let len = (REGION_PAGES + 1) * PAGE;
        // SAFETY: an anonymous private mapping; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap");
        // SAFETY: the last page of the mapping just made.
        let rc = unsafe {
            libc::mprotect(
                base.cast::<u8>().add(REGION_PAGES * PAGE).cast(),
                PAGE,
                libc::PROT_NONE,
            )
        };
        assert_eq!(rc, 0, "mprotect");
        base as usize
    })
}

/// The hostile writer: a writable handle on the region and what it last initialised.
struct World<'a> {
    mem: RegionMut<'a>,
    size: usize,
    /// `(len - 64) / size`: the ring an honest writer of this region uses.
    slots: u64,
    epoch: u64,
}

impl World<'_> {
    fn honest(&self, field: Field) -> u64 {
        match field {
            Field::Transport => TRANSPORT_MARKER,
            Field::Epoch => self.epoch,
            Field::Protocol => PROTO,
            Field::Size => self.size as u64,
            Field::Elements => self.slots,
            Field::Reserved => 0,
            Field::Wsc | Field::Wc => self.mem.load(Field::Wc),
        }
    }

    fn act(&mut self, action: &Action) {
        match *action {
            Action::Store(field, value) => {
                let field = Field::ALL[field as usize % Field::ALL.len()];
                let v = match value {
                    Value::Honest => self.honest(field),
                    Value::Small(v) => u64::from(v),
                    Value::Near(d) => self.mem.load(field).wrapping_add(d as i64 as u64),
                    Value::Edge(i) => EDGES[i as usize % EDGES.len()],
                    Value::Any(v) => v,
                };
                self.mem.store(field, v);
            }
            Action::Bytes { offset, len, seed } => {
                let len = (len as usize).min(self.mem.len());
                let offset = offset as usize % (self.mem.len() - len + 1);
                let bytes: Vec<u8> = (0..len)
                    .map(|i| seed.wrapping_add((i as u8).wrapping_mul(7)))
                    .collect();
                self.mem.write_bytes(offset, &bytes).unwrap();
            }
            Action::Write { count } => {
                for _ in 0..count % 17 {
                    // Announce, copy, publish, counting from whatever `wc` says now.
                    let wc = self.mem.load(Field::Wc);
                    let slot = (wc % self.slots) as usize;
                    self.mem.store(Field::Wsc, wc.wrapping_add(1));
                    let bytes = pattern(wc, self.size);
                    self.mem
                        .write_bytes(HEADER_SIZE + slot * self.size, &bytes)
                        .unwrap();
                    self.mem.store(Field::Wc, wc.wrapping_add(1));
                }
            }
            Action::Init { epoch } => {
                let epoch = epoch_from(epoch % 8);
                // SAFETY: the same memory as `self.mem`, accessed only through handles.
                let again = unsafe { RegionMut::new(self.mem.as_ptr().cast_mut(), self.mem.len()) }
                    .unwrap();
                let w = Writer::init(again, PROTO, self.size, epoch).unwrap();
                assert_eq!(w.elements(), self.slots);
                self.epoch = epoch.get();
            }
        }
    }

    fn slot_bytes(&self, elements: u64, index: u64) -> Vec<u8> {
        let mut b = vec![0u8; self.size];
        let offset = HEADER_SIZE + (index % elements) as usize * self.size;
        self.mem.read_bytes(offset, &mut b).unwrap();
        b
    }
}

/// Element `n`'s bytes.
fn pattern(n: u64, size: usize) -> Vec<u8> {
    let seed = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..size)
        .map(|i| (seed >> ((i % 8) * 8)) as u8 ^ i as u8)
        .collect()
}

/// The reader's private state as the specification describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Model {
    epoch: u64,
    elements: u64,
    rc: u64,
    /// The last write counter loaded and accepted: elements below it are published.
    known_wc: u64,
    refused: u64,
    behind: bool,
}

impl Model {
    fn of(r: &Reader<'_>) -> Model {
        let (epoch, elements, rc, known_wc, slot, refused, behind) = r.fuzz_state();
        if elements != 0 {
            assert_eq!(slot as u64, rc % elements, "slot bookkeeping");
        }
        Model {
            epoch,
            elements,
            rc,
            known_wc,
            refused,
            behind,
        }
    }

    fn set_rc(&mut self, rc: u64) {
        self.rc = rc;
        self.known_wc = rc;
    }

    fn check(h: &Header, size: usize, len: usize) -> Result<(), ReadError> {
        let g = |f: Field| f.get(h);
        if g(Field::Transport) != TRANSPORT_MARKER {
            return Err(ReadError::Incompatible(Incompatible::Transport {
                found: g(Field::Transport),
            }));
        }
        if g(Field::Protocol) != PROTO {
            return Err(ReadError::Incompatible(Incompatible::Protocol {
                found: g(Field::Protocol),
            }));
        }
        if g(Field::Size) != size as u64 {
            return Err(ReadError::Incompatible(Incompatible::ElementSize {
                found: g(Field::Size),
            }));
        }
        let elements = g(Field::Elements);
        if elements == 0 {
            return Err(ReadError::Misbehaviour(Misbehaviour::NoElements));
        }
        // In u128: no overflow to reason about.
        if 64 + size as u128 * elements as u128 > len as u128 {
            return Err(ReadError::Misbehaviour(Misbehaviour::RingOutsideRegion {
                elements,
            }));
        }
        Ok(())
    }

    fn synchronise(&mut self, h: &Header, size: usize, len: usize) -> Result<(), ReadError> {
        self.epoch = 0;
        match Model::check(h, size, len) {
            Ok(()) => {
                *self = Model {
                    epoch: h.epoch.get(),
                    elements: h.elements.get(),
                    rc: 0,
                    known_wc: 0,
                    refused: 0,
                    behind: false,
                };
                Ok(())
            }
            Err(e) => {
                self.refused = h.epoch.get();
                Err(e)
            }
        }
    }

    /// A read of up to `capacity` elements of an unchanging channel: the result and the
    /// bytes of the elements read.
    fn read(&mut self, w: &World<'_>, capacity: u64) -> Result<Vec<u8>, ReadError> {
        let h = w.mem.header();
        let rc = self.rc;
        // Enough elements known to be published for the whole buffer: no header check
        // before the copies.
        let known = rc
            .checked_add(capacity)
            .is_some_and(|end| end <= self.known_wc);
        let (epoch, wc) = if self.epoch != 0 && known {
            (self.epoch, self.known_wc)
        } else {
            let epoch = h.epoch.get();
            if epoch == 0 {
                self.epoch = 0;
                self.refused = 0;
                return Err(ReadError::Inactive);
            }
            if epoch != self.epoch {
                self.synchronise(&h, w.size, w.mem.len())?;
                return Err(ReadError::EpochChanged);
            }
            let wc = h.wc.get();
            if wc == rc {
                return Err(ReadError::NoData);
            }
            if wc < rc {
                if self.behind {
                    return Err(ReadError::NoData);
                }
                self.behind = true;
                return Err(ReadError::Misbehaviour(Misbehaviour::WriteCounterBehind {
                    wc,
                    rc,
                }));
            }
            self.behind = false;
            if wc - rc > self.elements {
                self.set_rc(wc);
                return Err(ReadError::Overrun { lost: wc - rc });
            }
            self.known_wc = wc;
            (epoch, wc)
        };
        let n = (wc - rc).min(capacity);
        let bytes: Vec<u8> = (rc..rc + n)
            .flat_map(|i| w.slot_bytes(self.elements, i))
            .collect();
        if h.epoch.get() != epoch {
            self.epoch = 0;
            return Err(ReadError::EpochChanged);
        }
        let wsc = h.wsc.get();
        if wsc < rc + n {
            self.set_rc(wc);
            return Err(ReadError::Misbehaviour(
                Misbehaviour::CountersInconsistent { wsc, rc },
            ));
        }
        if wsc - rc > self.elements {
            let now = h.wc.get();
            self.set_rc(now.max(wc));
            if now <= rc {
                return Err(ReadError::Misbehaviour(
                    Misbehaviour::CountersInconsistent { wsc, rc },
                ));
            }
            return Err(ReadError::Overrun { lost: self.rc - rc });
        }
        self.rc = rc + n;
        Ok(bytes)
    }

    fn drain(&mut self, w: &World<'_>) -> Result<u64, ReadError> {
        let h = w.mem.header();
        let epoch = h.epoch.get();
        if epoch == 0 {
            self.epoch = 0;
            self.refused = 0;
            return Err(ReadError::Inactive);
        }
        if epoch != self.epoch {
            self.synchronise(&h, w.size, w.mem.len())?;
        }
        let (wc, rc) = (h.wc.get(), self.rc);
        self.set_rc(wc);
        self.behind = false;
        wc.checked_sub(rc)
            .ok_or(ReadError::Misbehaviour(Misbehaviour::WriteCounterBehind {
                wc,
                rc,
            }))
    }

    fn pending(&self, w: &World<'_>) -> bool {
        let h = w.mem.header();
        let epoch = h.epoch.get();
        if epoch == 0 {
            false
        } else if epoch != self.epoch {
            epoch != self.refused || Model::check(&h, w.size, w.mem.len()).is_ok()
        } else {
            let wc = h.wc.get();
            wc > self.rc || (wc < self.rc && !self.behind)
        }
    }
}

/// Element numbers delivered since the reader last synchronised.
struct Delivered {
    /// Every element number below this was delivered or skipped.
    next: u64,
}

impl Delivered {
    /// Element numbers `from..from + n` were delivered: never one twice.
    fn deliver(&mut self, from: u64, n: u64) {
        assert!(from >= self.next, "element {from} delivered again");
        self.next = from + n;
    }

    /// After every operation: a new synchronisation starts the count again.
    fn follow(&mut self, before: Model, after: Model) {
        if after.epoch != 0 && after.epoch != before.epoch {
            self.next = after.rc;
        }
    }
}

/// A buffer for `capacity` elements followed by sentinel bytes.
fn buffer(capacity: usize, size: usize) -> Vec<u8> {
    let mut b = vec![0u8; capacity * size + SENTINEL];
    b[capacity * size..].fill(0xa5);
    b
}

fn sentinel_intact(b: &[u8], used: usize) {
    assert!(
        b[used..].iter().all(|&x| x == 0xa5),
        "the reader wrote past its buffer"
    );
}

fn run(input: &Input) {
    let size = SIZES[input.size as usize % SIZES.len()];
    let slots = 1 + input.slots as usize % MAX_SLOTS;
    let len = (HEADER_SIZE + size * slots + input.pad as usize % size).next_multiple_of(8);
    let base = (mapping() + REGION_PAGES * PAGE - len) as *mut u8;
    // SAFETY: `base..base + len` lies in the mapping, ends at its inaccessible page,
    // and is used only through these handles while this input runs.
    let (mem, view) = unsafe {
        (
            RegionMut::new(base, len).unwrap(),
            Region::new(base, len).unwrap(),
        )
    };
    mem.zero_bytes(0, len).unwrap();
    let mut w = World {
        mem,
        size,
        slots: ((len - HEADER_SIZE) / size) as u64,
        epoch: 1,
    };
    let mut r = Reader::new(view, PROTO, size).unwrap();
    let mut model = Model::of(&r);
    let mut delivered = Delivered { next: 0 };

    for op in input.ops.iter().take(200) {
        match op {
            Op::Writer(action) => w.act(action),
            Op::Read => checked_read(&mut r, &mut model, &w, &mut delivered, None),
            Op::ReadTyped => checked_read(&mut r, &mut model, &w, &mut delivered, Some(0)),
            Op::ReadParts { split } => {
                checked_read_parts(&mut r, &mut model, &w, &mut delivered, *split)
            }
            Op::ReadBatch { capacity } => {
                let capacity = 1 + *capacity as usize % (MAX_SLOTS + 2);
                checked_read(&mut r, &mut model, &w, &mut delivered, Some(capacity));
            }
            Op::Reads { count, capacity } => {
                let capacity = *capacity as usize % (MAX_SLOTS + 2);
                for _ in 0..count % 64 {
                    let kind = (capacity > 0).then_some(capacity);
                    checked_read(&mut r, &mut model, &w, &mut delivered, kind);
                }
            }
            Op::Drain => {
                let expected = model.drain(&w);
                assert_eq!(r.drain(), expected);
                assert_eq!(Model::of(&r), model, "state after drain");
                // An explicit re-base: numbers below may come again.
                delivered.next = model.rc;
            }
            Op::Pending => {
                assert_eq!(r.has_pending_data(), model.pending(&w));
                assert_eq!(Model::of(&r), model, "pending data changes nothing");
            }
            Op::During {
                capacity,
                step,
                actions,
            } => {
                let capacity = 1 + *capacity as usize % (MAX_SLOTS + 2);
                let step =
                    [Step::EpochLoaded, Step::Synchronising, Step::Copied][*step as usize % 3];
                let before = Model::of(&r);
                let mut buf = buffer(capacity, size);
                // The ring as the reader copied it: taken at `Copied`, before the
                // writer acts there.
                let mut copied: Option<Vec<Vec<u8>>> = None;
                let got = r.read_batch_bytes_hooked(&mut buf[..capacity * size], |at| {
                    if at == Step::Copied && before.elements != 0 {
                        copied = Some(
                            (0..before.elements)
                                .map(|i| w.slot_bytes(before.elements, i))
                                .collect(),
                        );
                    }
                    if at == step {
                        for a in actions.iter().take(8) {
                            w.act(a);
                        }
                    }
                });
                sentinel_intact(&buf, capacity * size);
                let after = Model::of(&r);
                during(&w, before, after, &got, &buf, copied.as_deref(), capacity);
                if let Ok(n) = got {
                    delivered.deliver(before.rc, n as u64);
                }
                delivered.follow(before, after);
                model = after;
            }
        }
    }
}

/// One read of an unchanging channel, checked against the model: `None` reads with
/// `read_bytes`, `Some(0)` with `read::<[u8; N]>`, `Some(capacity)` a batch.
fn checked_read(
    r: &mut Reader<'_>,
    model: &mut Model,
    w: &World<'_>,
    delivered: &mut Delivered,
    kind: Option<usize>,
) {
    let size = w.size;
    let capacity = kind.unwrap_or(1).max(1);
    let before = *model;
    let expected = model.read(w, capacity as u64);
    let mut buf = buffer(capacity, size);
    let got = match kind {
        None => r.read_bytes(&mut buf[..size]).map(|()| size),
        Some(0) => read_typed(r, &mut buf[..size]),
        Some(_) => r
            .read_batch_bytes(&mut buf[..capacity * size])
            .map(|n| n * size),
    };
    sentinel_intact(&buf, capacity * size);
    match (&expected, got) {
        (Ok(bytes), Ok(n)) => {
            assert_eq!(&buf[..n], &bytes[..], "element bytes");
            delivered.deliver(before.rc, (n / size) as u64);
        }
        (Err(e), Err(g)) => assert_eq!(*e, g),
        (e, g) => panic!("model {e:?}, reader {g:?}"),
    }
    assert_eq!(Model::of(r), *model, "state after a read ({kind:?})");
    delivered.follow(before, *model);
}

/// A read through `read_with` that copies the element in two parts (split at
/// `split % (size + 1)`) and tries a copy beyond it: the same result as a read.
fn checked_read_parts(
    r: &mut Reader<'_>,
    model: &mut Model,
    w: &World<'_>,
    delivered: &mut Delivered,
    split: u8,
) {
    let size = w.size;
    let before = *model;
    let expected = model.read(w, 1);
    let mut buf = buffer(1, size);
    let at = usize::from(split) % (size + 1);
    let got = r.read_with(|e| {
        assert_eq!(e.size(), size);
        let (head, tail) = buf[..size].split_at_mut(at);
        e.copy_to(0, head).unwrap();
        e.copy_to(at, tail).unwrap();
        // One byte past the element: refused, nothing copied.
        let mut past = [0xa5u8];
        assert!(e.copy_to(size, &mut past).is_err());
        assert_eq!(past, [0xa5]);
    });
    sentinel_intact(&buf, size);
    match (&expected, got) {
        (Ok(bytes), Ok(())) => {
            assert_eq!(&buf[..size], &bytes[..], "element bytes");
            delivered.deliver(before.rc, 1);
        }
        (Err(e), Err(g)) => assert_eq!(*e, g),
        (e, g) => panic!("model {e:?}, reader {g:?}"),
    }
    assert_eq!(Model::of(r), *model, "state after a read in parts");
    delivered.follow(before, *model);
}

/// Reads one element as a `[u8; N]` of the channel's size.
fn read_typed(r: &mut Reader<'_>, out: &mut [u8]) -> Result<usize, ReadError> {
    macro_rules! typed {
        ($($n:literal)*) => {
            match out.len() {
                $($n => r.read::<[u8; $n]>().map(|e| { out.copy_from_slice(&e); $n }),)*
                _ => unreachable!("sizes"),
            }
        };
    }
    typed!(1 3 8 20 64 100)
}

/// Consistency of a read during which the writer acted.
fn during(
    w: &World<'_>,
    before: Model,
    after: Model,
    got: &Result<usize, ReadError>,
    buf: &[u8],
    copied: Option<&[Vec<u8>]>,
    capacity: usize,
) {
    let h = w.mem.header();
    let same_epoch = before.epoch != 0 && after.epoch == before.epoch;
    if same_epoch {
        assert!(after.rc >= before.rc, "read counter went back");
    }
    match *got {
        Ok(n) => {
            assert!((1..=capacity).contains(&n));
            // The checks after the copies saw the channel as it is now.
            assert!(same_epoch && h.epoch.get() == before.epoch);
            assert_eq!(after.rc, before.rc + n as u64);
            let wsc = h.wsc.get();
            assert!(wsc >= after.rc && wsc - before.rc <= before.elements);
            let copied = copied.expect("elements returned without a copy");
            for i in 0..n {
                let slot = ((before.rc + i as u64) % before.elements) as usize;
                assert_eq!(
                    &buf[i * w.size..(i + 1) * w.size],
                    &copied[slot][..],
                    "element {i} is not what was copied"
                );
            }
        }
        Err(ReadError::Overrun { lost }) => {
            assert!(same_epoch && lost > 0 && after.rc == before.rc + lost);
        }
        Err(ReadError::Misbehaviour(Misbehaviour::WriteCounterBehind { wc, rc })) => {
            assert!(same_epoch && wc < rc && rc == before.rc && after.rc == rc);
            assert!(after.behind);
        }
        Err(ReadError::Misbehaviour(Misbehaviour::CountersInconsistent { rc, .. })) => {
            assert!(same_epoch && rc == before.rc && after.rc > rc);
        }
        Err(ReadError::NoData) => assert_eq!(after, before),
        Err(ReadError::EpochChanged) => {
            // Synchronised to a new epoch (read counter 0), or the copy was discarded.
            assert!(
                (after.epoch != 0 && after.epoch != before.epoch && after.rc == 0)
                    || after.epoch == 0
            );
        }
        Err(ReadError::Inactive) => assert_eq!(after.epoch, 0),
        Err(ReadError::Incompatible(_))
        | Err(ReadError::Misbehaviour(Misbehaviour::NoElements))
        | Err(ReadError::Misbehaviour(Misbehaviour::RingOutsideRegion { .. })) => {
            assert_eq!(after.epoch, 0);
            assert_ne!(after.refused, 0);
        }
        Err(ReadError::WrongLength { .. }) => panic!("the buffer has the right length"),
    }
}

fuzz_target!(|input: Input| run(&input));
