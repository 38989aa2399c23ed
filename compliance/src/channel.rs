//! The typed channel contract, rule by rule: [`receiver_compliance`] checks a
//! [`Receiver`] with a peer writer that writes the channel memory directly through
//! `muen-channel` (starts, restarts with a new epoch, another protocol id or element
//! size, overruns, hostile header and element bytes); [`sender_compliance`] checks a
//! [`Sender`] with the suite's own `muen-channel` reader and a [`SignalRecorder`] that
//! sees, at each signal, how many elements were visible.
//!
//! The rules are those of `muen_device::channel` (and `docs/device-abi.md`,
//! "Typed channels"): [`ChannelRule`].

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;

use muen_channel::{
    ring_elements, ElementType, Field, Incompatible, ReadError, Reader, Region, RegionMut, Writer,
    HEADER_SIZE, TRANSPORT_MARKER,
};
use muen_device::channel::{ChannelError, Receiver, Sender};

use crate::pattern;
use crate::report::{ensure, fail, skip, Check, Report, Rule};

/// The rules of [`Receiver`] and [`Sender`] (`muen_device::channel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelRule {
    /// `receive` returns whole elements as written, in order, each once (also
    /// `receive_batch`).
    Whole,
    /// Nothing waiting is `Again` at once; `has_data` is true while an element waits
    /// and false after `Again` until the writer writes.
    NoData,
    /// A receiver that falls behind gets `Lost` with the exact number of skipped
    /// elements, then the elements written after.
    Overrun,
    /// After the writer starts the channel anew, `PeerRestarted` once, then the new
    /// run's elements.
    PeerRestart,
    /// A channel of another protocol id, element size or transport is `WrongType`, no
    /// element and no `has_data`, until the writer starts it with this type.
    WrongType,
    /// Whatever the writer puts into the channel, no panic, no element it did not
    /// publish whole, none twice; the receiver follows the writer's next start.
    PeerMisbehaviour,
    /// `send` writes the element whole after those sent before, never blocks or fails,
    /// and signals once it is visible.
    SendWhole,
    /// Taking the writer starts the channel anew: the type's protocol id and size, the
    /// region's ring, no element, a new epoch.
    Start,
}

impl ChannelRule {
    /// The rules of [`Receiver`], in check order.
    pub const RECEIVER: &'static [ChannelRule] = &[
        ChannelRule::Whole,
        ChannelRule::NoData,
        ChannelRule::Overrun,
        ChannelRule::PeerRestart,
        ChannelRule::WrongType,
        ChannelRule::PeerMisbehaviour,
    ];

    /// The rules of [`Sender`], in check order.
    pub const SENDER: &'static [ChannelRule] = &[ChannelRule::SendWhole, ChannelRule::Start];
}

impl Rule for ChannelRule {
    const ALL: &'static [ChannelRule] = &[
        ChannelRule::Whole,
        ChannelRule::NoData,
        ChannelRule::Overrun,
        ChannelRule::PeerRestart,
        ChannelRule::WrongType,
        ChannelRule::PeerMisbehaviour,
        ChannelRule::SendWhole,
        ChannelRule::Start,
    ];

    fn summary(self) -> &'static str {
        match self {
            ChannelRule::Whole => "receive returns whole elements, in order, each once",
            ChannelRule::NoData => "nothing waiting is Again; has_data tells whether an element waits",
            ChannelRule::Overrun => "falling behind is Lost with the exact count, then newer elements",
            ChannelRule::PeerRestart => "a new start of the writer is PeerRestarted once, then its elements",
            ChannelRule::WrongType => {
                "another protocol id, element size or transport is WrongType, no element, no has_data"
            }
            ChannelRule::PeerMisbehaviour => {
                "a hostile writer is survived: no element it did not publish whole, none twice"
            }
            ChannelRule::SendWhole => "send writes the element whole, in order, and signals once visible",
            ChannelRule::Start => "taking the writer starts the channel: the type, no element, a new epoch",
        }
    }
}

/// A protocol id that is no element type's of the suite's callers (for
/// [`ChannelRule::WrongType`]).
const OTHER_PROTOCOL: u64 = 0x0bad_c4a7_0bad_c4a7;

/// The suite's element `id` of type `E`: its first 8 bytes are `id`, the rest a
/// pattern of it (`E::SIZE >= 8`).
fn element<E: ElementType>(id: u64) -> E {
    E::read_from_bytes(&element_bytes(E::SIZE, id)).expect("the element size")
}

fn element_bytes(size: usize, id: u64) -> Vec<u8> {
    let mut b = vec![0u8; size];
    pattern::fill(&mut b, id);
    b[..8].copy_from_slice(&id.to_le_bytes());
    b
}

