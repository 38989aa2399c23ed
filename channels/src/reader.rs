//! The reading end of a channel, hardened against a hostile writer.
//!
//! The reader trusts only its own configuration: the protocol it expects, that
//! protocol's element size, and the length of the region it mapped. Everything in the
//! region is input from the peer. Header fields are loaded once per use into private
//! variables, the ring geometry is validated once per epoch and then kept privately,
//! and elements are copied into private memory before anything looks at them.

use core::mem::{size_of, MaybeUninit};
use core::num::NonZeroU64;
use core::sync::atomic::{fence, Ordering};

use zerocopy::{FromBytes, IntoBytes};

use crate::copy;
use crate::error::{ConfigError, Incompatible, Misbehaviour, ReadError};
use crate::header::{Field, HEADER_SIZE, TRANSPORT_MARKER};
use crate::region::{OutOfBounds, Region};

macro_rules! define_step {
    ($vis:vis) => {
        /// Points inside a read where tests (and, built with `--cfg fuzzing`, the fuzz
        /// target in `channels/fuzz`) inject concurrent writer actions.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        $vis enum Step {
            /// The epoch matched the synchronised one, before the write counter is
            /// loaded.
            EpochLoaded,
            /// Synchronisation loaded the header fields, before the epoch re-check.
            Synchronising,
            /// The elements were copied, before the counters and epoch are re-checked.
            Copied,
        }
    };
}

#[cfg(not(fuzzing))]
define_step!(pub(crate));
#[cfg(fuzzing)]
define_step!(pub);

/// The reader of a channel.
///
/// # Results
///
/// [`Reader::read`] returns `Ok(element)` or a [`ReadError`] saying why not. In short:
/// `NoData` and `Inactive` mean wait, `EpochChanged` means read again (the writer
/// restarted and this reader now follows the new epoch), `Overrun` means elements were
/// lost and the reader has skipped ahead, `Incompatible` and `Misbehaviour` describe a
/// peer this reader will not follow. No error leaves the reader stuck or repeats
/// forever: every call re-examines the channel; after an overrun the read counter
/// moves forward to the writer's; a write counter that went back is reported once and
/// then waited for (the read counter never goes back within an epoch, so no element
/// is delivered twice); [`Reader::has_pending_data`] turns false after each report.
///
/// # Synchronisation
///
/// The first read in an epoch validates the header and returns
/// `Err(EpochChanged)` without data; the next read returns elements. A header is
/// accepted if `transport` is the SHMStream v2 marker, `protocol` and `size` equal the
/// expected ones, `elements >= 1` and `64 + size * elements` fits the region (checked
/// arithmetic), and the epoch did not change while the fields were read. The geometry
/// is then kept privately and never read again in this epoch.
#[derive(Debug)]
pub struct Reader<'a> {
    region: Region<'a>,
    protocol: u64,
    size: usize,
    /// Epoch this reader is synchronised to; 0 = not synchronised.
    epoch: u64,
    /// Validated ring length of `epoch` (`>= 1` while synchronised).
    elements: u64,
    /// Read counter: the next element to read.
    rc: u64,
    /// The write counter last loaded in `epoch` (acquire) and found at most `elements`
    /// ahead of `rc`: elements `rc..known_wc` are known to be published.
    known_wc: u64,
    /// `rc % elements`, kept incrementally to avoid a division per element.
    slot: usize,
    /// An epoch whose header was refused (0 = none): no pending data for it unless
    /// the writer repairs the header in place.
    refused_epoch: u64,
    /// `WriteCounterBehind` was reported and the write counter has not passed the read
    /// counter since: later reads say `NoData` until it does.
    behind_reported: bool,
    /// The last look at the write counter found no new element: the reader is right
    /// behind its writer, which is probably filling the next slot now, so the next
    /// element is copied from its end (module `copy`, "Why copies go from the end").
    caught_up: bool,
}

impl<'a> Reader<'a> {
    /// A reader of `protocol` with `element_size`-byte elements over `region`.
    ///
    /// Touches no memory; the first [`Reader::read`] synchronises.
    pub fn new(
        region: Region<'a>,
        protocol: u64,
        element_size: usize,
    ) -> Result<Self, ConfigError> {
        if protocol == 0 {
            return Err(ConfigError::ZeroProtocol);
        }
        if element_size == 0 {
            return Err(ConfigError::ZeroElementSize);
        }
        if region.len() - HEADER_SIZE < element_size {
            return Err(ConfigError::RegionTooSmall {
                region: region.len(),
                element_size,
            });
        }
        Ok(Reader {
            region,
            protocol,
            size: element_size,
            epoch: 0,
            elements: 0,
            rc: 0,
            known_wc: 0,
            slot: 0,
            refused_epoch: 0,
            behind_reported: false,
            caught_up: false,
        })
    }

