//! The store: an append-only log of checksummed records on a block device.
//!
//! [`Log::open`] reads both superblocks, verifies every record slot and counts the
//! boot (rules 1 to 4 below); [`Log::append`] then appends records one after another
//! (rule 5) and [`Log::read`] reads one back, verified again. [`boot`] is one boot of
//! the `blockstore` example: open, append one record.
//!
//! The rules (the format is in [`format`](crate::format)):
//!
//! 1. **Superblock.** The valid copy with the higher boot count is current (copy 0 on
//!    a tie). If neither copy is valid and both sectors are all zeros, the disk is new
//!    and gets formatted with `min(sectors - 2, MAX_LOG_SLOTS)` slots. If neither is
//!    valid and one is not all zeros, the disk holds something else: [`boot`] stops
//!    with [`StoreError::NotAStore`] and writes nothing.
//! 2. **Log.** Every slot is read and checked. The *log* is the longest run of valid
//!    records from slot 0: records 1..=K. Slot K is the *append position*.
//! 3. **Tail.** What slot K holds: nothing (all zeros: [`Tail::Clean`]), or something
//!    that is not a valid record (a torn or damaged write: [`Tail::Invalid`], reported
//!    with the reason). K = `log_slots` is [`Tail::Full`].
//! 4. **Boot count.** The new count (current + 1) goes into the *other* copy, so the
//!    current one survives a torn superblock write; then the disk is synced.
//! 5. **Append.** Record K + 1 is written into slot K, synced, read back and verified,
//!    unless the log is full, or a valid record lies *beyond* slot K (a hole: a record
//!    in the middle was damaged, and writing there would splice a new record into an
//!    old log; [`Appended::Hole`] asks for repair instead). Slot K never holds a valid
//!    record (that is how K was found), and a record touches no sector but its own
//!    slot's, so **a valid record is never overwritten**. After an append the log is
//!    K + 1 records long and the next append goes to slot K + 1, which held no valid
//!    record at the open either (none lies beyond the tail, or nothing is appended).

use muen_subject::device::{BlockDevice, BlockError};

use crate::format::{
    Record, SectorError, Superblock, LOG_START, MAX_LOG_SLOTS, PAYLOAD_MAX, SECTOR,
};

/// The largest device block this store works with (a sector write is a
/// read-modify-write of the block holding it).
pub const MAX_BLOCK: u64 = 4096;
/// Bytes read per request while checking the slots.
const SCAN_CHUNK: usize = 32 * 1024;
const _: () = assert!(SCAN_CHUNK as u64 % MAX_BLOCK == 0);

/// Why a boot failed. Nothing after the failing step was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The device's block size is not 512..=4096.
    BlockSize(u64),
    /// The device has fewer than three sectors (two superblocks and one slot).
    TooSmall {
        /// Its capacity in bytes.
        capacity: u64,
    },
    /// Neither superblock copy is valid and the disk is not blank: it is not ours.
    NotAStore {
        /// What copy 0 is.
        copy0: SectorError,
        /// What copy 1 is.
        copy1: SectorError,
    },
    /// The superblock's log is larger than the disk.
    LogBeyondDisk {
        /// Slots the superblock says.
        log_slots: u64,
        /// Slots that fit.
        fit: u64,
    },
    /// The boot count cannot grow any more.
    BootCountOverflow,
    /// The device failed.
    Io(BlockError),
    /// The record just written did not read back valid.
    WriteNotVerified {
        /// Its slot.
        slot: u64,
        /// What it read back as.
        error: SectorError,
    },
}

impl From<BlockError> for StoreError {
    fn from(e: BlockError) -> Self {
        StoreError::Io(e)
    }
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StoreError::BlockSize(b) => write!(f, "block size {b} not in 512..=4096"),
            StoreError::TooSmall { capacity } => write!(f, "disk of {capacity} bytes too small"),
            StoreError::NotAStore { copy0, copy1 } => {
                write!(
                    f,
                    "not a blockstore disk: sector 0 {copy0}, sector 1 {copy1}"
                )
            }
            StoreError::LogBeyondDisk { log_slots, fit } => {
                write!(f, "log of {log_slots} slots, disk holds {fit}")
            }
            StoreError::BootCountOverflow => f.write_str("boot count overflow"),
            StoreError::Io(e) => write!(f, "I/O: {e}"),
            StoreError::WriteNotVerified { slot, error } => {
                write!(f, "slot {slot} read back {error}")
            }
        }
    }
}

