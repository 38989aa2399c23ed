//! `debuglog`: the subject's log lines, read by Muen's debug server.
//!
//! One element is one message of up to 56 characters with the time it was flushed.
//! [`LogWriter`] turns a byte stream into messages the way Muen's own log library
//! does: NUL and CR are dropped, a message ends after LF (which it keeps) or when 56
//! characters are collected, so long lines become several messages.

use core::fmt;
use core::mem::{offset_of, size_of};
use core::num::NonZeroU64;

use zerocopy::little_endian::U64;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::ConfigError;
use crate::region::RegionMut;
use crate::writer::Writer;

/// Protocol identifier (bytes in memory `cf 70 6f 4b 09 89 07 f0`).
pub const PROTOCOL: u64 = 0xf007_8909_4b6f_70cf;

/// Characters per message.
pub const TEXT_LEN: usize = 56;

/// Size of one element.
pub const ELEMENT_SIZE: usize = size_of::<Element>();

/// One message as it lies in the channel.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct Element {
    timestamp: U64,
    text: [u8; TEXT_LEN],
}

const _: () = assert!(size_of::<Element>() == 64);
const _: () = assert!(offset_of!(Element, text) == 8);

impl Element {
    /// A message with `timestamp` and `text` (zero padded; `text` longer than
    /// [`TEXT_LEN`] is cut).
    pub fn new(timestamp: u64, text: &[u8]) -> Self {
        let mut e = Element {
            timestamp: timestamp.into(),
            text: [0; TEXT_LEN],
        };
        let n = text.len().min(TEXT_LEN);
        e.text[..n].copy_from_slice(&text[..n]);
        e
    }

    /// The timestamp (TSC value when the message was flushed).
    pub fn timestamp(&self) -> u64 {
        self.timestamp.get()
    }

    /// The text up to the first NUL (all 56 bytes if there is none).
    pub fn text(&self) -> &[u8] {
        let end = self.text.iter().position(|&b| b == 0).unwrap_or(TEXT_LEN);
        &self.text[..end]
    }
}

/// Where timestamps come from: on Muen the current minor frame's start TSC.
pub trait Clock {
    /// The timestamp for a message flushed now.
    fn timestamp(&mut self) -> u64;
}

impl<F: FnMut() -> u64> Clock for F {
    fn timestamp(&mut self) -> u64 {
        self()
    }
}

/// Collects bytes into messages (the line-splitting rule, without a channel).
#[derive(Clone, Debug)]
pub struct LineBuffer {
    text: [u8; TEXT_LEN],
    len: usize,
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl LineBuffer {
    /// An empty buffer.
    pub const fn new() -> Self {
        LineBuffer {
            text: [0; TEXT_LEN],
            len: 0,
        }
    }

    /// Adds one byte. Returns the message (zero padded) when `byte` completed it: it is
    /// LF, or the 56th character.
    pub fn push(&mut self, byte: u8) -> Option<[u8; TEXT_LEN]> {
        if byte == 0 || byte == b'\r' {
            return None;
        }
        self.text[self.len] = byte;
        self.len += 1;
        if byte == b'\n' || self.len == TEXT_LEN {
            return self.take();
        }
        None
    }

    /// The collected bytes as a message, if there are any, and empties the buffer.
    pub fn take(&mut self) -> Option<[u8; TEXT_LEN]> {
        if self.len == 0 {
            return None;
        }
        let text = self.text;
        self.text = [0; TEXT_LEN];
        self.len = 0;
        Some(text)
    }

    /// Number of bytes collected for the next message.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte is waiting.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The debug log: a channel writer plus line splitting and timestamps. Use it through
/// [`core::fmt::Write`] (`write!`) or [`LogWriter::write_bytes`].
#[derive(Debug)]
pub struct LogWriter<'a, C: Clock> {
    writer: Writer<'a>,
    line: LineBuffer,
    clock: C,
}

impl<'a, C: Clock> LogWriter<'a, C> {
    /// Initialises the `debuglog` channel in `region` with `epoch`; `clock` stamps
    /// each message.
    pub fn new(region: RegionMut<'a>, epoch: NonZeroU64, clock: C) -> Result<Self, ConfigError> {
        Ok(LogWriter {
            writer: Writer::init(region, PROTOCOL, ELEMENT_SIZE, epoch)?,
            line: LineBuffer::new(),
            clock,
        })
    }