    /// Reads the next element as a `T`; `size_of::<T>()` must be the element size.
    ///
    /// The element is copied once out of the channel, then the copy is checked (the
    /// writer did not start overwriting it, the epoch did not change), then returned by
    /// value. Validate protocol fields on the returned value, never on the channel.
    #[inline]
    pub fn read<T: FromBytes>(&mut self) -> Result<T, ReadError> {
        if size_of::<T>() != self.size {
            return Err(ReadError::WrongLength {
                element_size: self.size,
                found: size_of::<T>(),
            });
        }
        let mut element = MaybeUninit::<T>::uninit();
        // SAFETY: `element` is `size` bytes of private memory, room for one element.
        unsafe { self.read_raw(element.as_mut_ptr().cast::<u8>(), 1, |_| {})? };
        // SAFETY: the read initialised all `size_of::<T>()` bytes, and `T: FromBytes`
        // accepts every byte pattern.
        Ok(unsafe { element.assume_init() })
    }

    /// Reads the next element into `element`, which must be one element long. On
    /// error the contents of `element` are unspecified.
    #[inline]
    pub fn read_bytes(&mut self, element: &mut [u8]) -> Result<(), ReadError> {
        if element.len() != self.size {
            return Err(ReadError::WrongLength {
                element_size: self.size,
                found: element.len(),
            });
        }
        // SAFETY: `element` is `size` bytes of private memory, room for one element.
        unsafe { self.read_raw(element.as_mut_ptr(), 1, |_| {}) }.map(|_| ())
    }

    /// Reads as many of the next elements as are available and fit into `elements`
    /// (one after the other; its length must be a non-zero multiple of the element
    /// size) and returns how many it read (at least one).
    ///
    /// The elements are checked together, like one element by [`Reader::read`]: at
    /// most one load of the epoch and the write counter before the copies (none while
    /// the reader knows enough elements to be published), one check of `wsc` and the
    /// epoch after them. If the writer started overwriting any of them during the copies,
    /// all are discarded (`Overrun`). The results are those of `read` otherwise. On
    /// error the contents of `elements` are unspecified.
    #[inline]
    pub fn read_batch_bytes(&mut self, elements: &mut [u8]) -> Result<usize, ReadError> {
        if elements.is_empty() || elements.len() % self.size != 0 {
            return Err(ReadError::WrongLength {
                element_size: self.size,
                found: elements.len(),
            });
        }
        let capacity = (elements.len() / self.size) as u64;
        // SAFETY: `elements` is `capacity * size` bytes of private memory.
        unsafe { self.read_raw(elements.as_mut_ptr(), capacity, |_| {}) }.map(|n| n as usize)
    }

    /// [`Reader::read_batch_bytes`] into a slice of `T`s (`size_of::<T>()` must be the
    /// element size and `elements` not empty); returns how many were read. The
    /// elements after those are left as they were; on error all are unspecified (but
    /// valid `T`s).
    #[inline]
    pub fn read_batch<T: FromBytes + IntoBytes>(
        &mut self,
        elements: &mut [T],
    ) -> Result<usize, ReadError> {
        if size_of::<T>() != self.size {
            return Err(ReadError::WrongLength {
                element_size: self.size,
                found: size_of::<T>(),
            });
        }
        self.read_batch_bytes(elements.as_mut_bytes())
    }

