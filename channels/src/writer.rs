//! The writing end of a channel.

use core::num::NonZeroU64;
use core::sync::atomic::{fence, Ordering};

use zerocopy::{Immutable, IntoBytes};

use crate::error::{ConfigError, WriteError};
use crate::header::{ring_elements, Field, HEADER_SIZE, TRANSPORT_MARKER};
use crate::region::{Region, RegionMut};

/// An epoch from any 64-bit value, typically the TSC or the minor frame start at
/// initialisation: 0 (the null epoch) becomes 1.
///
/// A value that changes per boot or reset lets readers notice a restarted writer; a
/// constant epoch (Muen's block components use 1) does not.
pub const fn epoch_from(value: u64) -> NonZeroU64 {
    match NonZeroU64::new(value) {
        Some(e) => e,
        None => NonZeroU64::MIN,
    }
}

/// The single writer of a channel.
///
/// Created active ([`Writer::init`]); [`Writer::deactivate`] gives the region back.
/// The writer keeps its own copy of everything it published (geometry, epoch, write
/// counter) and never reads the region back, so nothing a reader or a second mapping
/// does to the memory can influence it.
#[derive(Debug)]
pub struct Writer<'a> {
    region: RegionMut<'a>,
    protocol: u64,
    size: usize,
    elements: u64,
    epoch: NonZeroU64,
    /// Private write counter (elements published in this epoch).
    wc: u64,
    /// `wc % elements`, kept incrementally to avoid a division per element.
    slot: usize,
}

impl<'a> Writer<'a> {
    /// Initialises the channel in `region` for `protocol` with `element_size`-byte
    /// elements and publishes it with `epoch`.
    ///
    /// The ring gets `(region length - 64) / element_size` elements, as readers that
    /// check the geometry expect. Sequence: deactivate (epoch 0), clear header and every
    /// slot, write the header with zero counters, publish the epoch last.
    pub fn init(
        region: RegionMut<'a>,
        protocol: u64,
        element_size: usize,
        epoch: NonZeroU64,
    ) -> Result<Self, ConfigError> {
        if protocol == 0 {
            return Err(ConfigError::ZeroProtocol);
        }
        if element_size == 0 {
            return Err(ConfigError::ZeroElementSize);
        }
        let elements =
            ring_elements(region.len(), element_size).ok_or(ConfigError::RegionTooSmall {
                region: region.len(),
                element_size,
            })?;
        let mut writer = Writer {
            region,
            protocol,
            size: element_size,
            elements,
            epoch,
            wc: 0,
            slot: 0,
        };
        writer.publish(epoch);
        Ok(writer)
    }

    /// Re-initialises the channel with a new epoch: readers see a restarted writer,
    /// resynchronise and start again from the first element written after this call.
    pub fn reset(&mut self, epoch: NonZeroU64) {
        self.publish(epoch);
    }