/// Which superblock the boot started from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// Both copies were blank: the disk was formatted.
    Blank,
    /// Copy `copy` (0 or 1) with `boot_count`.
    Copy {
        /// The copy.
        copy: u8,
        /// Its boot count.
        boot_count: u64,
        /// What was wrong with the other copy, unless it was valid.
        other: Option<SectorError>,
    },
}

/// What the slot after the log holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// All zeros.
    Clean,
    /// Not a valid record: a torn or damaged write.
    Invalid {
        /// The slot.
        slot: u64,
        /// Why.
        error: SectorError,
    },
    /// There is no slot after the log.
    Full,
}

/// Whether this boot's record was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Record `sequence` was written into slot `sequence - 1` and verified.
    Yes {
        /// Its sequence number.
        sequence: u64,
    },
    /// The log is full.
    Full,
    /// Valid records lie beyond the first invalid slot; nothing was written.
    Hole,
}

/// The last record of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Last {
    /// Its sequence number.
    pub sequence: u64,
    /// The boot that wrote it.
    pub boot: u64,
    /// Its payload length.
    pub length: usize,
    /// Its payload (the first `length` bytes).
    pub payload: [u8; PAYLOAD_MAX],
}

/// What a boot found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// Block size and capacity of the device.
    pub block_size: u64,
    /// Capacity in bytes.
    pub capacity: u64,
    /// The superblock the boot started from.
    pub found: Found,
    /// Record slots of the disk.
    pub log_slots: u64,
    /// Records verified: the log's length before this boot's record.
    pub records: u64,
    /// The last record before this boot's, if any.
    pub last: Option<Last>,
    /// What followed the log.
    pub tail: Tail,
    /// Valid records beyond the tail (not part of the log; left alone).
    pub stranded: u64,
    /// Slots beyond the tail that are neither blank nor valid (left alone until the
    /// log reaches them).
    pub damaged: u64,
    /// The boot count, this boot included.
    pub boot_count: u64,
    /// Whether this boot's record was written.
    pub appended: Appended,
}

/// Sector access on a block device of any block size up to [`MAX_BLOCK`].
struct Disk<'d, D: BlockDevice> {
    dev: &'d mut D,
    block: u64,
    capacity: u64,
}

impl<D: BlockDevice> Disk<'_, D> {
    fn read_sector(&mut self, sector: u64) -> Result<[u8; SECTOR], BlockError> {
        let mut block = [0u8; MAX_BLOCK as usize];
        let at = sector * SECTOR as u64;
        let start = at - at % self.block;
        self.dev.read(start, &mut block[..self.block as usize])?;
        let off = (at - start) as usize;
        let mut out = [0u8; SECTOR];
        out.copy_from_slice(&block[off..off + SECTOR]);
        Ok(out)
    }

    fn write_sector(&mut self, sector: u64, data: &[u8; SECTOR]) -> Result<(), BlockError> {
        let at = sector * SECTOR as u64;
        if self.block == SECTOR as u64 {
            return self.dev.write(at, data);
        }
        // A larger block: read it, change the one sector, write it back.
        let mut block = [0u8; MAX_BLOCK as usize];
        let start = at - at % self.block;
        let block = &mut block[..self.block as usize];
        self.dev.read(start, block)?;
        let off = (at - start) as usize;
        block[off..off + SECTOR].copy_from_slice(data);
        self.dev.write(start, block)
    }

    /// Calls `f(slot, sector)` for every slot in `0..slots`, reading whole chunks.
    fn for_each_slot(
        &mut self,
        slots: u64,
        mut f: impl FnMut(u64, &[u8; SECTOR]),
    ) -> Result<(), BlockError> {
        let mut chunk = [0u8; SCAN_CHUNK];
        let first = LOG_START * SECTOR as u64;
        let end = (LOG_START + slots) * SECTOR as u64;
        // Chunks start on a block boundary; the capacity is a multiple of the block.
        let mut start = first - first % self.block;
        while start < end {
            let len = (SCAN_CHUNK as u64).min(self.capacity - start);
            self.dev.read(start, &mut chunk[..len as usize])?;
            let mut at = start.max(first);
            while at < (start + len).min(end) {
                let off = (at - start) as usize;
                let mut sector = [0u8; SECTOR];
                sector.copy_from_slice(&chunk[off..off + SECTOR]);
                f(at / SECTOR as u64 - LOG_START, &sector);
                at += SECTOR as u64;
            }
            start += len;
        }
        Ok(())
    }
}