    /// The read algorithm, for up to `capacity` elements; `hook` runs at the [`Step`]s
    /// (tests simulate a concurrent writer there; elsewhere it is empty and compiles
    /// away). Returns how many elements it read (between 1 and `capacity`).
    ///
    /// # Safety
    ///
    /// `capacity >= 1`, and `dst` is valid for writing `capacity * self.size` bytes of
    /// private memory.
    #[inline(always)]
    pub(crate) unsafe fn read_raw(
        &mut self,
        dst: *mut u8,
        capacity: u64,
        mut hook: impl FnMut(Step),
    ) -> Result<u64, ReadError> {
        let r = self.region;
        let rc = self.rc;
        let (epoch, wc, start) = self.snapshot(capacity, &mut hook)?;
        // 1 <= wc - rc <= elements.
        let available = wc - rc;
        debug_assert!((1..=self.elements).contains(&available));
        // 1 <= n <= elements.
        let n = available.min(capacity);
        let elements = self.elements as usize;
        let mut slot = self.slot;
        for i in 0..n as usize {
            // SAFETY: `slot < elements` and `64 + size * elements <= region.len()` were
            // established when this epoch was synchronised (and are private copies
            // since), so the slot lies inside the region; `dst` has room for
            // `capacity >= n` elements (caller). One copy per element: a writer copies
            // element by element too, so racing copies have the same length.
            unsafe {
                r.load_unchecked_from(
                    HEADER_SIZE + slot * self.size,
                    dst.add(i * self.size),
                    self.size,
                    start,
                )
            };
            slot += 1;
            if slot == elements {
                slot = 0;
            }
        }
        hook(Step::Copied);
        self.validate(epoch, wc, n, slot)?;
        Ok(n)
    }

