//! The console: what the unikernel writes with `solo5_console_write`, and the bindings'
//! own `Solo5: ...` messages, on the subject's `debuglog` channel.
//!
//! Both go through muen-channel's [`LogWriter`], which turns the byte stream into
//! 56-character messages as Muen's log library (and Solo5's C bindings) do: NUL and CR
//! are dropped, a message ends after LF or when full. The bindings' messages have a
//! level ([`Level`], as Solo5's `log_level_t`); the command line's `--solo5:` options
//! set the threshold (module `cmdline`). What the unikernel itself writes is never
//! filtered.
//!
//! Without a writable `debuglog` channel nothing is attached and the console drops
//! what it is given. (Solo5's C bindings write through a null pointer then, and the
//! unikernel hangs in a page fault loop.)
//!
//! Reentrancy: the writer sits behind a spin lock that is only ever *tried*, as in the
//! runtime's logger: the subject has one CPU and no threads, so a taken lock means an
//! exception in the middle of a write, where spinning would deadlock; the bytes are
//! dropped and counted instead ([`Console::dropped`]).

use core::fmt::{self, Write as _};
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use muen_abi::names;
use muen_channel::protocol::debuglog::LogWriter;
use muen_channel::{epoch_from, RegionMut};
use muen_sinfo::{Memory, MemoryKind, SubjectInfo};

/// Where message timestamps come from (on Muen: the TSC).
pub type Timestamp = fn() -> u64;

/// The level of a message of the bindings, least verbose first (Solo5's
/// `log_level_t`). A message is written when its level is at most the console's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Errors; always written (`--solo5:quiet` and `--solo5:error` keep only these).
    Error = 0,
    /// Warnings (`--solo5:warn`).
    Warn = 1,
    /// What the bindings do: banner, memory map, devices, exit (the default).
    Info = 2,
    /// Details (`--solo5:debug`).
    Debug = 3,
}

impl Level {
    fn from_raw(raw: u8) -> Level {
        match raw {
            0 => Level::Error,
            1 => Level::Warn,
            2 => Level::Info,
            _ => Level::Debug,
        }
    }
}

/// The console on a `debuglog` channel.
pub struct Console<'a> {
    writer: spin::Mutex<Option<LogWriter<'a, Timestamp>>>,
    level: AtomicU8,
    dropped: AtomicU64,
}

impl Default for Console<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Console<'a> {
    /// A console without a channel (drops everything), at level [`Level::Info`].
    pub const fn new() -> Self {
        Console {
            writer: spin::Mutex::new(None),
            level: AtomicU8::new(Level::Info as u8),
            dropped: AtomicU64::new(0),
        }
    }

    /// Writes to `writer` from now on.
    pub fn attach(&self, writer: LogWriter<'a, Timestamp>) {
        match self.writer.try_lock() {
            Some(mut w) => *w = Some(writer),
            None => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Attaches the `debuglog` channel of `info`, if it has a writable channel of that
    /// name; messages are stamped with `stamp`, which also gives the channel's epoch.
    /// Returns the region it attached.
    ///
    /// # Safety
    ///
    /// The page's regions are mapped with their rights for `'a`, and nothing else uses
    /// the `debuglog` channel.
    pub unsafe fn attach_debuglog(
        &self,
        info: &SubjectInfo<'_>,
        stamp: Timestamp,
    ) -> Option<Memory> {
        let m = info.channel(names::DEBUGLOG)?;
        if !m.writable() || m.kind != MemoryKind::SubjectChannel {
            return None;
        }
        let address = usize::try_from(m.address).ok()?;
        let len = usize::try_from(m.size).ok()?;
        // SAFETY: the channel is mapped writable for 'a, and only this console uses it
        // (contract).
        let region = unsafe { RegionMut::new(address as *mut u8, len) }.ok()?;
        let writer = LogWriter::new(region, epoch_from(stamp()), stamp).ok()?;
        self.attach(writer);
        Some(m)
    }

    /// Whether a channel is attached.
    pub fn is_attached(&self) -> bool {
        self.writer.try_lock().is_some_and(|w| w.is_some())
    }

    /// Writes `bytes` as they are (`solo5_console_write`).
    pub fn write(&self, bytes: &[u8]) {
        self.with_writer(|w| w.write_bytes(bytes));
    }

    /// Writes `Solo5: <args>` and a newline if `level` is enabled.
    pub fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        if self.enabled(level) {
            self.with_writer(|w| {
                // The writer never fails (a full ring overwrites, as on Muen).
                let _ = writeln!(w, "Solo5: {args}");
            });
        }
    }

    /// Whether messages of `level` are written.
    pub fn enabled(&self, level: Level) -> bool {
        level <= self.level()
    }

    /// The threshold.
    pub fn level(&self) -> Level {
        Level::from_raw(self.level.load(Ordering::Relaxed))
    }

    /// Sets the threshold.
    pub fn set_level(&self, level: Level) {
        self.level.store(level as u8, Ordering::Relaxed);
    }

    /// Sends an unfinished line now (before the subject stops).
    pub fn flush(&self) {
        self.with_writer(|w| w.flush());
    }

    /// Writes dropped because the console was busy (an exception during a write).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn with_writer(&self, f: impl FnOnce(&mut LogWriter<'a, Timestamp>)) {
        let Some(mut guard) = self.writer.try_lock() else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if let Some(w) = guard.as_mut() {
            f(w);
        }
    }
}