    /// Marks the channel inactive (epoch 0) and returns the region.
    pub fn deactivate(self) -> RegionMut<'a> {
        self.region.store_with(Field::Epoch, 0, Ordering::Release);
        self.region
    }

    fn publish(&mut self, epoch: NonZeroU64) {
        let r = &self.region;
        // Readers that see any of the stores below after their own acquire fence also
        // see epoch 0 (or the new epoch) when they re-check it.
        r.store_with(Field::Epoch, 0, Ordering::Relaxed);
        fence(Ordering::Release);
        for f in [Field::Wc, Field::Wsc] {
            r.store_with(f, 0, Ordering::Relaxed);
        }
        // Clear slot by slot, with the same access pattern as element writes, so that
        // a reader copying a slot meanwhile races only with equal-sized atomics.
        let ring_end = HEADER_SIZE + self.size * self.elements as usize;
        for offset in (HEADER_SIZE..ring_end).step_by(self.size) {
            // Inside the region: `ring_elements` fitted the ring into it.
            let _ = r.zero_bytes(offset, self.size);
        }
        let _ = r.zero_bytes(ring_end, r.len() - ring_end);
        r.store_with(Field::Transport, TRANSPORT_MARKER, Ordering::Relaxed);
        r.store_with(Field::Protocol, self.protocol, Ordering::Relaxed);
        r.store_with(Field::Size, self.size as u64, Ordering::Relaxed);
        r.store_with(Field::Elements, self.elements, Ordering::Relaxed);
        r.store_with(Field::Reserved, 0, Ordering::Relaxed);
        r.store_with(Field::Epoch, epoch.get(), Ordering::Release);
        self.epoch = epoch;
        self.wc = 0;
        self.slot = 0;
    }

    /// Writes one element given as bytes; `element.len()` must be the element size.
    #[inline]
    pub fn write_bytes(&mut self, element: &[u8]) -> Result<(), WriteError> {
        if element.len() != self.size {
            return Err(WriteError::WrongLength {
                element_size: self.size,
                found: element.len(),
            });
        }
        let next = self.wc.wrapping_add(1);
        // Announce that slot `wc % elements` is being overwritten ...
        self.region.store_with(Field::Wsc, next, Ordering::Relaxed);
        fence(Ordering::Release);
        // ... overwrite it ...
        // SAFETY: `slot < elements` and `64 + size * elements <= len` (`init`), so the
        // slot is inside the region; `element` is `size` bytes of private memory.
        unsafe {
            self.region.store_unchecked(
                HEADER_SIZE + self.slot * self.size,
                element.as_ptr(),
                self.size,
            )
        };
        // ... and publish it.
        self.region.store_with(Field::Wc, next, Ordering::Release);
        self.advance(1);
        Ok(())
    }

    /// Writes one element of type `T`; `size_of::<T>()` must be the element size.
    #[inline]
    pub fn write<T: IntoBytes + Immutable>(&mut self, element: &T) -> Result<(), WriteError> {
        self.write_bytes(element.as_bytes())
    }

    /// Writes several elements given as consecutive bytes (a whole number of
    /// elements), announcing and publishing them together: `wsc` is advanced once
    /// before the copies and `wc` once after (per ring's worth of elements).
    pub fn write_batch_bytes(&mut self, elements: &[u8]) -> Result<(), WriteError> {
        if elements.len() % self.size != 0 {
            return Err(WriteError::WrongLength {
                element_size: self.size,
                found: elements.len(),
            });
        }
        // More than one ring's worth at once would overwrite its own elements.
        for batch in elements.chunks(self.size * self.elements as usize) {
            let n = (batch.len() / self.size) as u64;
            let next = self.wc.wrapping_add(n);
            self.region.store_with(Field::Wsc, next, Ordering::Relaxed);
            fence(Ordering::Release);
            let mut slot = self.slot;
            for element in batch.chunks_exact(self.size) {
                // SAFETY: as in `write_bytes`; `slot` wraps at `elements`.
                unsafe {
                    self.region.store_unchecked(
                        HEADER_SIZE + slot * self.size,
                        element.as_ptr(),
                        self.size,
                    )
                };
                slot += 1;
                if slot == self.elements as usize {
                    slot = 0;
                }
            }
            self.region.store_with(Field::Wc, next, Ordering::Release);
            self.advance(n);
        }
        Ok(())
    }

    /// Writes several elements of type `T` as one batch (see
    /// [`Writer::write_batch_bytes`]); `size_of::<T>()` must be the element size.
    pub fn write_batch<T: IntoBytes + Immutable>(
        &mut self,
        elements: &[T],
    ) -> Result<(), WriteError> {
        if core::mem::size_of::<T>() != self.size {
            return Err(WriteError::WrongLength {
                element_size: self.size,
                found: core::mem::size_of::<T>(),
            });
        }
        self.write_batch_bytes(elements.as_bytes())
    }

    #[inline(always)]
    fn advance(&mut self, n: u64) {
        self.wc = self.wc.wrapping_add(n);
        if n == 1 {
            self.slot += 1;
            if self.slot == self.elements as usize {
                self.slot = 0;
            }
        } else {
            self.slot = (self.wc % self.elements) as usize;
        }
    }

    /// Elements written in the current epoch (the published write counter).
    pub const fn write_count(&self) -> u64 {
        self.wc
    }

    /// Number of element slots in the ring.
    pub const fn elements(&self) -> u64 {
        self.elements
    }

    /// Element size in bytes.
    pub const fn element_size(&self) -> usize {
        self.size
    }

    /// The protocol identifier.
    pub const fn protocol(&self) -> u64 {
        self.protocol
    }

    /// The current epoch.
    pub const fn epoch(&self) -> NonZeroU64 {
        self.epoch
    }

    /// A read-only handle to the channel region (for a loopback reader in tests).
    pub const fn region(&self) -> Region<'a> {
        self.region.as_region()
    }
}