    /// Reads the next element through `copy`, which copies the parts of it that it
    /// needs out of the channel ([`ElementRef::copy_to`]), for example a length field
    /// and then only as many bytes as it says, straight into the caller's buffer.
    ///
    /// The copies are checked together afterwards, exactly as the one copy of
    /// [`Reader::read`] (the writer did not start overwriting the element, the epoch
    /// did not change), and `copy`'s result is returned only if they are good. `copy`
    /// runs once per call, and only when an element is published (not for `NoData`,
    /// `EpochChanged` and the other errors found before the copy). Until this returns
    /// `Ok`, whatever `copy` copied may be a mix of two elements: it must use those
    /// bytes only to decide how much to copy (each copy is bounds-checked), never to
    /// trust them.
    #[inline]
    pub fn read_with<R>(
        &mut self,
        copy: impl FnOnce(&ElementRef<'a>) -> R,
    ) -> Result<R, ReadError> {
        self.read_with_hooked(copy, |_| {})
    }

    /// [`Reader::read_with`] with `hook` run at the [`Step`]s.
    #[inline(always)]
    pub(crate) fn read_with_hooked<R>(
        &mut self,
        copy: impl FnOnce(&ElementRef<'a>) -> R,
        mut hook: impl FnMut(Step),
    ) -> Result<R, ReadError> {
        let (epoch, wc, _) = self.snapshot(1, &mut hook)?;
        // `slot < elements` and `64 + size * elements <= region.len()` (synchronised),
        // so the element lies inside the region; `ElementRef` checks every copy anyway.
        let element = ElementRef {
            region: self.region,
            offset: HEADER_SIZE + self.slot * self.size,
            size: self.size,
        };
        let result = copy(&element);
        hook(Step::Copied);
        let mut slot = self.slot + 1;
        if slot as u64 == self.elements {
            slot = 0;
        }
        self.validate(epoch, wc, 1, slot)?;
        Ok(result)
    }

    /// The epoch and a write counter with `1 <= wc - rc <= elements` before copying up
    /// to `capacity` elements, and the end to copy them from, or the error to report.
    /// From the end ([`copy::Start::End`]) only right after a look at the write counter
    /// found nothing new: the reader is then right behind the writer, which is
    /// probably filling the next slot (module `copy`, "Why copies go from the end").
    #[inline(always)]
    fn snapshot(
        &mut self,
        capacity: u64,
        hook: &mut impl FnMut(Step),
    ) -> Result<(u64, u64, copy::Start), ReadError> {
        let known = self
            .rc
            .checked_add(capacity)
            .is_some_and(|end| end <= self.known_wc);
        if self.epoch != 0 && known {
            // Enough elements to fill the buffer were complete when `known_wc` was
            // loaded (acquire) in this epoch, and `known_wc - rc <= elements` was
            // checked then: no header access is needed before the copies. The checks
            // after them (epoch, `wsc`) decide as always.
            Ok((self.epoch, self.known_wc, copy::Start::Front))
        } else {
            let (epoch, wc) = self.published(hook)?;
            // Set by the `NoData` before; cleared here, off the path above.
            let start = if core::mem::take(&mut self.caught_up) {
                copy::Start::End
            } else {
                copy::Start::Front
            };
            Ok((epoch, wc, start))
        }
    }

    /// The checks after copying elements `rc..rc + n` (`n <= wc - rc`) of `epoch`:
    /// the epoch did not change and the writer did not start overwriting any of them.
    /// On success the read counter moves past them and the slot to `slot`.
    #[inline(always)]
    fn validate(&mut self, epoch: u64, wc: u64, n: u64, slot: usize) -> Result<(), ReadError> {
        let r = self.region;
        let rc = self.rc;
        // Acquire fence: if a copy saw any byte of a later write of its slot (or of a
        // re-initialisation), the loads below see the `wsc` (or epoch) store that
        // preceded it.
        fence(Ordering::Acquire);
        let wsc = r.load_with(Field::Wsc, Ordering::Relaxed);
        if r.load_with(Field::Epoch, Ordering::Relaxed) != epoch {
            self.epoch = 0;
            return Err(ReadError::EpochChanged);
        }
        // No overflow: `rc + n <= wc`.
        let end = rc + n;
        if wsc < end {
            // An honest writer has `wsc >= wc >= rc + n`.
            self.set_rc(wc);
            return Err(ReadError::Misbehaviour(
                Misbehaviour::CountersInconsistent { wsc, rc },
            ));
        }
        if wsc - rc > self.elements {
            // The writer started element `rc + elements` (the slot of our oldest copy)
            // during the copies. Skip to the newest complete element.
            let now = r.load_with(Field::Wc, Ordering::Relaxed);
            self.set_rc(now.max(wc));
            if now <= rc {
                return Err(ReadError::Misbehaviour(
                    Misbehaviour::CountersInconsistent { wsc, rc },
                ));
            }
            return Err(ReadError::Overrun { lost: self.rc - rc });
        }
        self.rc = end;
        self.slot = slot;
        Ok(())
    }

    /// The header checks before the copies: the epoch (synchronising to a new one)
    /// and the write counter, which is remembered in `known_wc`. Returns the epoch and
    /// a write counter with `1 <= wc - rc <= elements`, or the error to report.
    #[inline(always)]
    fn published(&mut self, hook: &mut impl FnMut(Step)) -> Result<(u64, u64), ReadError> {
        let r = self.region;
        // Acquire: if the epoch is the one we synchronised to, the header and counters
        // we read next are at least as new as its publication.
        let epoch = r.load_with(Field::Epoch, Ordering::Acquire);
        if epoch == 0 {
            self.epoch = 0;
            self.refused_epoch = 0;
            return Err(ReadError::Inactive);
        }
        if epoch != self.epoch {
            self.synchronise(epoch, hook)?;
            return Err(ReadError::EpochChanged);
        }
        hook(Step::EpochLoaded);
        // Acquire: pairs with the writer's release store of `wc`, so the elements
        // below `wc` are complete in our view.
        let wc = r.load_with(Field::Wc, Ordering::Acquire);
        let rc = self.rc;
        if wc == rc {
            self.caught_up = true;
            return Err(ReadError::NoData);
        }
        if wc < rc {
            // The read counter never goes back within an epoch: the slots below it
            // hold elements this reader has delivered (or skipped) already.
            if self.behind_reported {
                return Err(ReadError::NoData);
            }
            self.confirm_epoch(epoch)?;
            self.behind_reported = true;
            return Err(ReadError::Misbehaviour(Misbehaviour::WriteCounterBehind {
                wc,
                rc,
            }));
        }
        self.behind_reported = false;
        if wc - rc > self.elements {
            self.confirm_epoch(epoch)?;
            self.set_rc(wc);
            return Err(ReadError::Overrun { lost: wc - rc });
        }
        self.known_wc = wc;
        Ok((epoch, wc))
    }

    /// Validates the header of `epoch` and, if it is acceptable, synchronises to it
    /// (read counter 0). `Ok` means synchronised.
    #[cold]
    fn synchronise(&mut self, epoch: u64, hook: &mut impl FnMut(Step)) -> Result<(), ReadError> {
        let r = self.region;
        self.epoch = 0;
        // Each field is loaded exactly once; only these private copies are checked
        // and kept.
        let transport = r.load_with(Field::Transport, Ordering::Relaxed);
        let protocol = r.load_with(Field::Protocol, Ordering::Relaxed);
        let size = r.load_with(Field::Size, Ordering::Relaxed);
        let elements = r.load_with(Field::Elements, Ordering::Relaxed);
        hook(Step::Synchronising);
        let verdict = self.check_header(transport, protocol, size, elements);
        // A re-initialisation that overlapped the loads above changed the epoch.
        fence(Ordering::Acquire);
        if r.load_with(Field::Epoch, Ordering::Relaxed) != epoch {
            return Err(ReadError::EpochChanged);
        }
        match verdict {
            Ok(()) => {
                self.epoch = epoch;
                self.elements = elements;
                self.rc = 0;
                self.known_wc = 0;
                self.slot = 0;
                self.refused_epoch = 0;
                self.behind_reported = false;
                self.caught_up = false;
                Ok(())
            }
            Err(e) => {
                self.refused_epoch = epoch;
                Err(e)
            }
        }
    }

    fn check_header(
        &self,
        transport: u64,
        protocol: u64,
        size: u64,
        elements: u64,
    ) -> Result<(), ReadError> {
        if transport != TRANSPORT_MARKER {
            return Err(ReadError::Incompatible(Incompatible::Transport {
                found: transport,
            }));
        }
        if protocol != self.protocol {
            return Err(ReadError::Incompatible(Incompatible::Protocol {
                found: protocol,
            }));
        }
        if size != self.size as u64 {
            return Err(ReadError::Incompatible(Incompatible::ElementSize {
                found: size,
            }));
        }
        if elements == 0 {
            return Err(ReadError::Misbehaviour(Misbehaviour::NoElements));
        }
        let fits = size
            .checked_mul(elements)
            .and_then(|ring| ring.checked_add(HEADER_SIZE as u64))
            .is_some_and(|end| end <= self.region.len() as u64);
        if !fits {
            return Err(ReadError::Misbehaviour(Misbehaviour::RingOutsideRegion {
                elements,
            }));
        }
        Ok(())
    }

    /// Reports an epoch change that happened after `epoch` was loaded, so that a
    /// verdict drawn from later loads (overrun, counter error) is not blamed on a
    /// writer that merely restarted.
    fn confirm_epoch(&mut self, epoch: u64) -> Result<(), ReadError> {
        fence(Ordering::Acquire);
        if self.region.load_with(Field::Epoch, Ordering::Relaxed) != epoch {
            self.epoch = 0;
            return Err(ReadError::EpochChanged);
        }
        Ok(())
    }

    /// Re-bases the read counter (overrun, counter errors, drain); no element is known
    /// to be published after it until `wc` is loaded again.
    fn set_rc(&mut self, rc: u64) {
        self.rc = rc;
        self.known_wc = rc;
        // `elements >= 1` while synchronised, the only state that calls this.
        self.slot = (rc % self.elements) as usize;
    }

    /// Discards every element currently in the channel (`rc := wc`) and returns how
    /// many were discarded. Synchronises first if needed (so that a drain at start-up
    /// discards what an earlier incarnation of this subject left unread).
    ///
    /// This is also how an application follows a writer whose counter went back
    /// without a new epoch (a restart with a constant epoch that the reader did not
    /// see as inactive): `read` reports that once as `WriteCounterBehind` and never
    /// goes back by itself; `drain` re-bases the reader on the writer's counter, and
    /// returns the same error to say it went back.
    pub fn drain(&mut self) -> Result<u64, ReadError> {
        let r = self.region;
        let epoch = r.load_with(Field::Epoch, Ordering::Acquire);
        if epoch == 0 {
            self.epoch = 0;
            self.refused_epoch = 0;
            return Err(ReadError::Inactive);
        }
        if epoch != self.epoch {
            self.synchronise(epoch, &mut |_| {})?;
        }
        let wc = r.load_with(Field::Wc, Ordering::Acquire);
        self.confirm_epoch(epoch)?;
        let rc = self.rc;
        self.set_rc(wc);
        self.behind_reported = false;
        match wc.checked_sub(rc) {
            Some(n) => Ok(n),
            None => Err(ReadError::Misbehaviour(Misbehaviour::WriteCounterBehind {
                wc,
                rc,
            })),
        }
    }

    /// Whether [`Reader::read`] would report something now: an element, an overrun
    /// or a counter error not reported yet, or a new epoch to synchronise to.
    ///
    /// A pure check (it changes no reader state and does not synchronise): false
    /// while the channel is inactive; for an epoch whose header this reader refused,
    /// whether the header is acceptable now (the writer repaired it in place; a
    /// broken header keeps a poll loop asleep instead of spinning); true for any other
    /// epoch this reader is not synchronised to; else whether the write counter is
    /// ahead of the read counter, or behind it and not reported yet. A hint for
    /// sleeping; `read` decides.
    pub fn has_pending_data(&self) -> bool {
        let r = self.region;
        let epoch = r.load_with(Field::Epoch, Ordering::Acquire);
        if epoch == 0 {
            return false;
        }
        if epoch != self.epoch {
            if epoch != self.refused_epoch {
                return true;
            }
            let transport = r.load_with(Field::Transport, Ordering::Relaxed);
            let protocol = r.load_with(Field::Protocol, Ordering::Relaxed);
            let size = r.load_with(Field::Size, Ordering::Relaxed);
            let elements = r.load_with(Field::Elements, Ordering::Relaxed);
            return self
                .check_header(transport, protocol, size, elements)
                .is_ok();
        }
        let wc = r.load_with(Field::Wc, Ordering::Relaxed);
        wc > self.rc || (wc < self.rc && !self.behind_reported)
    }

    /// Whether the next element will be copied from its end (tests).
    #[cfg(test)]
    pub(crate) const fn copies_from_end(&self) -> bool {
        self.caught_up
    }

    /// The epoch this reader is synchronised to, if any.
    pub const fn epoch(&self) -> Option<NonZeroU64> {
        NonZeroU64::new(self.epoch)
    }

    /// The read counter: index of the next element this reader will return.
    pub const fn read_count(&self) -> u64 {
        self.rc
    }

    /// The validated ring length, while synchronised.
    pub const fn elements(&self) -> Option<u64> {
        if self.epoch == 0 {
            None
        } else {
            Some(self.elements)
        }
    }

    /// Element size in bytes (the expected one).
    pub const fn element_size(&self) -> usize {
        self.size
    }

    /// The expected protocol identifier.
    pub const fn protocol(&self) -> u64 {
        self.protocol
    }

    /// The region this reader reads.
    pub const fn region(&self) -> Region<'a> {
        self.region
    }
}

/// One element of the ring while [`Reader::read_with`] reads it: its bytes can be
/// copied out in parts. Nothing copied through it is valid before `read_with`
/// returned `Ok`.
#[derive(Clone, Copy, Debug)]
pub struct ElementRef<'r> {
    region: Region<'r>,
    /// Offset of the element in the region.
    offset: usize,
    size: usize,
}