/// Logs a formatted `Solo5: ...` message at a level: `log!(console, Info, "...", ..)`.
macro_rules! log {
    ($console:expr, $level:ident, $($arg:tt)*) => {
        $console.log($crate::console::Level::$level, format_args!($($arg)*))
    };
}
pub(crate) use log;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use muen_channel::protocol::debuglog::{self, Element};
    use muen_channel::{ReadError, Reader, Region};
    use std::sync::atomic::AtomicU64;

    /// A console on a channel in ordinary memory, and a function that reads what it
    /// wrote since the last call, one string per message (at most 56 characters).
    pub(crate) fn console() -> (&'static Console<'static>, impl FnMut() -> Vec<String>) {
        let memory: &'static [AtomicU64] =
            Box::leak((0..0x4000 / 8).map(|_| AtomicU64::new(0)).collect());
        let console: &'static Console<'static> = Box::leak(Box::new(Console::new()));
        let stamp: Timestamp = || 7;
        console.attach(
            LogWriter::new(
                RegionMut::from_atomics(memory).unwrap(),
                epoch_from(3),
                stamp,
            )
            .unwrap(),
        );
        let mut reader = Reader::new(
            Region::from_atomics(memory).unwrap(),
            debuglog::PROTOCOL,
            debuglog::ELEMENT_SIZE,
        )
        .unwrap();
        let read = move || {
            let mut out = Vec::new();
            loop {
                match reader.read::<Element>() {
                    Ok(e) => out.push(String::from_utf8(e.text().to_vec()).unwrap()),
                    Err(ReadError::EpochChanged) => continue,
                    Err(ReadError::NoData) => return out,
                    Err(e) => panic!("{e}"),
                }
            }
        };
        (console, read)
    }

    /// Messages joined into lines (each with its newline; a last unfinished one as it
    /// is).
    pub(crate) fn lines(messages: Vec<String>) -> Vec<String> {
        let text = messages.concat();
        text.split_inclusive('\n').map(str::to_string).collect()
    }

    #[test]
    fn messages_have_a_level_and_the_prefix_and_writes_pass_unfiltered() {
        let (c, mut read) = console();
        log!(c, Info, "Bindings version {}", 1);
        log!(c, Debug, "not shown");
        c.write(b"raw\r\0 bytes\n");
        assert_eq!(read(), ["Solo5: Bindings version 1\n", "raw bytes\n"]);

        c.set_level(Level::Error);
        assert_eq!(c.level(), Level::Error);
        log!(c, Info, "quiet");
        log!(c, Warn, "quiet");
        log!(c, Error, "loud");
        c.write(b"application output\n");
        assert_eq!(read(), ["Solo5: loud\n", "application output\n"]);

        c.set_level(Level::Debug);
        log!(c, Debug, "details");
        assert_eq!(read(), ["Solo5: details\n"]);
    }

    #[test]
    fn long_lines_are_split_and_flush_sends_the_rest() {
        let (c, mut read) = console();
        c.write(&[b'x'; 60]);
        assert_eq!(read(), ["x".repeat(56)]);
        c.flush();
        assert_eq!(read(), ["xxxx"]);
    }

    #[test]
    fn without_a_channel_everything_is_dropped_quietly() {
        let c = Console::new();
        assert!(!c.is_attached());
        c.write(b"nobody listens\n");
        log!(c, Error, "nor here");
        c.flush();
        assert_eq!(c.dropped(), 0);
    }

    #[test]
    fn a_write_while_the_console_is_busy_is_dropped_and_counted() {
        let (c, mut read) = console();
        let guard = c.writer.try_lock().unwrap();
        c.write(b"from an exception handler\n");
        drop(guard);
        assert_eq!(c.dropped(), 1);
        assert_eq!(read(), Vec::<String>::new());
    }

    #[test]
    fn the_debuglog_channel_is_found_by_name_and_must_be_a_writable_channel() {
        let memory = muen_sim::shared(0x2000);
        let stamp: Timestamp = || 11;
        for (writable, kind, attached) in [
            (true, MemoryKind::SubjectChannel, true),
            (false, MemoryKind::SubjectChannel, false),
            (true, MemoryKind::Subject, false),
        ] {
            let info = muen_sim::page("u", |b| {
                b.memory("debuglog", muen_sim::memory(memory, kind, writable))
                    .unwrap();
            });
            let c = Console::new();
            // SAFETY: the page names leaked test memory that only this console uses.
            let m = unsafe { c.attach_debuglog(&info, stamp) };
            assert_eq!(m.is_some(), attached);
            assert_eq!(c.is_attached(), attached);
        }
        let c = Console::new();
        // SAFETY: as above (the page names nothing).
        assert!(unsafe { c.attach_debuglog(&muen_sim::page("u", |_| {}), stamp) }.is_none());
    }
}
