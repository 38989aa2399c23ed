//! `blockstore`: counts its boots and appends one record per boot to a checksummed
//! log on the block device `storage`, verifying every record it reads (see the
//! library, `src/lib.rs`, for the format and the rules).
//!
//! Exit status: 0 when this boot's record was written; 2 when it was not (the log is
//! full, or has a hole that needs repair); 1 when the device or the disk failed
//! (`main` returns the [`BootError`], which the runtime logs as `ERROR main: ...`; for a
//! disk that is not a blockstore disk, nothing is written).
//!
//! Run it in the testbed on an image: `truncate -s 1M store.img` then
//! `muen-testbed run examples/blockstore --disk storage=store.img`.

#![no_std]
#![no_main]

use blockstore::format::{SectorError, PAYLOAD_MAX};
use blockstore::{Appended, BootError, Found, Tail, DEVICE};
use core::fmt::Write as _;
use log::{info, warn};
use muen_subject::device::BlockDevice;
use muen_subject::{Duration, Runtime};

muen_subject::entry!(main);

/// How long to wait for the wall clock to be published.
const WALL_CLOCK_WAIT: Duration = Duration::from_millis(100);

/// A `fmt::Write` into a payload buffer that stops at its end.
struct Payload<'a> {
    buf: &'a mut [u8; PAYLOAD_MAX],
    len: usize,
}

impl core::fmt::Write for Payload<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(PAYLOAD_MAX - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn main(rt: &mut Runtime) -> Result<i32, BootError> {
    let mut dev = rt.block(DEVICE)?;
    let geometry = dev.info();
    info!(
        "{DEVICE}: {} bytes, blocks of {}",
        geometry.capacity, geometry.block_size
    );
    // The wall clock, if Muen's time subject (or the testbed) publishes it.
    let unix_s = rt.wall_clock(WALL_CLOCK_WAIT).ok().map(|t| t.as_secs());
    let report = blockstore::boot(&mut dev, |boot, buf| {
        let mut p = Payload { buf, len: 0 };
        let _ = match unix_s {
            Some(s) => write!(p, "boot {boot}, unix time {s}"),
            None => write!(p, "boot {boot}"),
        };
        p.len
    })?;
    match report.found {
        Found::Blank => info!("blank disk: formatted, {} slots", report.log_slots),
        Found::Copy {
            copy,
            boot_count,
            other,
        } => {
            info!("superblock: copy {copy}, boot count {boot_count}");
            // An empty other copy is normal after the first boot.
            if let Some(e) = other.filter(|e| *e != SectorError::Empty) {
                warn!("superblock copy {}: {e}", 1 - copy);
            }
        }
    }
    info!("records: {} verified", report.records);
    if let Some(last) = report.last {
        let text = core::str::from_utf8(&last.payload[..last.length]).unwrap_or("(binary)");
        info!("last record {}: {}", last.sequence, text);
    }
    match report.tail {
        Tail::Clean => info!("tail: clean"),
        Tail::Full => warn!("tail: log full ({} slots)", report.log_slots),
        Tail::Invalid { slot, error } => warn!("tail: slot {slot} invalid: {error}"),
    }
    if report.stranded > 0 {
        warn!("{} valid records after the tail", report.stranded);
    }
    if report.damaged > 0 {
        warn!("{} damaged slots after the tail", report.damaged);
    }
    info!("boot count: {}", report.boot_count);
    Ok(match report.appended {
        Appended::Yes { sequence } => {
            info!("appended record {sequence}");
            0
        }
        Appended::Full => {
            warn!("log full: no record appended");
            2
        }
        Appended::Hole => {
            warn!("hole in the log: no record appended");
            2
        }
    })
}
