//! Frame recording in the classic pcap format (microsecond timestamps, link type
//! Ethernet), which `tshark`, `tcpdump` and Wireshark read.
//!
//! The classic format has no direction field: frames to and from the subject are
//! recorded in the order the bridge handled them; their MAC addresses tell the
//! directions apart.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::SystemTime;

use zerocopy::little_endian::{I32, U16, U32};
use zerocopy::{Immutable, IntoBytes, KnownLayout};

/// Magic number of a pcap file with microsecond timestamps.
pub const MAGIC: u32 = 0xa1b2_c3d4;
/// Link type Ethernet (`LINKTYPE_ETHERNET`).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Longest frame recorded whole.
pub const SNAPLEN: u32 = 65_535;

/// The file header.
#[derive(IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct FileHeader {
    /// [`MAGIC`].
    pub magic: U32,
    /// 2.
    pub version_major: U16,
    /// 4.
    pub version_minor: U16,
    /// Timezone correction (0: timestamps are UTC).
    pub thiszone: I32,
    /// Timestamp accuracy (0).
    pub sigfigs: U32,
    /// [`SNAPLEN`].
    pub snaplen: U32,
    /// [`LINKTYPE_ETHERNET`].
    pub network: U32,
}

/// The header before each frame.
#[derive(IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RecordHeader {
    /// Seconds since the Unix epoch.
    pub ts_sec: U32,
    /// Microseconds within the second.
    pub ts_usec: U32,
    /// Bytes recorded.
    pub incl_len: U32,
    /// Length of the frame.
    pub orig_len: U32,
}

const _: () = assert!(std::mem::size_of::<FileHeader>() == 24);
const _: () = assert!(std::mem::offset_of!(FileHeader, snaplen) == 16);
const _: () = assert!(std::mem::size_of::<RecordHeader>() == 16);

/// A pcap file being written.
#[derive(Debug)]
pub struct Pcap<W: Write = BufWriter<File>> {
    out: W,
    frames: u64,
}

impl Pcap {
    /// Creates (or truncates) `path` and writes the file header.
    pub fn create(path: &Path) -> io::Result<Pcap> {
        let file = File::create(path)?;
        Pcap::new(BufWriter::with_capacity(1 << 16, file))
    }
}

impl<W: Write> Pcap<W> {
    /// Writes the file header to `out`.
    pub fn new(mut out: W) -> io::Result<Self> {
        let header = FileHeader {
            magic: MAGIC.into(),
            version_major: 2.into(),
            version_minor: 4.into(),
            thiszone: 0.into(),
            sigfigs: 0.into(),
            snaplen: SNAPLEN.into(),
            network: LINKTYPE_ETHERNET.into(),
        };
        out.write_all(header.as_bytes())?;
        Ok(Pcap { out, frames: 0 })
    }

    /// Records `frame`, stamped with the current time.
    pub fn record(&mut self, frame: &[u8]) -> io::Result<()> {
        self.record_at(frame, SystemTime::now())
    }

    /// Records `frame` with timestamp `at`.
    pub fn record_at(&mut self, frame: &[u8], at: SystemTime) -> io::Result<()> {
        let since = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let incl = len.min(SNAPLEN);
        let header = RecordHeader {
            // pcap's 32-bit seconds last until 2106.
            ts_sec: (since.as_secs() as u32).into(),
            ts_usec: since.subsec_micros().into(),
            incl_len: incl.into(),
            orig_len: len.into(),
        };
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(&frame[..incl as usize])?;
        self.frames += 1;
        Ok(())
    }

    /// Frames recorded.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Writes buffered records out.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn file_and_record_layout() {
        let mut p = Pcap::new(Vec::new()).unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::new(0x0102_0304, 5_006_000);
        p.record_at(&[0xaa; 60], at).unwrap();
        assert_eq!(p.frames(), 1);
        let bytes = p.out;
        assert_eq!(bytes.len(), 24 + 16 + 60);
        assert_eq!(bytes[..4], [0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(bytes[4..8], [2, 0, 4, 0]);
        assert_eq!(bytes[16..24], [0xff, 0xff, 0, 0, 1, 0, 0, 0]);
        assert_eq!(bytes[24..28], [4, 3, 2, 1]);
        assert_eq!(u32::from_le_bytes(bytes[28..32].try_into().unwrap()), 5006);
        assert_eq!(bytes[32..40], [60, 0, 0, 0, 60, 0, 0, 0]);
        assert!(bytes[40..].iter().all(|b| *b == 0xaa));
    }
}
