//! The `log` backend: every record becomes one or more `debuglog` messages.
//!
//! A record is written as `LEVEL message` plus a newline through muen-channel's
//! [`LogWriter`], which splits it into 56-character messages the way Muen's own log
//! library does and stamps each with the TSC. Without a `debuglog` channel in the
//! subject info page the logger is never attached, and logging does nothing.
//!
//! Reentrancy: the writer sits behind a spin lock that is only ever *tried*. A subject
//! has one CPU and no threads, so a lock that is taken means this very CPU is inside
//! the logger: an exception or a panic in the middle of a record. Spinning would
//! deadlock, so the record is dropped and counted ([`DebugLog::dropped`]); the panic
//! handler itself logs through the same path and exits even when its message cannot
//! be written.

use core::fmt::{self, Write as _};
use core::sync::atomic::{AtomicU64, Ordering};

use muen_abi::names;
use muen_channel::protocol::debuglog::LogWriter;
use muen_channel::{epoch_from, RegionMut};
use muen_sinfo::{MemoryKind, SubjectInfo};

/// The timestamp source of log messages (the platform's `rdtsc`).
pub type Timestamp = fn() -> u64;

/// A `log` backend on a `debuglog` channel.
pub struct DebugLog<'a> {
    writer: spin::Mutex<Option<LogWriter<'a, Timestamp>>>,
    dropped: AtomicU64,
}

