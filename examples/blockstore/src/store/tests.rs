//! The boot rules against an in-memory disk: counting, verifying, appending, and
//! every kind of damage.

use super::*;
use crate::format::SECTOR;
use muen_subject::device::BlockInfo;

/// A disk in memory that checks the block device contract and counts writes.
struct MemDisk {
    data: Vec<u8>,
    block: u64,
    writes: u32,
    syncs: u32,
    /// Fail every write from this one on (0 = the first).
    fail_writes_from: Option<u32>,
}

impl MemDisk {
    fn new(bytes: usize, block: u64) -> Self {
        MemDisk {
            data: vec![0; bytes],
            block,
            writes: 0,
            syncs: 0,
            fail_writes_from: None,
        }
    }

    fn check(&self, offset: u64, len: usize) -> Result<(), BlockError> {
        if len == 0 || len as u64 % self.block != 0 {
            return Err(BlockError::BadLength { len: len as u64 });
        }
        if offset % self.block != 0 {
            return Err(BlockError::BadOffset { offset });
        }
        if offset + len as u64 > self.data.len() as u64 {
            return Err(BlockError::OutOfRange {
                offset,
                len: len as u64,
                capacity: self.data.len() as u64,
            });
        }
        Ok(())
    }

    fn slot(&self, slot: u64) -> &[u8] {
        let at = (LOG_START + slot) as usize * SECTOR;
        &self.data[at..at + SECTOR]
    }

    fn slot_mut(&mut self, slot: u64) -> &mut [u8] {
        let at = (LOG_START + slot) as usize * SECTOR;
        &mut self.data[at..at + SECTOR]
    }
}