/// A results list in words: sent elements by their number in `sent`.
fn show(got: &[Result<Vec<u8>, ChannelError>], sent: &[Vec<u8>]) -> String {
    let items: Vec<String> = got
        .iter()
        .map(|r| match r {
            Ok(b) => match sent.iter().position(|s| s == b) {
                Some(i) => format!("element {i}"),
                None => "an element never written".to_string(),
            },
            Err(e) => format!("{e:?}"),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

// ------------------------------------------------------------------ the peer writer

/// The writing end as the suite plays it for a receiver: an honest `muen-channel`
/// writer that it can restart, start as another type, stop, or bypass with hostile
/// stores.
struct PeerWriter<'a> {
    memory: &'a [AtomicU64],
    writer: Option<Writer<'a>>,
    epoch: u64,
    protocol: u64,
    size: usize,
}

impl<'a> PeerWriter<'a> {
    fn new<E: ElementType>(memory: &'a [AtomicU64]) -> Self {
        PeerWriter {
            memory,
            writer: None,
            epoch: 0x6368_616e_0000_0000,
            protocol: E::PROTOCOL,
            size: E::SIZE,
        }
    }

    fn region(&self) -> RegionMut<'a> {
        RegionMut::from_atomics(self.memory).expect("the harness's channel memory")
    }

    fn next_epoch(&mut self) -> u64 {
        self.epoch += 1;
        self.epoch
    }

    /// Starts the channel anew (a new epoch) as a writer of `protocol` and `size`.
    fn start_as(&mut self, protocol: u64, size: usize) {
        self.writer = None;
        let epoch = muen_channel::epoch_from(self.next_epoch());
        self.writer = Some(
            Writer::init(self.region(), protocol, size, epoch).expect("the channel holds one"),
        );
    }

    /// Starts the channel anew for the receiver's type.
    fn start(&mut self) {
        self.start_as(self.protocol, self.size);
    }

    /// Marks the channel inactive (epoch 0).
    fn stop(&mut self) {
        if let Some(w) = self.writer.take() {
            w.deactivate();
        } else {
            self.region().store(Field::Epoch, 0);
        }
    }

    /// Writes `bytes` as one element (of the size the channel was started with).
    fn write(&mut self, bytes: &[u8]) {
        let w = self
            .writer
            .as_mut()
            .expect("the suite writes a started channel");
        w.write_bytes(bytes).expect("the channel's element size");
    }

    /// Writes `count` new elements of the receiver's type; returns their bytes.
    fn write_new(&mut self, count: usize, next: &mut dyn FnMut() -> u64) -> Vec<Vec<u8>> {
        (0..count)
            .map(|_| {
                let b = element_bytes(self.size, next());
                self.write(&b);
                b
            })
            .collect()
    }
}

/// Receives until `Again` (not included), at most `limit` results.
fn receive_until_again<E, R>(
    rx: &mut R,
    limit: usize,
) -> Result<Vec<Result<Vec<u8>, ChannelError>>, String>
where
    E: ElementType,
    R: Receiver<E> + ?Sized,
{
    let mut got = Vec::new();
    for _ in 0..limit {
        match rx.receive() {
            Err(ChannelError::Again) => return Ok(got),
            Ok(e) => got.push(Ok(e.as_bytes().to_vec())),
            Err(e) => got.push(Err(e)),
        }
    }
    Err(format!(
        "receive did not return Again after {limit} calls: {}",
        show(&got, &[])
    ))
}

/// Receives until `Again` (not included), at most `limit` results; a receiver that
/// reports a refused channel on every call instead (as `WrongType` is) must say
/// `has_data` false after 8 such calls, so that a poll loop sleeps.
fn receive_settled<E, R>(
    rx: &mut R,
    limit: usize,
) -> Result<Vec<Result<Vec<u8>, ChannelError>>, String>
where
    E: ElementType,
    R: Receiver<E> + ?Sized,
{
    let mut got = Vec::new();
    for _ in 0..limit {
        match rx.receive() {
            Err(ChannelError::Again) => return Ok(got),
            Ok(e) => got.push(Ok(e.as_bytes().to_vec())),
            Err(e) => {
                got.push(Err(e));
                let repeated = got.len() >= 8 && got[got.len() - 8..].iter().all(|r| *r == Err(e));
                if repeated {
                    if rx.has_data() {
                        return Err(format!(
                            "receive reports {e:?} on every call and has_data stays true: a poll loop would never sleep"
                        ));
                    }
                    return Ok(got);
                }
            }
        }
    }
    Err(format!(
        "receive did not return Again after {limit} calls: {}",
        show(&got, &[])
    ))
}

/// Receives until `Again` and drops what came: the start of every check.
fn quiesce<E, R>(rx: &mut R, limit: usize)
where
    E: ElementType,
    R: Receiver<E> + ?Sized,
{
    for _ in 0..limit {
        if matches!(rx.receive(), Err(ChannelError::Again)) {
            break;
        }
    }
}

/// Checks `rx` against every rule of [`Receiver`] ([`ChannelRule::RECEIVER`]), with
/// the suite writing `channel`, the memory `rx` reads. `subject` names the
/// implementation in the report.
///
/// `rx` must be a fresh receiver of `channel` (taken before the channel was ever
/// started, so that the suite's first start is no restart for it); the suite starts
/// the channel itself. `E` must be at least 8 bytes (the suite numbers its elements);
/// smaller types are reported as skipped.
pub fn receiver_compliance<E, R>(
    subject: &str,
    rx: &mut R,
    channel: &[AtomicU64],
) -> Report<ChannelRule>
where
    E: ElementType,
    R: Receiver<E> + ?Sized,
{
    let mut report = Report::new(subject);
    let len = std::mem::size_of_val(channel);
    let Some(capacity) = ring_elements(len, E::SIZE) else {
        for &rule in ChannelRule::RECEIVER {
            report.check(rule, || {
                skip!("a {len}-byte channel holds no {}-byte element", E::SIZE)
            });
        }
        return report;
    };
    if E::SIZE < 8 {
        for &rule in ChannelRule::RECEIVER {
            report.check(rule, || {
                skip!(
                    "elements of {} bytes cannot carry the suite's numbers (8 bytes)",
                    E::SIZE
                )
            });
        }
        return report;
    }
    let cap = capacity as usize;
    let limit = cap * 2 + 64;
    let mut peer = PeerWriter::new::<E>(channel);
    let mut ids = 0x4348_0000_0000u64;
    let mut next = move || {
        ids += 1;
        ids
    };
    type ReceiverCheck<R> = fn(&mut R, &mut Ctx<'_, '_>) -> Check;
    let checks: [(ChannelRule, ReceiverCheck<R>); 6] = [
        (ChannelRule::Whole, whole::<E, R>),
        (ChannelRule::NoData, no_data::<E, R>),
        (ChannelRule::Overrun, overrun::<E, R>),
        (ChannelRule::PeerRestart, peer_restart::<E, R>),
        (ChannelRule::WrongType, wrong_type::<E, R>),
        (ChannelRule::PeerMisbehaviour, peer_misbehaviour::<E, R>),
    ];
    for (rule, check) in checks {
        peer.start();
        quiesce::<E, R>(rx, limit);
        let mut ctx = Ctx {
            peer: &mut peer,
            cap,
            limit,
            next: &mut next,
        };
        report.check(rule, || check(rx, &mut ctx));
    }
    peer.start();
    quiesce::<E, R>(rx, limit);
    report
}

/// What a receiver check gets besides the receiver.
struct Ctx<'p, 'a> {
    peer: &'p mut PeerWriter<'a>,
    /// Elements the ring holds.
    cap: usize,
    /// Calls after which a receiver must have said `Again`.
    limit: usize,
    next: &'p mut dyn FnMut() -> u64,
}

fn whole<E, R>(rx: &mut R, c: &mut Ctx<'_, '_>) -> Check
where
    E: ElementType,
    R: Receiver<E> + ?Sized,
{
    // Counts up to a full ring, one by one.
    for count in [1, 2, (c.cap / 2).max(1), c.cap] {
        let sent = c.peer.write_new(count, c.next);
        let got = receive_until_again::<E, R>(rx, c.limit)?;
        let expected: Vec<_> = sent.iter().cloned().map(Ok).collect();
        ensure!(
            got == expected,
            "{count} elements written, received {}",
            show(&got, &sent)
        );
    }
    // Around the ring three times.
    for i in 0..(3 * c.cap + 2).min(3000) {
        let sent = c.peer.write_new(1, c.next);
        let r = rx.receive().map(|e| e.as_bytes().to_vec());
        ensure!(
            r == Ok(sent[0].clone()),
            "around the ring, element {i} came as {}",
            show(&[r], &sent)
        );
    }
    // Batches: in order, at least one, at most the slice; an empty slice takes nothing.
    let sent = c.peer.write_new(c.cap, c.next);
    let r = rx.receive_batch(&mut []);
    ensure!(r == Ok(0), "receive_batch of an empty slice returned {r:?}");
    let mut got: Vec<Vec<u8>> = Vec::new();
    for size in [1usize, 3, 7, c.cap].into_iter().cycle().take(c.limit) {
        let mut buf: Vec<E> = (0..size).map(|_| E::new_zeroed()).collect();
        match rx.receive_batch(&mut buf) {
            Ok(n) if (1..=size).contains(&n) => {
                got.extend(buf[..n].iter().map(|e| e.as_bytes().to_vec()))
            }
            Ok(n) => fail!("receive_batch into {size} slots returned {n}"),
            Err(ChannelError::Again) => break,
            Err(e) => fail!("receive_batch with elements waiting returned {e:?}"),
        }
    }
    ensure!(
        got == sent,
        "{} elements written, receive_batch returned {} elements{}",
        sent.len(),
        got.len(),
        if got.len() == sent.len() {
            " (not those, or not in order)"
        } else {
            ""
        }
    );
    let mut buf = [E::new_zeroed()];
    let r = rx.receive_batch(&mut buf);
    ensure!(
        r == Err(ChannelError::Again),
        "receive_batch with nothing waiting returned {r:?}"
    );
    Ok(())
}

fn no_data<E, R>(rx: &mut R, c: &mut Ctx<'_, '_>) -> Check
where
    E: ElementType,
    R: Receiver<E> + ?Sized,
{
    for i in 0..3 {
        let r = rx.receive().map(|_| ());
        ensure!(
            r == Err(ChannelError::Again),
            "receive with nothing written returned {r:?} (call {i})"
        );
        ensure!(
            !rx.has_data(),
            "has_data is true after Again with nothing written"
        );
    }
    for count in [1, 2, 5] {
        c.peer.write_new(count, c.next);
        for i in 0..count {
            ensure!(
                rx.has_data(),
                "has_data is false while {} of {count} elements wait",
                count - i
            );
            let r = rx.receive().map(|_| ());
            ensure!(
                r == Ok(()),
                "receive with {} of {count} elements waiting returned {r:?}",
                count - i
            );
        }
        let r = rx.receive().map(|_| ());
        ensure!(
            r == Err(ChannelError::Again),
            "receive after the last element returned {r:?}"
        );
        ensure!(!rx.has_data(), "has_data is true after Again");
    }
    // A channel the writer has not started (epoch 0): Again, no data.
    c.peer.stop();
    for i in 0..3 {
        let r = rx.receive().map(|_| ());
        ensure!(
            r == Err(ChannelError::Again),
            "receive on a stopped channel returned {r:?} (call {i})"
        );
        ensure!(!rx.has_data(), "has_data is true on a stopped channel");
    }
    Ok(())
}

/// Checks `got` (until `Again`) against `sent[start..]`: each element the next one
/// expected, each `Lost { lost }` skipping exactly `lost`, and at the end all of
/// `sent` accounted for. Returns the number of elements lost.
fn account(
    got: &[Result<Vec<u8>, ChannelError>],
    sent: &[Vec<u8>],
    start: usize,
) -> Result<u64, String> {
    let mut at = start;
    let mut lost_total = 0;
    for (i, r) in got.iter().enumerate() {
        match r {
            Ok(b) => {
                if sent.get(at) != Some(b) {
                    return Err(format!(
                        "result {i} is {} where element {at} was expected: {}",
                        show(std::slice::from_ref(r), sent),
                        show(got, sent)
                    ));
                }
                at += 1;
            }
            Err(ChannelError::Lost { lost }) if *lost >= 1 => {
                at = at.saturating_add(*lost as usize);
                lost_total += lost;
                if at > sent.len() {
                    return Err(format!(
                        "Lost {{ lost: {lost} }} skips past the {} elements written: {}",
                        sent.len(),
                        show(got, sent)
                    ));
                }
            }
            Err(e) => {
                return Err(format!(
                    "result {i} is {e:?}, expected elements or Lost: {}",
                    show(got, sent)
                ))
            }
        }
    }
    if at != sent.len() {
        return Err(format!(
            "{} elements written, {} received or reported lost before Again: {}",
            sent.len() - start,
            at - start,
            show(got, sent)
        ));
    }
    Ok(lost_total)
}

fn overrun<E, R>(rx: &mut R, c: &mut Ctx<'_, '_>) -> Check
where
    E: ElementType,
    R: Receiver<E> + ?Sized,
{
    // A full ring is no overrun.
    let sent = c.peer.write_new(c.cap, c.next);
    let got = receive_until_again::<E, R>(rx, c.limit)?;
    let lost = account(&got, &sent, 0).map_err(|e| format!("a full ring: {e}"))?;
    ensure!(
        lost == 0,
        "{} elements (a full ring) written, {lost} reported lost",
        c.cap
    );
    // Behind by one, by a ring and more; after reading some first; one by one and in
    // batches.
    for (read_first, extra, batch) in [
        (0, 1, false),
        (0, 2 * c.cap + 3, false),
        (1, c.cap + 1, false),
        (0, c.cap + 2, true),
    ] {
        let mut sent = c.peer.write_new(3, c.next);
        for i in 0..read_first {
            let r = rx.receive().map(|e| e.as_bytes().to_vec());
            ensure!(
                r == Ok(sent[i].clone()),
                "receive before the overrun returned {}",
                show(&[r], &sent)
            );
        }
        sent.extend(c.peer.write_new(c.cap - 3 + extra, c.next));
        ensure!(
            rx.has_data(),
            "has_data is false while {} elements are waiting, more than the ring holds",
            sent.len() - read_first
        );
        let got = if batch {
            let mut got = Vec::new();
            let mut buf: Vec<E> = (0..4).map(|_| E::new_zeroed()).collect();
            for _ in 0..c.limit {
                match rx.receive_batch(&mut buf) {
                    Ok(n) => got.extend(buf[..n.min(4)].iter().map(|e| Ok(e.as_bytes().to_vec()))),
                    Err(ChannelError::Again) => break,
                    Err(e) => got.push(Err(e)),
                }
            }
            got
        } else {
            receive_until_again::<E, R>(rx, c.limit)?
        };
        let what = format!(
            "{} elements waiting in a ring of {} ({}):",
            sent.len() - read_first,
            c.cap,
            if batch { "receive_batch" } else { "receive" }
        );
        let lost = account(&got, &sent, read_first).map_err(|e| format!("{what} {e}"))?;
        ensure!(lost >= 1, "{what} nothing reported lost");
        // Receiving goes on with those written after.
        let after = c.peer.write_new(3, c.next);
        let got = receive_until_again::<E, R>(rx, c.limit)?;
        let expected: Vec<_> = after.iter().cloned().map(Ok).collect();
        ensure!(
            got == expected,
            "after the overrun, 3 new elements came as {}",
            show(&got, &after)
        );
    }
    Ok(())
}

fn peer_restart<E, R>(rx: &mut R, c: &mut Ctx<'_, '_>) -> Check
where
    E: ElementType,
    R: Receiver<E> + ?Sized,
{
    // A restart with nothing written after it: reported (has_data says so), once.
    let old = c.peer.write_new(3, c.next);
    let r = rx.receive().map(|e| e.as_bytes().to_vec());
    ensure!(
        r == Ok(old[0].clone()),
        "receive before the restart returned {}",
        show(&[r], &old)
    );
    c.peer.start();
    ensure!(
        rx.has_data(),
        "has_data is false while a restart of the writer waits to be reported"
    );
    let got = receive_until_again::<E, R>(rx, c.limit)?;
    ensure!(
        got == [Err(ChannelError::PeerRestarted)],
        "after a restart of the writer (2 elements of its last run unread), receive returned {} before Again",
        show(&got, &old)
    );
    let new = c.peer.write_new(2, c.next);
    let got = receive_until_again::<E, R>(rx, c.limit)?;
    let expected: Vec<_> = new.iter().cloned().map(Ok).collect();
    ensure!(
        got == expected,
        "after the reported restart, 2 new elements came as {}",
        show(&got, &new)
    );
    // Restarts with elements of the new run waiting, three in a row.
    for round in 0..3 {
        let old = c.peer.write_new(2, c.next);
        c.peer.start();
        let new = c.peer.write_new(3, c.next);
        let got = receive_until_again::<E, R>(rx, c.limit)?;
        let mut expected = vec![Err(ChannelError::PeerRestarted)];
        expected.extend(new.iter().cloned().map(Ok));
        let all: Vec<Vec<u8>> = old.iter().chain(&new).cloned().collect();
        ensure!(
            got == expected,
            "restart {round} (2 old elements unread, 3 new): expected {}, received {}",
            show(&expected, &all),
            show(&got, &all)
        );
    }
    // The writer stops (epoch 0), then starts again.
    let old = c.peer.write_new(1, c.next);
    c.peer.stop();
    let got = receive_until_again::<E, R>(rx, c.limit)?;
    ensure!(
        got.iter().all(|r| r.is_err()),
        "after the writer stopped, receive returned {}",
        show(&got, &old)
    );
    c.peer.start();
    let new = c.peer.write_new(2, c.next);
    let got = receive_until_again::<E, R>(rx, c.limit)?;
    let mut expected = vec![Err(ChannelError::PeerRestarted)];
    expected.extend(new.iter().cloned().map(Ok));
    ensure!(
        got == expected,
        "after the writer stopped and started again: received {}",
        show(&got, &new)
    );
    Ok(())
}

fn wrong_type<E, R>(rx: &mut R, c: &mut Ctx<'_, '_>) -> Check
where
    E: ElementType,
    R: Receiver<E> + ?Sized,
{
    let size = c.peer.size;
    let mut cases = vec![
        (
            OTHER_PROTOCOL,
            size,
            Incompatible::Protocol {
                found: OTHER_PROTOCOL,
            },
        ),
        (
            c.peer.protocol,
            size + 8,
            Incompatible::ElementSize {
                found: size as u64 + 8,
            },
        ),
        (
            c.peer.protocol,
            size - 1,
            Incompatible::ElementSize {
                found: size as u64 - 1,
            },
        ),
    ];
    let garbage = 0x5348_4d53_7472_6561;
    cases.push((0, size, Incompatible::Transport { found: garbage }));
    for (protocol, esize, expected) in cases {
        let what = format!("a channel started with {expected:?}");
        if protocol == 0 {
            // Not SHMStream: the right type, a foreign transport marker.
            c.peer.start();
            c.peer.write_new(2, c.next);
            let region = c.peer.region();
            region.store(Field::Epoch, 0);
            region.store(Field::Transport, garbage);
            region.store(Field::Epoch, c.peer.next_epoch());
        } else {
            c.peer.start_as(protocol, esize);
            for _ in 0..2 {
                let id = (c.next)();
                c.peer.write(&element_bytes(esize, id));
            }
        }
        // WrongType (perhaps after the restart it is), never an element.
        let mut reported = false;
        for _ in 0..3 {
            match rx.receive() {
                Ok(_) => fail!("{what}: receive returned an element"),
                Err(ChannelError::PeerRestarted) => continue,
                Err(ChannelError::WrongType(i)) if i == expected => {
                    reported = true;
                    break;
                }
                Err(e) => fail!("{what}: receive returned {e:?}"),
            }
        }
        ensure!(reported, "{what}: receive never returned WrongType");
        ensure!(!rx.has_data(), "{what}: has_data is true after WrongType");
        // More elements of the wrong type: still nothing.
        if protocol != 0 {
            for _ in 0..2 {
                let id = (c.next)();
                c.peer.write(&element_bytes(esize, id));
            }
        }
        ensure!(
            !rx.has_data(),
            "{what}: has_data is true after the writer wrote more"
        );
        for _ in 0..3 {
            match rx.receive() {
                Err(ChannelError::WrongType(i)) if i == expected => {}
                Err(ChannelError::Again) => {}
                r => fail!(
                    "{what}: receive after WrongType returned {:?}",
                    r.map(|_| "an element")
                ),
            }
        }
        // The writer starts it with this type: elements flow.
        c.peer.start();
        let new = c.peer.write_new(2, c.next);
        let got = receive_until_again::<E, R>(rx, c.limit)?;
        let elements: Vec<_> = got.iter().filter(|r| r.is_ok()).cloned().collect();
        let expected_elements: Vec<_> = new.iter().cloned().map(Ok).collect();
        ensure!(
            elements == expected_elements
                && got.len() <= 3
                && got
                    .iter()
                    .all(|r| r.is_ok() || *r == Err(ChannelError::PeerRestarted)),
            "{what}, then started with this type and 2 elements: received {}",
            show(&got, &new)
        );
    }
    Ok(())
}

fn peer_misbehaviour<E, R>(rx: &mut R, c: &mut Ctx<'_, '_>) -> Check
where
    E: ElementType,
    R: Receiver<E> + ?Sized,
{
    let size = c.peer.size;
    let region = c.peer.region();
    // The write counter goes back without a new epoch: no element twice.
    let old = c.peer.write_new(4, c.next);
    let got = receive_until_again::<E, R>(rx, c.limit)?;
    let expected: Vec<_> = old.iter().cloned().map(Ok).collect();
    ensure!(got == expected, "4 elements came as {}", show(&got, &old));
    let wc = region.as_region().load(Field::Wc);
    region.store(Field::Wc, wc - 2);
    let got = receive_until_again::<E, R>(rx, c.limit)?;
    ensure!(
        got.iter().all(|r| r.is_err()),
        "after the write counter went back by 2, receive returned {}",
        show(&got, &old)
    );
    region.store(Field::Wc, wc);
    let got = receive_until_again::<E, R>(rx, c.limit)?;
    ensure!(
        got.iter().all(|r| r.is_err()),
        "after the write counter came back, receive returned {} (elements received before)",
        show(&got, &old)
    );
    recovers::<E, R>(rx, c, "a write counter that went back")?;

    // Counters that say an element is complete that was never started.
    c.peer.start();
    let region = c.peer.region();
    for slot in 0..3.min(c.cap) {
        let _ = region.write_bytes(HEADER_SIZE + slot * size, &element_bytes(size, (c.next)()));
    }
    region.store(Field::Wc, 3.min(c.cap as u64));
    let got = receive_until_again::<E, R>(rx, c.limit)?;
    ensure!(
        got.iter().all(|r| r.is_err()),
        "write counter 3 with write start counter 0 (nothing started): receive returned {}",
        show(&got, &[])
    );
    recovers::<E, R>(rx, c, "counters that contradict each other")?;

    // Rings that do not fit: 0 elements, one too many, an overflowing product.
    for elements in [0, c.cap as u64 + 1, u64::MAX / size as u64 + 1, u64::MAX] {
        hostile_header(
            &region,
            c.peer.next_epoch(),
            c.peer.protocol,
            size as u64,
            elements,
            1,
            1,
        );
        let got = receive_settled::<E, R>(rx, c.limit)?;
        ensure!(
            got.iter().all(|r| r.is_err()),
            "a header with {elements} elements: receive returned {}",
            show(&got, &[])
        );
        recovers::<E, R>(rx, c, &format!("a header with {elements} elements"))?;
    }

    // Random headers and ring bytes: every element returned is one slot of the ring,
    // whole.
    let mut state = 0x6d69_7362_6568_6176u64;
    let mut rand = move || {
        state = state.wrapping_add(1);
        let mut b = [0u8; 8];
        pattern::fill(&mut b, state);
        u64::from_le_bytes(b)
    };
    let slots = c.cap.min(16);
    let mut epoch = c.peer.next_epoch();
    for round in 0..300 {
        for slot in 0..slots {
            let mut b = vec![0u8; size];
            pattern::fill(&mut b, rand());
            let _ = region.write_bytes(HEADER_SIZE + slot * size, &b);
        }
        epoch = match rand() % 4 {
            0 => epoch,
            1 => 0,
            _ => epoch.wrapping_add(1 + rand() % 5),
        };
        let protocol = pick(&mut rand, c.peer.protocol, 4);
        let esize = pick(&mut rand, size as u64, size as u64);
        let elements = pick(&mut rand, slots as u64, c.cap as u64 + 2);
        let honest_wc = 1 + rand() % (slots as u64 + 1);
        let wc = pick(&mut rand, honest_wc, 2 * slots as u64);
        let wsc = pick(&mut rand, wc, 2 * slots as u64);
        let transport = if rand() % 8 == 0 {
            rand()
        } else {
            TRANSPORT_MARKER
        };
        let fields = [
            (Field::Transport, transport),
            (Field::Protocol, protocol),
            (Field::Size, esize),
            (Field::Elements, elements),
            (Field::Wsc, wsc),
            (Field::Wc, wc),
        ];
        region.store(Field::Epoch, 0);
        for (f, v) in fields {
            region.store(f, v);
        }
        region.store(Field::Epoch, epoch);
        for call in 0..4 {
            if let Ok(e) = rx.receive() {
                let b = e.as_bytes();
                let mut slot_bytes = vec![0u8; size];
                let whole = (0..c.cap).any(|slot| {
                    region
                        .as_region()
                        .read_bytes(HEADER_SIZE + slot * size, &mut slot_bytes)
                        .is_ok()
                        && slot_bytes == b
                });
                ensure!(
                    whole,
                    "random header round {round} (epoch {epoch:#x}, protocol {protocol:#x}, size {esize}, elements {elements}, wsc {wsc}, wc {wc}), call {call}: receive returned an element that is no slot of the ring"
                );
            }
            let _ = rx.has_data();
        }
    }
    c.peer.stop();
    recovers::<E, R>(rx, c, "300 rounds of random headers and ring bytes")?;
    Ok(())
}

/// A header field's value for a random round: mostly `valid`, else a small number
/// below `near + 2`, any number, or an edge.
fn pick(rand: &mut dyn FnMut() -> u64, valid: u64, near: u64) -> u64 {
    match rand() % 6 {
        0..=2 => valid,
        3 => rand() % (near + 2),
        4 => rand(),
        _ => [0, 1, u64::MAX][(rand() % 3) as usize],
    }
}

/// Stores a whole header (epoch last).
fn hostile_header(
    region: &RegionMut<'_>,
    epoch: u64,
    protocol: u64,
    size: u64,
    elements: u64,
    wsc: u64,
    wc: u64,
) {
    region.store(Field::Epoch, 0);
    for (f, v) in [
        (Field::Transport, TRANSPORT_MARKER),
        (Field::Protocol, protocol),
        (Field::Size, size),
        (Field::Elements, elements),
        (Field::Wsc, wsc),
        (Field::Wc, wc),
    ] {
        region.store(f, v);
    }
    region.store(Field::Epoch, epoch);
}

/// After misbehaviour: the receiver says `Again` in bounded time, and once the writer
/// starts the channel properly its elements flow (after at most one `PeerRestarted`
/// and one report of the misbehaviour).
fn recovers<E, R>(rx: &mut R, c: &mut Ctx<'_, '_>, what: &str) -> Check
where
    E: ElementType,
    R: Receiver<E> + ?Sized,
{
    let got = receive_settled::<E, R>(rx, c.limit).map_err(|e| format!("after {what}: {e}"))?;
    ensure!(
        got.iter().all(|r| r.is_err()),
        "after {what}, receive returned {}",
        show(&got, &[])
    );
    c.peer.start();
    let new = c.peer.write_new(2, c.next);
    let got = receive_until_again::<E, R>(rx, c.limit)?;
    let elements: Vec<_> = got.iter().filter(|r| r.is_ok()).cloned().collect();
    let expected: Vec<_> = new.iter().cloned().map(Ok).collect();
    ensure!(
        elements == expected && got.len() <= 4,
        "after {what}, the writer started the channel anew and wrote 2 elements: received {}",
        show(&got, &new)
    );
    Ok(())
}

// ------------------------------------------------------------------------ senders

/// Records, at each signal of a sender, the write counter a reader sees then (how
/// many elements were visible when the reader was told). The sender's `Sys` calls
/// [`SignalRecorder::signal`] from its `trigger`; clones share the record.
#[derive(Clone, Debug)]
pub struct SignalRecorder<'a> {
    channel: Region<'a>,
    seen: Rc<RefCell<Vec<u64>>>,
}

