//! The log sink: reads the subject's `debuglog` channel and prints its messages the way
//! Muen's debug server (`dbgserver`) does.
//!
//! dbgserver starts every line with a prefix, then a marker, then the message text:
//!
//! | marker | meaning |
//! |--------|---------|
//! | `\|` | a message |
//! | `%` | the first message after the channel's epoch changed (the subject (re)started) |
//! | `#` | the first message after an overrun (messages were lost) |
//!
//! A message ends at its LF; a message of 56 characters without LF continues on the
//! same output line with the next message. dbgserver's prefix is the 4-digit hex number
//! of the subject's log channel; the testbed runs one subject and prints its name there
//! instead, preceded by the message's timestamp (its TSC value as seconds since the
//! testbed started): `[   0.012345] hello|Hello, world`. Control characters other than
//! TAB are shown as `\xNN`, so a subject cannot send escape sequences to the terminal.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use muen_channel::protocol::debuglog::{self, Element};
use muen_channel::{ReadError, Reader};

use crate::clock::{SubjectClock, TscRate};
use crate::os::{self, EventFd};
use crate::peers::Stop;

/// Formats messages as dbgserver lines (see the module documentation).
#[derive(Debug)]
pub struct Formatter {
    name: String,
    tsc: TscRate,
    origin: u64,
    line_open: bool,
    marker: Option<char>,
}

impl Formatter {
    /// A formatter for subject `name`; timestamps count from TSC value `origin`.
    pub fn new(name: &str, tsc: TscRate, origin: u64) -> Self {
        Formatter {
            name: name.to_string(),
            tsc,
            origin,
            line_open: false,
            marker: None,
        }
    }

    /// The next message starts a new line marked `%` (new epoch).
    pub fn epoch_changed(&mut self) {
        self.marker = Some('%');
    }

    /// The next message starts a new line marked `#` (messages were lost), unless a
    /// new epoch is already being reported.
    pub fn overrun(&mut self) {
        self.marker.get_or_insert('#');
    }

    /// The output for one message.
    pub fn message(&mut self, timestamp: u64, text: &[u8]) -> String {
        // dbgserver shows a message up to its LF (or NUL).
        let end = text.iter().position(|&b| b == b'\n' || b == 0);
        let complete = end.is_some_and(|i| text[i] == b'\n');
        let body = &text[..end.unwrap_or(text.len())];
        let mut out = String::new();
        if !self.line_open || self.marker.is_some() {
            if self.line_open {
                out.push('\n');
            }
            let marker = self.marker.take().unwrap_or('|');
            let t = self.tsc.duration(timestamp.saturating_sub(self.origin));
            let _ = write!(
                out,
                "[{:>4}.{:06}] {}{marker}",
                t.as_secs(),
                t.subsec_micros(),
                self.name
            );
        }
        for c in String::from_utf8_lossy(body).chars() {
            if c.is_control() && c != '\t' {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            } else {
                out.push(c);
            }
        }
        self.line_open = !complete;
        if complete {
            out.push('\n');
        }
        out
    }

    /// Ends an open line (at the end of the run).
    pub fn finish(&mut self) -> &'static str {
        if std::mem::take(&mut self.line_open) {
            "\n"
        } else {
            ""
        }
    }
}

/// How much of its output the sink keeps for failure reports.
const TAIL_BYTES: usize = 4096;

/// The log sink of one subject. It writes whole lines only (a line a message leaves
/// open is written once it ends), so several sinks can share one output.
pub struct LogSink<'m, W: Write> {
    reader: Reader<'m>,
    format: Formatter,
    out: W,
    clock: Option<&'m SubjectClock>,
    tail: String,
    /// The start of a line not ended yet: printed with its end, so that the lines of
    /// several sinks on one output never mix.
    open: String,
    /// Messages printed.
    pub messages: u64,
    /// Overruns seen (the subject logged faster than the sink read).
    pub overruns: u64,
}

impl<'m, W: Write> LogSink<'m, W> {
    /// A sink reading `region` and writing to `out`.
    pub fn new(region: muen_channel::Region<'m>, format: Formatter, out: W) -> io::Result<Self> {
        let reader = Reader::new(region, debuglog::PROTOCOL, debuglog::ELEMENT_SIZE)
            .map_err(|e| io::Error::other(format!("debuglog channel: {e}")))?;
        Ok(LogSink {
            reader,
            format,
            out,
            clock: None,
            tail: String::new(),
            open: String::new(),
            messages: 0,
            overruns: 0,
        })
    }