impl BlockDevice for MemDisk {
    fn info(&self) -> BlockInfo {
        BlockInfo {
            block_size: self.block,
            capacity: self.data.len() as u64,
        }
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.check(offset, buf.len())?;
        buf.copy_from_slice(&self.data[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        self.check(offset, data.len())?;
        if self.fail_writes_from.is_some_and(|n| self.writes >= n) {
            return Err(BlockError::Device { status: 10, offset });
        }
        self.writes += 1;
        self.data[offset as usize..offset as usize + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn sync(&mut self) -> Result<(), BlockError> {
        self.syncs += 1;
        Ok(())
    }
    fn discard(&mut self, _: u64, _: u64) -> Result<(), BlockError> {
        Ok(())
    }
}

fn boot_once(disk: &mut MemDisk) -> Result<Report, StoreError> {
    boot(disk, |n, buf| {
        let text = format!("boot {n}");
        buf[..text.len()].copy_from_slice(text.as_bytes());
        text.len()
    })
}

fn record(disk: &MemDisk, slot: u64) -> Result<Record, SectorError> {
    Record::parse(disk.slot(slot).try_into().unwrap(), slot)
}

#[test]
fn three_boots_count_and_append_on_any_block_size() {
    for block in [512, 1024, 4096] {
        let mut disk = MemDisk::new(1 << 20, block);
        for n in 1..=3u64 {
            let r = boot_once(&mut disk).unwrap();
            assert_eq!(r.boot_count, n, "block {block}");
            assert_eq!(r.records, n - 1);
            assert_eq!(r.tail, Tail::Clean);
            assert_eq!(r.appended, Appended::Yes { sequence: n });
            assert_eq!((r.stranded, r.damaged), (0, 0));
            assert_eq!(r.log_slots, 2046);
            match (n, r.found) {
                (1, Found::Blank) => {}
                (
                    _,
                    Found::Copy {
                        copy, boot_count, ..
                    },
                ) => {
                    // Boot n - 1 wrote copy (n - 2) % 2 (the first boot copy 0).
                    assert_eq!(boot_count, n - 1);
                    assert_eq!(u64::from(copy), (n - 2) % 2);
                }
                other => panic!("boot {n}: {other:?}"),
            }
            if n > 1 {
                let last = r.last.unwrap();
                assert_eq!(last.sequence, n - 1);
                assert_eq!(last.boot, n - 1);
                assert_eq!(
                    &last.payload[..last.length],
                    format!("boot {}", n - 1).as_bytes()
                );
            }
        }
        for slot in 0..3 {
            let r = record(&disk, slot).unwrap();
            assert_eq!(r.sequence.get(), slot + 1);
            assert_eq!(r.payload(), format!("boot {}", slot + 1).as_bytes());
        }
        assert_eq!(record(&disk, 3).err(), Some(SectorError::Empty));
        // Both superblock copies are valid: boot 3 in copy 0, boot 2 in copy 1.
        let s0 = Superblock::parse(disk.data[..SECTOR].try_into().unwrap()).unwrap();
        let s1 = Superblock::parse(disk.data[SECTOR..2 * SECTOR].try_into().unwrap()).unwrap();
        assert_eq!((s0.boot_count.get(), s1.boot_count.get()), (3, 2));
    }
}

#[test]
fn a_corrupted_tail_is_reported_and_replaced_by_the_next_record() {
    let mut disk = MemDisk::new(64 * 1024, 512);
    for _ in 0..3 {
        boot_once(&mut disk).unwrap();
    }
    // Damage record 3 (slot 2): one payload bit.
    disk.slot_mut(2)[25] ^= 0x04;
    let before: Vec<u8> = disk.data.clone();
    let r = boot_once(&mut disk).unwrap();
    assert_eq!(r.records, 2, "records 1 and 2 verified");
    assert!(
        matches!(
            r.tail,
            Tail::Invalid {
                slot: 2,
                error: SectorError::BadChecksum { .. }
            }
        ),
        "{:?}",
        r.tail
    );
    assert_eq!(r.boot_count, 4);
    assert_eq!(r.appended, Appended::Yes { sequence: 3 });
    let new = record(&disk, 2).unwrap();
    assert_eq!((new.sequence.get(), new.boot.get()), (3, 4));
    assert_eq!(new.payload(), b"boot 4");
    // Records 1 and 2 are untouched.
    for slot in 0..2 {
        assert_eq!(
            disk.slot(slot),
            &before[(2 + slot as usize) * SECTOR..][..SECTOR]
        );
    }
    // The next boot finds a whole log again.
    let r = boot_once(&mut disk).unwrap();
    assert_eq!((r.records, r.tail, r.boot_count), (3, Tail::Clean, 5));
}

#[test]
fn a_torn_record_is_the_tail_too() {
    let mut disk = MemDisk::new(64 * 1024, 4096);
    for _ in 0..2 {
        boot_once(&mut disk).unwrap();
    }
    // Record 2's write tore: only its first half reached the disk.
    disk.slot_mut(1)[256..].fill(0);
    let r = boot_once(&mut disk).unwrap();
    assert_eq!(r.records, 1);
    assert!(matches!(r.tail, Tail::Invalid { slot: 1, .. }));
    assert_eq!(r.appended, Appended::Yes { sequence: 2 });
    assert_eq!(record(&disk, 1).unwrap().boot.get(), 3);
}

#[test]
fn a_hole_in_the_log_is_reported_and_nothing_is_appended() {
    let mut disk = MemDisk::new(64 * 1024, 512);
    for _ in 0..3 {
        boot_once(&mut disk).unwrap();
    }
    disk.slot_mut(0)[0] = b'X'; // record 1 damaged; records 2 and 3 valid
    let log: Vec<u8> = disk.data[2 * SECTOR..].to_vec();
    let r = boot_once(&mut disk).unwrap();
    assert_eq!(r.records, 0);
    assert_eq!(
        r.tail,
        Tail::Invalid {
            slot: 0,
            error: SectorError::BadMagic
        }
    );
    assert_eq!(r.stranded, 2);
    assert_eq!(r.appended, Appended::Hole);
    assert_eq!(r.boot_count, 4, "the boot is still counted");
    assert_eq!(&disk.data[2 * SECTOR..], &log[..], "no slot was written");
}

#[test]
fn damaged_slots_beyond_the_tail_are_counted_and_left_alone() {
    let mut disk = MemDisk::new(64 * 1024, 512);
    boot_once(&mut disk).unwrap();
    disk.slot_mut(5)[7] = 1; // garbage, not a record
    let r = boot_once(&mut disk).unwrap();
    assert_eq!((r.records, r.tail, r.damaged), (1, Tail::Clean, 1));
    assert_eq!(r.appended, Appended::Yes { sequence: 2 });
    assert_eq!(disk.slot(5)[7], 1);
}

#[test]
fn a_record_in_the_wrong_slot_is_not_valid() {
    let mut disk = MemDisk::new(64 * 1024, 512);
    boot_once(&mut disk).unwrap();
    // A copy of record 1 in slot 1 (say, a misdirected write).
    let copy = disk.slot(0).to_vec();
    disk.slot_mut(1).copy_from_slice(&copy);
    let r = boot_once(&mut disk).unwrap();
    assert_eq!(r.records, 1);
    assert_eq!(
        r.tail,
        Tail::Invalid {
            slot: 1,
            error: SectorError::BadSequence {
                expected: 2,
                found: 1
            }
        }
    );
}

#[test]
fn a_disk_that_is_not_a_store_is_not_written() {
    let mut disk = MemDisk::new(64 * 1024, 512);
    disk.data[..4].copy_from_slice(b"\x7fELF");
    let before = disk.data.clone();
    let e = boot_once(&mut disk).unwrap_err();
    assert_eq!(
        e,
        StoreError::NotAStore {
            copy0: SectorError::BadMagic,
            copy1: SectorError::Empty
        }
    );
    assert_eq!(disk.data, before);
    assert_eq!(disk.writes, 0);
    assert!(e.to_string().contains("not a blockstore disk"));
}

#[test]
fn one_damaged_superblock_copy_is_survived_and_rewritten() {
    let mut disk = MemDisk::new(64 * 1024, 512);
    for _ in 0..2 {
        boot_once(&mut disk).unwrap(); // copy 0: boot 1, copy 1: boot 2
    }
    disk.data[SECTOR + 16] ^= 1; // copy 1 (boot 2) damaged: a torn superblock write
    let r = boot_once(&mut disk).unwrap();
    assert!(
        matches!(
            r.found,
            Found::Copy {
                copy: 0,
                boot_count: 1,
                other: Some(SectorError::BadChecksum { .. })
            }
        ),
        "{:?}",
        r.found
    );
    assert_eq!(r.boot_count, 2, "counted from the surviving copy");
    assert_eq!(r.records, 2);
    let s1 = Superblock::parse(disk.data[SECTOR..2 * SECTOR].try_into().unwrap()).unwrap();
    assert_eq!(s1.boot_count.get(), 2, "the damaged copy was rewritten");
}

#[test]
fn a_full_log_counts_boots_but_appends_nothing() {
    let mut disk = MemDisk::new(5 * SECTOR, 512); // 3 slots
    for n in 1..=3 {
        assert_eq!(
            boot_once(&mut disk).unwrap().appended,
            Appended::Yes { sequence: n }
        );
    }
    let r = boot_once(&mut disk).unwrap();
    assert_eq!(
        (r.records, r.tail, r.appended),
        (3, Tail::Full, Appended::Full)
    );
    assert_eq!(r.boot_count, 4);
}

#[test]
fn bad_geometry_and_io_errors_are_reported() {
    assert_eq!(
        boot_once(&mut MemDisk::new(2 * SECTOR, 512)).unwrap_err(),
        StoreError::TooSmall { capacity: 1024 }
    );
    assert_eq!(
        boot_once(&mut MemDisk::new(64 * 1024, 8192)).unwrap_err(),
        StoreError::BlockSize(8192)
    );
    // A superblock whose log does not fit the disk (the image was shrunk).
    let mut disk = MemDisk::new(64 * 1024, 512);
    boot_once(&mut disk).unwrap();
    disk.data.truncate(16 * SECTOR);
    assert_eq!(
        boot_once(&mut disk).unwrap_err(),
        StoreError::LogBeyondDisk {
            log_slots: 126,
            fit: 14
        }
    );
    // The superblock write fails: the error, and no record.
    let mut disk = MemDisk::new(64 * 1024, 512);
    disk.fail_writes_from = Some(0);
    assert!(matches!(
        boot_once(&mut disk),
        Err(StoreError::Io(BlockError::Device { status: 10, .. }))
    ));
    assert!(disk.data.iter().all(|&b| b == 0));
}

/// Random damage between boots, many times over: a slot that held a valid record
/// before a boot holds the same bytes after it.
#[test]
fn no_boot_ever_overwrites_a_valid_record() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..40 {
        let mut disk = MemDisk::new(40 * SECTOR, 512); // 38 slots
        for _ in 0..30 {
            // Damage: flip a byte, tear a slot or zero one, in the first 20 slots.
            if next() % 3 == 0 {
                let slot = next() % 20;
                let at = (next() % SECTOR as u64) as usize;
                match next() % 3 {
                    0 => disk.slot_mut(slot)[at] ^= 0x20,
                    1 => disk.slot_mut(slot)[at..].fill(0),
                    _ => disk.slot_mut(slot).fill(0),
                }
            }
            let valid: Vec<(u64, Vec<u8>)> = (0..38)
                .filter(|&s| record(&disk, s).is_ok())
                .map(|s| (s, disk.slot(s).to_vec()))
                .collect();
            let r = boot_once(&mut disk).unwrap();
            for (slot, bytes) in &valid {
                assert_eq!(disk.slot(*slot), &bytes[..], "round {round}, slot {slot}");
            }
            if let Appended::Yes { sequence } = r.appended {
                assert_eq!(sequence, r.records + 1);
                assert!(record(&disk, sequence - 1).is_ok());
            }
        }
    }
}

#[test]
fn an_open_log_appends_record_after_record_and_reads_them_back() {
    for block in [512, 4096] {
        // 2 superblocks and 14 slots (a 4096-byte block holds 8 sectors).
        let mut disk = MemDisk::new(16 * SECTOR, block);
        let (mut log, opened) = Log::open(&mut disk).unwrap();
        assert_eq!(
            (opened.found, opened.records, opened.boot_count),
            (Found::Blank, 0, 1)
        );
        assert_eq!((log.records(), log.slots(), log.boot_count()), (0, 14, 1));
        for n in 1..=14u64 {
            let text = format!("entry {n}");
            assert_eq!(
                log.append(&mut disk, text.as_bytes()),
                Ok(Appended::Yes { sequence: n })
            );
        }
        assert_eq!(log.append(&mut disk, b"one too many"), Ok(Appended::Full));
        for n in 1..=14u64 {
            let r = log.read(&mut disk, n).unwrap();
            assert_eq!(
                r.payload(),
                format!("entry {n}").as_bytes(),
                "block {block}"
            );
            assert_eq!(r.boot.get(), 1);
        }
        assert_eq!(
            log.read(&mut disk, 0).err(),
            Some(ReadError::NoRecord {
                sequence: 0,
                records: 14
            })
        );
        assert_eq!(
            log.read(&mut disk, 15).err(),
            Some(ReadError::NoRecord {
                sequence: 15,
                records: 14
            })
        );
        // A record damaged after the open is reported, not returned.
        disk.slot_mut(3)[30] ^= 1;
        assert!(matches!(
            log.read(&mut disk, 4).err(),
            Some(ReadError::Damaged {
                sequence: 4,
                error: SectorError::BadChecksum { .. }
            })
        ));
        // The next open finds the log up to the damage, counts the boot, and
        // appends nothing while valid records lie beyond it.
        let (mut log, opened) = Log::open(&mut disk).unwrap();
        assert_eq!(
            (opened.records, opened.stranded, opened.boot_count),
            (3, 10, 2)
        );
        assert_eq!(log.append(&mut disk, b"x"), Ok(Appended::Hole));
        assert_eq!(log.read(&mut disk, 3).unwrap().payload(), b"entry 3");
    }
}

#[test]
fn appends_after_a_reopen_continue_the_log_and_a_failed_write_is_an_error() {
    let mut disk = MemDisk::new(64 * 1024, 512);
    let (mut log, _) = Log::open(&mut disk).unwrap();
    log.append(&mut disk, b"first").unwrap();
    let (mut log, opened) = Log::open(&mut disk).unwrap();
    assert_eq!(opened.last.map(|l| l.sequence), Some(1));
    assert_eq!(
        log.append(&mut disk, b"second"),
        Ok(Appended::Yes { sequence: 2 })
    );
    assert_eq!(log.read(&mut disk, 2).unwrap().boot.get(), 2);
    disk.fail_writes_from = Some(disk.writes);
    assert!(matches!(
        log.append(&mut disk, b"third"),
        Err(StoreError::Io(BlockError::Device { .. }))
    ));
    assert_eq!(log.records(), 2, "a failed append does not count");
    disk.fail_writes_from = None;
    assert_eq!(
        log.append(&mut disk, b"third"),
        Ok(Appended::Yes { sequence: 3 })
    );
}