impl<'a> SignalRecorder<'a> {
    /// A recorder of the channel in `memory`.
    ///
    /// # Panics
    ///
    /// If `memory` is shorter than a channel header (a test bug).
    pub fn new(memory: &'a [AtomicU64]) -> Self {
        SignalRecorder {
            channel: Region::from_atomics(memory).expect("a channel region"),
            seen: Rc::default(),
        }
    }

    /// A signal: records the write counter visible now.
    pub fn signal(&self) {
        self.seen.borrow_mut().push(self.channel.load(Field::Wc));
    }

    /// The write counters of the signals since the last call.
    pub fn take(&self) -> Vec<u64> {
        std::mem::take(&mut self.seen.borrow_mut())
    }
}

/// The sender under test, as the suite takes it.
pub trait SenderHarness<E: ElementType> {
    /// The implementation.
    type Sender: Sender<E>;

    /// Takes the writing end of the channel anew, as the writing subject does at each
    /// start (the suite drops the previous one first). A harness whose sender takes
    /// its epoch from a clock lets time pass in between, as between two starts.
    fn take(&mut self) -> Self::Sender;

    /// The signals since the last call, as the write counter visible at each
    /// ([`SignalRecorder::take`]); `None` if the channel has no event (the suite then
    /// checks no signals).
    fn signals(&mut self) -> Option<Vec<u64>>;
}