    /// Reads the messages' timestamps with `clock` (a QEMU guest's TSC is not the
    /// host's; the formatter counts in host TSC).
    pub fn with_clock(mut self, clock: &'m SubjectClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The last `n` lines printed (for failure reports).
    pub fn last_lines(&self, n: usize) -> Vec<String> {
        let lines: Vec<&str> = self.tail.lines().collect();
        let skip = lines.len().saturating_sub(n);
        lines[skip..].iter().map(|l| l.to_string()).collect()
    }

    /// Prints every message in the channel; returns whether there was one.
    pub fn drain(&mut self) -> io::Result<bool> {
        let mut text = String::new();
        let mut any = false;
        // Bounded: a subject logging without pause cannot keep the sink here forever.
        for _ in 0..4096 {
            match self.reader.read::<Element>() {
                Ok(e) => {
                    any = true;
                    self.messages += 1;
                    let stamp = self
                        .clock
                        .map_or(e.timestamp(), |c| c.to_host(e.timestamp()));
                    text.push_str(&self.format.message(stamp, e.text()));
                }
                Err(ReadError::EpochChanged) => self.format.epoch_changed(),
                Err(ReadError::Overrun { .. }) => {
                    self.overruns += 1;
                    self.format.overrun();
                }
                Err(ReadError::Misbehaviour(_)) => self.format.overrun(),
                Err(_) => break,
            }
        }
        if !text.is_empty() {
            self.open.push_str(&text);
            let Some(end) = self.open.rfind('\n') else {
                return Ok(any);
            };
            let text: String = self.open.drain(..=end).collect();
            // One write of whole lines (stdout's lock is held for all of it).
            self.out.write_all(text.as_bytes())?;
            self.out.flush()?;
            self.tail.push_str(&text);
            if self.tail.len() > 2 * TAIL_BYTES {
                let mut cut = self.tail.len() - TAIL_BYTES;
                while !self.tail.is_char_boundary(cut) {
                    cut += 1;
                }
                self.tail.drain(..cut);
            }
        }
        Ok(any)
    }

    /// Prints messages until `stop`, then prints what is left and ends an open line.
    /// `wake` makes it look at once (the kernel signals it when the subject halts or
    /// exits); otherwise it looks every `period`.
    ///
    /// After each look that `wake` asked for, it notifies `done` (the kernel waits for
    /// that before it starts a subject again, whose new epoch would drop the lines the
    /// sink has not read).
    pub fn run(
        &mut self,
        stop: &Stop,
        wake: &EventFd,
        done: &EventFd,
        period: Duration,
    ) -> io::Result<()> {
        loop {
            while self.drain()? {}
            let mut fds = [
                os::pollfd(stop.fd(), libc::POLLIN),
                os::pollfd(wake.fd(), libc::POLLIN),
            ];
            os::poll(&mut fds, Some(period))?;
            if os::readable(&fds[1]) {
                wake.clear();
                while self.drain()? {}
                done.notify();
            }
            if os::readable(&fds[0]) {
                while self.drain()? {}
                let end = format!("{}{}", std::mem::take(&mut self.open), self.format.finish());
                self.out.write_all(end.as_bytes())?;
                return self.out.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f() -> Formatter {
        Formatter::new(
            "hello",
            TscRate::from_khz(1_000_000).unwrap(),
            1_000_000_000,
        )
    }

    #[test]
    fn lines_have_timestamp_name_marker_and_text() {
        let mut f = f();
        f.epoch_changed();
        assert_eq!(
            f.message(1_012_345_678, b"Hi\n"),
            "[   0.012345] hello%Hi\n"
        );
        assert_eq!(
            f.message(3_500_000_000, b"second\n"),
            "[   2.500000] hello|second\n"
        );
        assert_eq!(f.finish(), "");
    }

    #[test]
    fn long_messages_continue_the_line() {
        let mut f = f();
        let first = [b'a'; 56];
        assert_eq!(
            f.message(1_000_000_000, &first),
            format!("[   0.000000] hello|{}", "a".repeat(56))
        );
        assert_eq!(f.message(1_000_000_000, b"bc\n"), "bc\n");
        let mut f2 = Formatter::new("x", TscRate::from_khz(1_000).unwrap(), 0);
        assert_eq!(f2.message(0, b"open"), "[   0.000000] x|open");
        assert_eq!(f2.finish(), "\n");
    }

    #[test]
    fn markers_end_an_open_line_first() {
        let mut f = f();
        assert_eq!(
            f.message(1_000_000_000, &[b'a'; 56])[..20],
            *"[   0.000000] hello|"
        );
        f.overrun();
        f.epoch_changed();
        assert_eq!(
            f.message(1_000_000_000, b"b\n"),
            "\n[   0.000000] hello%b\n"
        );
        f.overrun();
        assert_eq!(f.message(1_000_000_000, b"c\n"), "[   0.000000] hello#c\n");
    }

    #[test]
    fn a_sink_converts_guest_stamps_and_keeps_its_last_lines() {
        use muen_channel::protocol::debuglog::LogWriter;
        use muen_channel::{Region, RegionMut};
        use std::num::NonZeroU64;
        use std::sync::atomic::AtomicU64;

        let words: Vec<AtomicU64> = (0..0x2000 / 8).map(|_| AtomicU64::new(0)).collect();
        // A guest whose TSC reads 0 at host TSC 1_000_000_000 (the formatter's origin),
        // stamping its messages 1 ms apart from 2_000_000 on.
        let mut stamp = 1_000_000;
        let clock = move || {
            stamp += 1_000_000;
            stamp
        };
        let mut writer = LogWriter::new(
            RegionMut::from_atomics(&words).unwrap(),
            NonZeroU64::new(7).unwrap(),
            clock,
        )
        .unwrap();
        let guest = SubjectClock::host();
        guest.align(0, 1_000_000_000);
        let mut out = Vec::new();
        let mut sink = LogSink::new(Region::from_atomics(&words).unwrap(), f(), &mut out)
            .unwrap()
            .with_clock(&guest);
        for i in 0..12 {
            writer.write_bytes(format!("line {i}\n").as_bytes());
        }
        while sink.drain().unwrap() {}
        assert_eq!(sink.messages, 12);
        assert_eq!(
            sink.last_lines(2),
            ["[   0.012000] hello|line 10", "[   0.013000] hello|line 11"]
        );
        assert_eq!(sink.last_lines(100).len(), 12);
        let printed = String::from_utf8(out).unwrap();
        assert!(
            printed.starts_with("[   0.002000] hello%line 0\n"),
            "{printed}"
        );
    }

    #[test]
    fn control_characters_are_escaped_and_early_timestamps_clamp() {
        let mut f = f();
        assert_eq!(
            f.message(5, b"\x1b[31mred\ttab\x7f\n"),
            "[   0.000000] hello|\\x1b[31mred\ttab\\x7f\n"
        );
    }
}