    /// Logs `bytes`; complete messages go out at once.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if let Some(text) = self.line.push(b) {
                self.emit(text);
            }
        }
    }

    /// Sends an unfinished message now (for example before the subject stops).
    pub fn flush(&mut self) {
        if let Some(text) = self.line.take() {
            self.emit(text);
        }
    }

    fn emit(&mut self, text: [u8; TEXT_LEN]) {
        let e = Element::new(self.clock.timestamp(), &text);
        // Cannot fail: the writer was created with this element's size.
        let _ = self.writer.write(&e);
    }

    /// The underlying channel writer.
    pub fn writer(&self) -> &Writer<'a> {
        &self.writer
    }
}

impl<C: Clock> fmt::Write for LogWriter<'_, C> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::header::ring_elements;
    use crate::{ReadError, Reader, Region};
    use core::fmt::Write as _;
    use core::sync::atomic::AtomicU64;
    use std::vec::Vec;

    #[test]
    fn layout_and_identifier() {
        assert_eq!(
            PROTOCOL.to_le_bytes(),
            [0xcf, 0x70, 0x6f, 0x4b, 0x09, 0x89, 0x07, 0xf0]
        );
        assert_eq!(ring_elements(0x2_0000, ELEMENT_SIZE), Some(2047));
        let e = Element::new(0x1122, b"hi\n");
        assert_eq!(&e.as_bytes()[..8], &0x1122u64.to_le_bytes());
        assert_eq!(&e.as_bytes()[8..12], b"hi\n\0");
        assert_eq!(e.text(), b"hi\n");
        assert_eq!(Element::new(0, &[b'x'; 70]).text(), &[b'x'; 56][..]);
    }

    fn messages(input: &[&[u8]], flush: bool) -> Vec<(u64, Vec<u8>)> {
        let words: Vec<AtomicU64> = (0..0x400 / 8).map(|_| AtomicU64::new(0)).collect();
        let region = RegionMut::from_atomics(&words).unwrap();
        let mut reader = Reader::new(
            Region::from_atomics(&words).unwrap(),
            PROTOCOL,
            ELEMENT_SIZE,
        )
        .unwrap();
        let mut t = 100;
        let mut log = LogWriter::new(region, NonZeroU64::new(9).unwrap(), move || {
            t += 1;
            t
        })
        .unwrap();
        for chunk in input {
            log.write_bytes(chunk);
        }
        if flush {
            log.flush();
        }
        assert_eq!(reader.read::<Element>(), Err(ReadError::EpochChanged));
        let mut out = Vec::new();
        loop {
            match reader.read::<Element>() {
                Ok(e) => out.push((e.timestamp(), e.text().to_vec())),
                Err(ReadError::NoData) => return out,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn lines_are_split_like_the_reference_library() {
        let out = messages(&[b"one\r\n", b"t\0w", b"o\n"], false);
        assert_eq!(out, [(101, b"one\n".to_vec()), (102, b"two\n".to_vec())]);
        // A 56-character run is flushed at once; the LF that follows is a message of
        // its own, exactly as in the C and Ada implementations.
        let long = [b'a'; 56];
        let out = messages(&[&long, b"\n"], false);
        assert_eq!(out, [(101, long.to_vec()), (102, b"\n".to_vec())]);
        // 57 characters + LF: 56, then "a\n".
        let out = messages(&[&[b'a'; 57], b"\n"], false);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].1, b"a\n");
        // Unfinished lines stay buffered until flushed.
        assert!(messages(&[b"partial"], false).is_empty());
        assert_eq!(messages(&[b"partial"], true), [(101, b"partial".to_vec())]);
        assert!(messages(&[b"\r\0\r"], true).is_empty());
    }

    #[test]
    fn fmt_write_adapter() {
        let words: Vec<AtomicU64> = (0..0x400 / 8).map(|_| AtomicU64::new(0)).collect();
        let mut log = LogWriter::new(
            RegionMut::from_atomics(&words).unwrap(),
            NonZeroU64::MIN,
            || 7,
        )
        .unwrap();
        writeln!(log, "x = {}", 42).unwrap();
        assert_eq!(log.writer().write_count(), 1);
        let mut r = Reader::new(
            Region::from_atomics(&words).unwrap(),
            PROTOCOL,
            ELEMENT_SIZE,
        )
        .unwrap();
        let _ = r.read::<Element>();
        let e = r.read::<Element>().unwrap();
        assert_eq!((e.timestamp(), e.text()), (7, &b"x = 42\n"[..]));
    }
}