/// Checks the sender `harness` takes against every rule of [`Sender`]
/// ([`ChannelRule::SENDER`]), reading `channel`, the memory it writes, with the
/// suite's own reader. `E` must be at least 8 bytes (smaller types are skipped).
pub fn sender_compliance<E, H>(
    subject: &str,
    harness: &mut H,
    channel: &[AtomicU64],
) -> Report<ChannelRule>
where
    E: ElementType,
    H: SenderHarness<E> + ?Sized,
{
    let mut report = Report::new(subject);
    let len = std::mem::size_of_val(channel);
    let capacity = ring_elements(len, E::SIZE);
    if capacity.is_none() || E::SIZE < 8 {
        for &rule in ChannelRule::SENDER {
            report.check(rule, || {
                skip!(
                    "{}-byte elements in a {len}-byte channel: none, or too small to number",
                    E::SIZE
                )
            });
        }
        return report;
    }
    let cap = capacity.unwrap_or(1) as usize;
    let mut ids = 0x5345_0000_0000u64;
    let mut next = move || {
        ids += 1;
        ids
    };
    report.check(ChannelRule::SendWhole, || {
        send_whole::<E, H>(harness, channel, cap, &mut next)
    });
    report.check(ChannelRule::Start, || {
        start::<E, H>(harness, channel, cap, &mut next)
    });
    report
}