/// What [`Log::open`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    /// Block size of the device.
    pub block_size: u64,
    /// Capacity in bytes.
    pub capacity: u64,
    /// The superblock the boot started from.
    pub found: Found,
    /// Record slots of the disk.
    pub log_slots: u64,
    /// Records verified: the log's length.
    pub records: u64,
    /// The last record of the log, if any.
    pub last: Option<Last>,
    /// What followed the log.
    pub tail: Tail,
    /// Valid records beyond the tail (not part of the log; left alone).
    pub stranded: u64,
    /// Slots beyond the tail that are neither blank nor valid (left alone until the
    /// log reaches them).
    pub damaged: u64,
    /// The boot count, this boot included.
    pub boot_count: u64,
}

/// An open log on a device (the device is passed to each call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Log {
    block: u64,
    capacity: u64,
    log_slots: u64,
    records: u64,
    boot_count: u64,
    /// Valid records lie beyond the first invalid slot: nothing may be appended.
    hole: bool,
}

/// Why [`Log::read`] has no record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The log has no record of this sequence number (0, or beyond its end).
    NoRecord {
        /// The sequence number asked for.
        sequence: u64,
        /// The records the log has.
        records: u64,
    },
    /// The record verified when the log was opened, and does not now.
    Damaged {
        /// Its sequence number.
        sequence: u64,
        /// What it reads as.
        error: SectorError,
    },
    /// The device failed.
    Io(BlockError),
}

impl core::fmt::Display for ReadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReadError::NoRecord { sequence, records } => {
                write!(f, "no record {sequence} (the log has {records})")
            }
            ReadError::Damaged { sequence, error } => {
                write!(f, "record {sequence} is damaged: {error}")
            }
            ReadError::Io(e) => write!(f, "I/O: {e}"),
        }
    }
}

impl Log {
    /// Opens the log on `dev` and counts this boot: rules 1 to 4 of the module
    /// documentation.
    pub fn open<D: BlockDevice>(dev: &mut D) -> Result<(Log, Opened), StoreError> {
        let info = dev.info();
        if !(SECTOR as u64..=MAX_BLOCK).contains(&info.block_size) {
            return Err(StoreError::BlockSize(info.block_size));
        }
        let sectors = info.capacity / SECTOR as u64;
        if sectors < LOG_START + 1 {
            return Err(StoreError::TooSmall {
                capacity: info.capacity,
            });
        }
        let fit = sectors - LOG_START;
        let mut disk = Disk {
            dev,
            block: info.block_size,
            capacity: info.capacity,
        };

        // 1. The superblock.
        let copies = [
            Superblock::parse(&disk.read_sector(0)?),
            Superblock::parse(&disk.read_sector(1)?),
        ];
        let pick = |copy: u8, s: &Superblock, other: Option<SectorError>| {
            let found = Found::Copy {
                copy,
                boot_count: s.boot_count.get(),
                other,
            };
            (found, Some((copy, s.boot_count.get())), s.log_slots.get())
        };
        let (found, current, log_slots) = match (&copies[0], &copies[1]) {
            (Err(SectorError::Empty), Err(SectorError::Empty)) => {
                (Found::Blank, None, fit.min(MAX_LOG_SLOTS))
            }
            (Err(copy0), Err(copy1)) => {
                return Err(StoreError::NotAStore {
                    copy0: *copy0,
                    copy1: *copy1,
                })
            }
            (Ok(s), Err(e)) => pick(0, s, Some(*e)),
            (Err(e), Ok(s)) => pick(1, s, Some(*e)),
            (Ok(a), Ok(b)) if b.boot_count.get() > a.boot_count.get() => pick(1, b, None),
            (Ok(a), Ok(_)) => pick(0, a, None),
        };
        if log_slots > fit {
            return Err(StoreError::LogBeyondDisk { log_slots, fit });
        }

        // 2. and 3. The log and its tail.
        let mut records = 0u64;
        let mut in_log = true;
        let mut last = None;
        let mut tail = Tail::Full;
        let mut stranded = 0u64;
        let mut damaged = 0u64;
        disk.for_each_slot(log_slots, |slot, sector| {
            match Record::parse(sector, slot) {
                Ok(r) if in_log => {
                    records += 1;
                    last = Some(Last::of(&r));
                }
                Ok(_) => stranded += 1,
                Err(error) if in_log => {
                    in_log = false;
                    tail = match error {
                        SectorError::Empty => Tail::Clean,
                        error => Tail::Invalid { slot, error },
                    };
                }
                Err(SectorError::Empty) => {}
                Err(_) => damaged += 1,
            }
        })?;

        // 4. The boot count, into the other copy.
        let old = current.map_or(0, |(_, count)| count);
        let boot_count = old.checked_add(1).ok_or(StoreError::BootCountOverflow)?;
        let target = match current {
            Some((0, _)) => 1,
            _ => 0,
        };
        disk.write_sector(target, Superblock::new(boot_count, log_slots).as_sector())?;
        disk.dev.sync()?;

        let log = Log {
            block: info.block_size,
            capacity: info.capacity,
            log_slots,
            records,
            boot_count,
            hole: stranded > 0,
        };
        let opened = Opened {
            block_size: info.block_size,
            capacity: info.capacity,
            found,
            log_slots,
            records,
            last,
            tail,
            stranded,
            damaged,
            boot_count,
        };
        Ok((log, opened))
    }

