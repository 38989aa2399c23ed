//! Typed channels to other subjects: the ends of an app channel (`[channel.NAME]` in
//! `app.toml`) as handles of one element type.
//!
//! A channel `NAME` is one memory region of kind `subject_channel`, named `NAME` in
//! the sinfo page. The subject that maps it writable is its writer, the others read
//! it. [`ChannelWriter`] and [`ChannelReader`] are the two ends for elements of an
//! [`ElementType`]: the type's protocol id and size go into the channel's header, and
//! a reader accepts only a channel whose header names its own type, so both ends must
//! use one type (a writer of another type is [`ChannelError::WrongType`], never an
//! element).
//!
//! - The writer starts the channel at acquisition with a fresh epoch (the TSC, never
//!   0), so its readers see every start of this subject. After each element (or
//!   batch) it triggers the event named `NAME`, if the policy has one; Muen turns it
//!   into the vector named `NAME` of each reader.
//! - The reader is muen-channel's hardened reader: every element is copied once out
//!   of the channel and checked after the copy; the writer's restarts, overruns and
//!   broken headers are reported ([`ChannelError`]) and survived. It is
//!   [`Pollable`], so [`Runtime::poll`](crate::Runtime::poll) returns when an element
//!   waits; with the vector named `NAME` in the page, the subject sleeps until the
//!   writer signals (without it, `poll` notices data within [`MAX_SLEEP`]).
//!   The element's fields are the writer's: validate them on the returned copy.
//!
//! [`MAX_SLEEP`]: crate::MAX_SLEEP

use core::marker::PhantomData;

use muen_abi::names::Name;
use muen_channel::element;
use muen_channel::{epoch_from, Event, ReadError, Reader, Region, RegionMut, Vector, Writer};
use muen_sinfo::SubjectInfo;

use crate::device::{self, AcquireError, Pollable, Sys};

pub use muen_channel::ElementType;
pub use muen_device::channel::{ChannelError, Receiver, Sender};

/// What a [`ChannelReader`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Elements received.
    pub received: u64,
    /// Restarts of the writer seen after the first start
    /// ([`ChannelError::PeerRestarted`]).
    pub restarts: u64,
    /// Overruns ([`ChannelError::Lost`]).
    pub overruns: u64,
    /// Elements lost in overruns (saturating: a hostile writer's counter jumps can be
    /// any size).
    pub lost: u64,
    /// Reads refused for the channel's type ([`ChannelError::WrongType`]).
    pub wrong_type: u64,
    /// Protocol breaches of the writer ([`ChannelError::PeerMisbehaved`]).
    pub misbehaviour: u64,
}

/// The reading end of channel `NAME` for elements of type `E`.
pub struct ChannelReader<'a, E: ElementType> {
    name: Name,
    reader: Reader<'a>,
    /// Whether the reader followed an epoch of the writer before (then a new epoch is
    /// a restart).
    followed: bool,
    vector: Option<Vector>,
    stats: ReaderStats,
    _element: PhantomData<fn() -> E>,
}

/// The writing end of channel `NAME` for elements of type `E`.
pub struct ChannelWriter<'a, E: ElementType, S: Sys + ?Sized> {
    name: Name,
    sys: &'a S,
    writer: Writer<'a>,
    event: Option<Event>,
    _element: PhantomData<fn(&E)>,
}

/// Checks a channel name.
fn check_name(name: &str) -> Result<(), AcquireError> {
    muen_abi::names::check_channel_name(name).map_err(|error| AcquireError::BadChannelName {
        channel: device::name(name),
        error,
    })
}

impl<'a, E: ElementType> ChannelReader<'a, E> {
    /// Acquires the reading end of channel `name` of the subject `info` describes.
    ///
    /// # Safety
    ///
    /// The regions `info` names are mapped at their addresses with their rights for
    /// `'a`, and nothing else in this program reads the channel `name` through
    /// another reader.
    pub unsafe fn acquire(info: &SubjectInfo<'_>, name: &str) -> Result<Self, AcquireError> {
        element::check::<E>();
        check_name(name)?;
        let region_name = device::name(name);
        let memory = device::region(info, &region_name, true, false)?;
        if memory.writable() {
            return Err(AcquireError::NotReadOnly {
                region: region_name,
            });
        }
        let (address, len) = device::span(&region_name, &memory)?;
        // SAFETY: mapped readable for 'a (contract); this reader is its only one here.
        let region = unsafe { Region::new(address as *const u8, len) }.map_err(|error| {
            AcquireError::BadRegion {
                region: region_name.clone(),
                error,
            }
        })?;
        let reader =
            Reader::new(region, E::PROTOCOL, E::SIZE).map_err(|error| AcquireError::Channel {
                region: region_name.clone(),
                error,
            })?;
        Ok(ChannelReader {
            vector: info.vector(&region_name).map(Vector),
            name: region_name,
            reader,
            followed: false,
            stats: ReaderStats::default(),
            _element: PhantomData,
        })
    }

    /// The channel's name.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The vector the writer's signal arrives as, if the policy has one (else `poll`
    /// looks at the channel at least every [`MAX_SLEEP`](crate::MAX_SLEEP)).
    pub fn vector(&self) -> Option<Vector> {
        self.vector
    }

    /// The counters.
    pub fn stats(&self) -> ReaderStats {
        self.stats
    }