impl Default for DebugLog<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> DebugLog<'a> {
    /// A logger without a channel (writes nothing).
    pub const fn new() -> Self {
        DebugLog {
            writer: spin::Mutex::new(None),
            dropped: AtomicU64::new(0),
        }
    }

    /// Sends records to `writer` from now on.
    pub fn attach(&self, writer: LogWriter<'a, Timestamp>) {
        match self.writer.try_lock() {
            Some(mut w) => *w = Some(writer),
            None => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether a channel is attached.
    pub fn is_attached(&self) -> bool {
        self.writer.try_lock().is_some_and(|w| w.is_some())
    }

    /// Writes one record (`LEVEL message\n`), unless the logger is busy (reentrancy),
    /// in which case the record is counted as dropped.
    pub fn record(&self, level: ::log::Level, args: fmt::Arguments<'_>) {
        let Some(mut guard) = self.writer.try_lock() else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if let Some(w) = guard.as_mut() {
            // The writer never fails (a full ring overwrites, as on Muen).
            let _ = writeln!(w, "{level} {args}");
        }
    }

    /// Records dropped because the logger was busy.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl ::log::Log for DebugLog<'_> {
    fn enabled(&self, _: &::log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &::log::Record<'_>) {
        self.record(record.level(), *record.args());
    }

    fn flush(&self) {}
}

/// The subject's logger.
pub static LOG: DebugLog<'static> = DebugLog::new();

/// Attaches `writer` to [`LOG`] and installs it as the `log` crate's logger with level
/// `Info` (applications change it with `log::set_max_level`).
pub fn install(writer: LogWriter<'static, Timestamp>) {
    LOG.attach(writer);
    if ::log::set_logger(&LOG).is_ok() {
        ::log::set_max_level(::log::LevelFilter::Info);
    }
}

/// Attaches the `debuglog` channel of the page, if it has a writable one, to [`LOG`]
/// and installs it (see [`install`]); messages are stamped with `stamp`, and the
/// channel's epoch comes from it too.
///
/// # Safety
///
/// The page's regions are mapped with their rights for the rest of the program, and
/// nothing else uses the `debuglog` channel.
pub(crate) unsafe fn attach_debuglog(info: &SubjectInfo<'static>, stamp: Timestamp) {
    let Some(m) = info.channel(names::DEBUGLOG) else {
        return;
    };
    if !m.writable() || m.kind != MemoryKind::SubjectChannel {
        return;
    }
    let Ok(len) = usize::try_from(m.size) else {
        return;
    };
    // SAFETY: the channel is mapped writable for the rest of the program, and only the
    // logger uses it (contract).
    let Ok(region) = (unsafe { RegionMut::new(m.address as usize as *mut u8, len) }) else {
        return;
    };
    if let Ok(writer) = LogWriter::new(region, epoch_from(stamp()), stamp) {
        install(writer);
    }
}

/// Unit tests that write to [`LOG`] hold this lock: a record written while another
/// test holds the logger's lock would be dropped (see the module documentation).
#[cfg(test)]
pub(crate) fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU64;
    use muen_channel::protocol::debuglog::{self, Element};
    use muen_channel::{epoch_from, ReadError, Reader, Region, RegionMut};

    static NOW: AtomicU64 = AtomicU64::new(5000);

    fn tick() -> u64 {
        NOW.fetch_add(1, Ordering::Relaxed)
    }

    fn lines(reader: &mut Reader<'_>) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        loop {
            match reader.read::<Element>() {
                Ok(e) => out.push((e.timestamp(), String::from_utf8(e.text().to_vec()).unwrap())),
                Err(ReadError::EpochChanged) => continue,
                Err(ReadError::NoData) => return out,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn records_are_prefixed_split_at_56_and_stamped_with_the_tsc() {
        let memory: Vec<AtomicU64> = (0..0x1000 / 8).map(|_| AtomicU64::new(0)).collect();
        let log = DebugLog::new();
        ::log::Log::log(
            &log,
            &::log::Record::builder()
                .level(::log::Level::Info)
                .args(format_args!("nothing attached yet"))
                .build(),
        );
        assert!(!log.is_attached());
        let writer = LogWriter::new(
            RegionMut::from_atomics(&memory).unwrap(),
            epoch_from(9),
            tick as Timestamp,
        )
        .unwrap();
        log.attach(writer);
        assert!(log.is_attached());
        let mut reader = Reader::new(
            Region::from_atomics(&memory).unwrap(),
            debuglog::PROTOCOL,
            debuglog::ELEMENT_SIZE,
        )
        .unwrap();
        let long = "x".repeat(60);
        ::log::Log::log(
            &log,
            &::log::Record::builder()
                .level(::log::Level::Warn)
                .args(format_args!("disk {} is {long}", 3))
                .build(),
        );
        log.record(::log::Level::Error, format_args!("two\nlines"));
        let got = lines(&mut reader);
        let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
        // "WARN disk 3 is " is 15 characters, then 60 x's and the newline: 56 + 20.
        let first = format!("WARN disk 3 is {}", "x".repeat(41));
        let second = format!("{}\n", "x".repeat(19));
        assert_eq!(texts, [&first[..], &second[..], "ERROR two\n", "lines\n"]);
        // Timestamps come from the clock, one per message, increasing.
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(got[0].0 >= 5000);
        assert_eq!(log.dropped(), 0);
    }

    #[test]
    fn a_busy_logger_drops_instead_of_deadlocking() {
        let memory: Vec<AtomicU64> = (0..0x1000 / 8).map(|_| AtomicU64::new(0)).collect();
        let log = DebugLog::new();
        log.attach(
            LogWriter::new(
                RegionMut::from_atomics(&memory).unwrap(),
                epoch_from(1),
                tick as Timestamp,
            )
            .unwrap(),
        );
        {
            // As if an exception hit while a record was being written.
            let _held = log.writer.try_lock().unwrap();
            log.record(::log::Level::Error, format_args!("from the handler"));
            assert_eq!(log.dropped(), 1);
        }
        log.record(::log::Level::Info, format_args!("later"));
        let mut reader = Reader::new(
            Region::from_atomics(&memory).unwrap(),
            debuglog::PROTOCOL,
            debuglog::ELEMENT_SIZE,
        )
        .unwrap();
        let got = lines(&mut reader);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, "INFO later\n");
    }
}