    /// The records in the log.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The record slots of the disk: the most records the log can hold.
    pub fn slots(&self) -> u64 {
        self.log_slots
    }

    /// This boot's count.
    pub fn boot_count(&self) -> u64 {
        self.boot_count
    }

    fn disk<'d, D: BlockDevice>(&self, dev: &'d mut D) -> Disk<'d, D> {
        Disk {
            dev,
            block: self.block,
            capacity: self.capacity,
        }
    }

    /// Appends a record holding `payload` (cut to [`PAYLOAD_MAX`] bytes) after the
    /// last one: rule 5 of the module documentation. The record is synced, read back
    /// and verified before this returns `Appended::Yes`.
    pub fn append<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        payload: &[u8],
    ) -> Result<Appended, StoreError> {
        if self.records == self.log_slots {
            return Ok(Appended::Full);
        }
        if self.hole {
            return Ok(Appended::Hole);
        }
        let slot = self.records;
        let record = Record::new(slot + 1, self.boot_count, payload);
        let mut disk = self.disk(dev);
        disk.write_sector(LOG_START + slot, record.as_sector())?;
        disk.dev.sync()?;
        Record::parse(&disk.read_sector(LOG_START + slot)?, slot)
            .map_err(|error| StoreError::WriteNotVerified { slot, error })?;
        self.records += 1;
        Ok(Appended::Yes { sequence: slot + 1 })
    }

    /// Reads record `sequence` (1 to [`Log::records`]) and verifies it again.
    pub fn read<D: BlockDevice>(&self, dev: &mut D, sequence: u64) -> Result<Record, ReadError> {
        if sequence == 0 || sequence > self.records {
            return Err(ReadError::NoRecord {
                sequence,
                records: self.records,
            });
        }
        let slot = sequence - 1;
        let sector = self
            .disk(dev)
            .read_sector(LOG_START + slot)
            .map_err(ReadError::Io)?;
        Record::parse(&sector, slot).map_err(|error| ReadError::Damaged { sequence, error })
    }
}

impl Last {
    fn of(r: &Record) -> Last {
        let mut l = Last {
            sequence: r.sequence.get(),
            boot: r.boot.get(),
            length: r.payload().len(),
            payload: [0; PAYLOAD_MAX],
        };
        l.payload[..l.length].copy_from_slice(r.payload());
        l
    }
}

/// Boots the store on `dev`: see the module documentation. `payload` writes this
/// boot's record payload (given the new boot count) into its buffer and returns the
/// length.
pub fn boot<D: BlockDevice>(
    dev: &mut D,
    payload: impl FnOnce(u64, &mut [u8; PAYLOAD_MAX]) -> usize,
) -> Result<Report, StoreError> {
    let (mut log, opened) = Log::open(dev)?;
    let appended = if opened.tail == Tail::Full {
        Appended::Full
    } else if opened.stranded > 0 {
        Appended::Hole
    } else {
        let mut buf = [0u8; PAYLOAD_MAX];
        let len = payload(opened.boot_count, &mut buf).min(PAYLOAD_MAX);
        log.append(dev, &buf[..len])?
    };
    Ok(Report {
        block_size: opened.block_size,
        capacity: opened.capacity,
        found: opened.found,
        log_slots: opened.log_slots,
        records: opened.records,
        last: opened.last,
        tail: opened.tail,
        stranded: opened.stranded,
        damaged: opened.damaged,
        boot_count: opened.boot_count,
        appended,
    })
}

#[cfg(test)]
mod tests;