/// The suite's reader of a sender's channel.
fn suite_reader<E: ElementType>(channel: &[AtomicU64]) -> Reader<'_> {
    Reader::new(
        Region::from_atomics(channel).expect("a channel region"),
        E::PROTOCOL,
        E::SIZE,
    )
    .expect("a channel of E")
}

/// Reads until `NoData` (not included), at most `limit` results.
fn read_until_no_data(
    reader: &mut Reader<'_>,
    size: usize,
    limit: usize,
) -> Result<Vec<Result<Vec<u8>, ReadError>>, String> {
    let mut got = Vec::new();
    for _ in 0..limit {
        let mut b = vec![0u8; size];
        match reader.read_bytes(&mut b) {
            Ok(()) => got.push(Ok(b)),
            Err(ReadError::NoData) => return Ok(got),
            Err(e) => got.push(Err(e)),
        }
    }
    Err(format!(
        "the reader did not see the channel empty after {limit} reads"
    ))
}

fn show_read(got: &[Result<Vec<u8>, ReadError>], sent: &[Vec<u8>]) -> String {
    let items: Vec<String> = got
        .iter()
        .map(|r| match r {
            Ok(b) => match sent.iter().position(|s| s == b) {
                Some(i) => format!("element {i}"),
                None => "an element never sent".to_string(),
            },
            Err(e) => format!("{e:?}"),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn send_whole<E, H>(
    harness: &mut H,
    channel: &[AtomicU64],
    cap: usize,
    next: &mut dyn FnMut() -> u64,
) -> Check
where
    E: ElementType,
    H: SenderHarness<E> + ?Sized,
{
    let limit = cap * 2 + 64;
    let mut tx = harness.take();
    harness.signals();
    let mut reader = suite_reader::<E>(channel);
    let got = read_until_no_data(&mut reader, E::SIZE, limit)?;
    ensure!(
        got == [Err(ReadError::EpochChanged)],
        "a reader of the started channel saw {}",
        show_read(&got, &[])
    );
    let mut written = 0u64;
    // One by one, around the ring three times: whole, in order, one signal each that
    // comes when the element is visible.
    for i in 0..(3 * cap + 2).min(3000) {
        let e: E = element(next());
        tx.send(&e);
        written += 1;
        if let Some(signals) = harness.signals() {
            ensure!(
                signals.len() == 1 && signals[0] >= written,
                "send {i}: {} signals, with {signals:?} elements visible at them ({written} sent)",
                signals.len()
            );
        }
        let got = read_until_no_data(&mut reader, E::SIZE, limit)?;
        let sent = [e.as_bytes().to_vec()];
        ensure!(
            got == [Ok(sent[0].clone())],
            "send {i}: the reader saw {}",
            show_read(&got, &sent)
        );
    }
    // Several before the reader looks.
    let sent: Vec<Vec<u8>> = (0..cap.min(5))
        .map(|_| {
            let e: E = element(next());
            tx.send(&e);
            e.as_bytes().to_vec()
        })
        .collect();
    written += sent.len() as u64;
    if let Some(signals) = harness.signals() {
        let first = written - sent.len() as u64;
        let ok = signals.len() == sent.len()
            && signals
                .iter()
                .enumerate()
                .all(|(i, &wc)| wc > first + i as u64);
        ensure!(
            ok,
            "{} sends gave signals with {signals:?} elements visible ({first} before)",
            sent.len()
        );
    }
    let got = read_until_no_data(&mut reader, E::SIZE, limit)?;
    let expected: Vec<_> = sent.iter().cloned().map(Ok).collect();
    ensure!(
        got == expected,
        "{} elements sent, the reader saw {}",
        sent.len(),
        show_read(&got, &sent)
    );
    // Batches: visible together, signalled when visible; an empty one sends nothing.
    tx.send_batch(&[]);
    let got = read_until_no_data(&mut reader, E::SIZE, limit)?;
    ensure!(
        got.is_empty(),
        "an empty batch: the reader saw {}",
        show_read(&got, &[])
    );
    harness.signals();
    for n in [1, 5.min(cap), cap] {
        let batch: Vec<E> = (0..n).map(|_| element(next())).collect();
        let sent: Vec<Vec<u8>> = batch.iter().map(|e| e.as_bytes().to_vec()).collect();
        tx.send_batch(&batch);
        written += n as u64;
        if let Some(signals) = harness.signals() {
            ensure!(
                !signals.is_empty() && signals.len() <= n && signals.last() == Some(&written),
                "a batch of {n}: signals with {signals:?} elements visible ({written} sent)"
            );
        }
        let got = read_until_no_data(&mut reader, E::SIZE, limit)?;
        let expected: Vec<_> = sent.iter().cloned().map(Ok).collect();
        ensure!(
            got == expected,
            "a batch of {n}: the reader saw {}",
            show_read(&got, &sent)
        );
    }
    // No back pressure: a reader that falls behind loses elements; what follows is
    // whole.
    for extra in [1, cap + 3] {
        let sent: Vec<Vec<u8>> = (0..cap + extra)
            .map(|_| {
                let e: E = element(next());
                tx.send(&e);
                e.as_bytes().to_vec()
            })
            .collect();
        harness.signals();
        let got = read_until_no_data(&mut reader, E::SIZE, limit)?;
        ensure!(
            got.iter()
                .all(|r| matches!(r, Err(ReadError::Overrun { .. }))
                    || r.as_ref().is_ok_and(|b| sent.contains(b))),
            "{} elements sent to a reader that did not read: it saw {}",
            sent.len(),
            show_read(&got, &sent)
        );
        ensure!(
            got.first()
                .is_some_and(|r| matches!(r, Err(ReadError::Overrun { .. }))),
            "{} elements sent to a reader that did not read (a ring holds {cap}): it saw {}",
            sent.len(),
            show_read(&got, &sent)
        );
        let after: Vec<Vec<u8>> = (0..3)
            .map(|_| {
                let e: E = element(next());
                tx.send(&e);
                e.as_bytes().to_vec()
            })
            .collect();
        harness.signals();
        let got = read_until_no_data(&mut reader, E::SIZE, limit)?;
        let expected: Vec<_> = after.iter().cloned().map(Ok).collect();
        ensure!(
            got == expected,
            "after the overrun, 3 elements sent, the reader saw {}",
            show_read(&got, &after)
        );
    }
    Ok(())
}

fn start<E, H>(
    harness: &mut H,
    channel: &[AtomicU64],
    cap: usize,
    next: &mut dyn FnMut() -> u64,
) -> Check
where
    E: ElementType,
    H: SenderHarness<E> + ?Sized,
{
    let limit = cap * 2 + 64;
    let region = Region::from_atomics(channel).expect("a channel region");
    // What was in the channel before: a run of another type, with elements.
    {
        let mut other = Writer::init(
            RegionMut::from_atomics(channel).expect("a channel region"),
            OTHER_PROTOCOL,
            E::SIZE,
            muen_channel::epoch_from(0x5354_4152_5400_0001),
        )
        .expect("the channel holds one");
        for _ in 0..3 {
            let _ = other.write_bytes(&element_bytes(E::SIZE, next()));
        }
    }
    let mut epochs: Vec<u64> = vec![region.load(Field::Epoch)];
    let mut reader = suite_reader::<E>(channel);
    let mut tx: Option<H::Sender> = None;
    for take in 0..3 {
        drop(tx.take());
        let mut sender = harness.take();
        harness.signals();
        let h = region.header();
        let what = format!("take {take}");
        ensure!(
            h.transport.get() == TRANSPORT_MARKER,
            "{what}: transport {:#x}, not SHMStream's",
            h.transport.get()
        );
        ensure!(
            h.protocol.get() == E::PROTOCOL && h.size.get() == E::SIZE as u64,
            "{what}: protocol {:#x} and element size {}, the type's are {:#x} and {}",
            h.protocol.get(),
            h.size.get(),
            E::PROTOCOL,
            E::SIZE
        );
        ensure!(
            h.elements.get() == cap as u64,
            "{what}: {} elements, the region holds {cap}",
            h.elements.get()
        );
        ensure!(
            h.wc.get() == 0 && h.wsc.get() == 0,
            "{what}: counters wsc {} and wc {}, not 0 (elements of a run before it)",
            h.wsc.get(),
            h.wc.get()
        );
        let epoch = h.epoch.get();
        ensure!(epoch != 0, "{what}: the channel is inactive (epoch 0)");
        ensure!(
            !epochs.contains(&epoch),
            "{what}: epoch {epoch:#x} again (epochs before: {epochs:x?})"
        );
        epochs.push(epoch);
        // A reader that followed the run before sees the start, and no old element.
        let got = read_until_no_data(&mut reader, E::SIZE, limit)?;
        ensure!(
            got == [Err(ReadError::EpochChanged)],
            "{what}: a reader of the run before saw {}",
            show_read(&got, &[])
        );
        let e: E = element(next());
        sender.send(&e);
        let sent = [e.as_bytes().to_vec()];
        let got = read_until_no_data(&mut reader, E::SIZE, limit)?;
        ensure!(
            got == [Ok(sent[0].clone())],
            "{what}: one element sent, the reader saw {}",
            show_read(&got, &sent)
        );
        tx = Some(sender);
    }
    Ok(())
}