    /// Skips every element waiting now and returns how many: what the writer wrote
    /// before this subject (re)started, for example, which a server may not want to
    /// execute again. An error of the channel is reported as by
    /// [`receive`](Receiver::receive) (and nothing is skipped then).
    pub fn drain(&mut self) -> Result<u64, ChannelError> {
        let drained = self.reader.drain();
        self.followed |= self.reader.epoch().is_some();
        match drained {
            Ok(n) => Ok(n),
            Err(ReadError::Misbehaviour(m)) => {
                // Re-based all the same (muen-channel's `drain`).
                self.stats.misbehaviour += 1;
                Err(ChannelError::PeerMisbehaved(m))
            }
            Err(e) => Err(self.error(e)),
        }
    }

    /// The error for `e`, counted. `EpochChanged` is a restart here.
    fn error(&mut self, e: ReadError) -> ChannelError {
        match e {
            ReadError::NoData | ReadError::Inactive | ReadError::WrongLength { .. } => {
                ChannelError::Again
            }
            ReadError::EpochChanged => {
                self.stats.restarts += 1;
                ChannelError::PeerRestarted
            }
            ReadError::Overrun { lost } => {
                self.stats.overruns += 1;
                // A hostile writer's counter can make `lost` anything.
                self.stats.lost = self.stats.lost.saturating_add(lost);
                ChannelError::Lost { lost }
            }
            ReadError::Incompatible(i) => {
                self.stats.wrong_type += 1;
                ChannelError::WrongType(i)
            }
            ReadError::Misbehaviour(m) => {
                self.stats.misbehaviour += 1;
                ChannelError::PeerMisbehaved(m)
            }
        }
    }

    /// Runs `read` once; again if it reported a new epoch without synchronising to it
    /// (muen-channel discarded a copy because the writer restarted, and reports the
    /// same restart again when it synchronises: one restart, reported once); and once
    /// more if it only reported the writer's first epoch (the start of a writer this
    /// reader never followed is no restart).
    fn read_with<T>(
        &mut self,
        mut read: impl FnMut(&mut Reader<'a>) -> Result<T, ReadError>,
    ) -> Result<T, ChannelError> {
        let first = !self.followed;
        let mut result = read(&mut self.reader);
        if result.as_ref().err() == Some(&ReadError::EpochChanged) && self.reader.epoch().is_none()
        {
            result = read(&mut self.reader);
        }
        if first && result.as_ref().err() == Some(&ReadError::EpochChanged) {
            result = read(&mut self.reader);
        }
        self.followed |= self.reader.epoch().is_some();
        result.map_err(|e| self.error(e))
    }
}

impl<E: ElementType> Pollable for ChannelReader<'_, E> {
    fn has_data(&self) -> bool {
        self.reader.has_pending_data()
    }
}

impl<E: ElementType> Receiver<E> for ChannelReader<'_, E> {
    fn receive(&mut self) -> Result<E, ChannelError> {
        let element = self.read_with(|r| r.read::<E>())?;
        self.stats.received += 1;
        Ok(element)
    }

    fn receive_batch(&mut self, elements: &mut [E]) -> Result<usize, ChannelError> {
        if elements.is_empty() {
            return Ok(0);
        }
        let n = self.read_with(|r| r.read_batch::<E>(elements))?;
        self.stats.received += n as u64;
        Ok(n)
    }
}

impl<'a, E: ElementType, S: Sys + ?Sized> ChannelWriter<'a, E, S> {
    /// Acquires the writing end of channel `name` of the subject `info` describes and
    /// starts the channel (a new epoch from the TSC).
    ///
    /// # Safety
    ///
    /// The regions `info` names are mapped at their addresses with their rights for
    /// `'a`, and nothing else in this program writes the channel `name`.
    pub unsafe fn acquire(
        sys: &'a S,
        info: &SubjectInfo<'_>,
        name: &str,
    ) -> Result<Self, AcquireError> {
        element::check::<E>();
        check_name(name)?;
        let region_name = device::name(name);
        let memory = device::region(info, &region_name, true, true)?;
        let event = device::event(info, &region_name)?;
        let (address, len) = device::span(&region_name, &memory)?;
        // SAFETY: mapped writable for 'a (contract, and checked writable above); this
        // writer is its only user here.
        let region = unsafe { RegionMut::new(address as *mut u8, len) }.map_err(|error| {
            AcquireError::BadRegion {
                region: region_name.clone(),
                error,
            }
        })?;
        let writer = Writer::init(region, E::PROTOCOL, E::SIZE, epoch_from(sys.tsc().ticks()))
            .map_err(|error| AcquireError::Channel {
                region: region_name.clone(),
                error,
            })?;
        Ok(ChannelWriter {
            name: region_name,
            sys,
            writer,
            event,
            _element: PhantomData,
        })
    }

    /// The channel's name.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The event triggered after writing, if the policy has one.
    pub fn event(&self) -> Option<Event> {
        self.event
    }

    /// Elements sent since the channel was started.
    pub fn sent(&self) -> u64 {
        self.writer.write_count()
    }

    /// How many elements the channel holds: a reader that falls further behind loses
    /// elements.
    pub fn capacity(&self) -> u64 {
        self.writer.elements()
    }

    /// The channel's epoch (this start's).
    pub fn epoch(&self) -> u64 {
        self.writer.epoch().get()
    }

    fn signal(&self) {
        if let Some(e) = self.event {
            self.sys.trigger(e);
        }
    }
}

impl<E: ElementType, S: Sys + ?Sized> Sender<E> for ChannelWriter<'_, E, S> {
    fn send(&mut self, element: &E) {
        // Cannot fail: the writer was started with the type's size.
        let _ = self.writer.write(element);
        self.signal();
    }

    fn send_batch(&mut self, elements: &[E]) {
        if elements.is_empty() {
            return;
        }
        // Cannot fail, as above.
        let _ = self.writer.write_batch(elements);
        self.signal();
    }
}

#[cfg(test)]
mod tests;