impl ElementRef<'_> {
    /// The element size.
    pub const fn size(&self) -> usize {
        self.size
    }

    /// Copies `dst.len()` bytes from `offset` of the element into `dst` (with the
    /// same accesses as the reader's own copy). A range beyond the element is an
    /// error and copies nothing.
    pub fn copy_to(&self, offset: usize, dst: &mut [u8]) -> Result<(), OutOfBounds> {
        let inside = offset
            .checked_add(dst.len())
            .is_some_and(|end| end <= self.size);
        if !inside {
            return Err(OutOfBounds {
                offset,
                len: dst.len(),
            });
        }
        // The element lies inside the region (`Reader::read_with_hooked`); the region
        // checks again.
        self.region.read_bytes(self.offset + offset, dst)
    }
}

/// Access for the fuzz target (`channels/fuzz`), which plays a writer that acts in the
/// middle of a read and checks the reader's state against a model. Only in builds
/// with `--cfg fuzzing` (cargo-fuzz sets it).
#[cfg(fuzzing)]
impl Reader<'_> {
    /// [`Reader::read_batch_bytes`] with `hook` run at the [`Step`]s.
    #[doc(hidden)]
    pub fn read_batch_bytes_hooked(
        &mut self,
        elements: &mut [u8],
        hook: impl FnMut(Step),
    ) -> Result<usize, ReadError> {
        if elements.is_empty() || elements.len() % self.size != 0 {
            return Err(ReadError::WrongLength {
                element_size: self.size,
                found: elements.len(),
            });
        }
        let capacity = (elements.len() / self.size) as u64;
        // SAFETY: `elements` is `capacity * size` bytes of private memory.
        unsafe { self.read_raw(elements.as_mut_ptr(), capacity, hook) }.map(|n| n as usize)
    }

    /// The private state: epoch, elements, read counter, known write counter, slot,
    /// refused epoch, whether a counter behind was reported.
    #[doc(hidden)]
    pub fn fuzz_state(&self) -> (u64, u64, u64, u64, usize, u64, bool) {
        (
            self.epoch,
            self.elements,
            self.rc,
            self.known_wc,
            self.slot,
            self.refused_epoch,
            self.behind_reported,
        )
    }
}
