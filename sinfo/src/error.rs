//! Why a buffer is not a valid subject info page.

use core::fmt;

use crate::layout::{HEADER_SIZE, NAME_MAX, RESOURCE_MAX, RESOURCE_SIZE};

/// Why [`crate::SubjectInfo::new_checked`] rejected a buffer.
///
/// The checks run in the order of the variants, so a buffer gets the first error that
/// applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The buffer is shorter than the 80-byte header.
    Truncated {
        /// Length of the buffer.
        len: usize,
    },
    /// The first seven bytes are not `"muinfo\0"`.
    BadMagic {
        /// The first eight bytes of the buffer.
        found: [u8; 8],
    },
    /// The magic names a format version this crate does not read.
    UnsupportedVersion {
        /// The version byte (the magic's last byte).
        version: u8,
    },
    /// `resource_count` is larger than the 255 records a page has room for.
    TooManyResources {
        /// The count found.
        count: u16,
    },
    /// The buffer ends before the last record that `resource_count` says is in use.
    ResourcesPastEnd {
        /// The count found.
        count: u16,
        /// Length of the buffer.
        len: usize,
    },
    /// The subject name's length byte is larger than 63.
    NameTooLong {
        /// The length byte.
        length: u8,
    },
    /// A resource name's length byte is larger than 63.
    ResourceNameTooLong {
        /// Index of the record.
        index: usize,
        /// The length byte.
        length: u8,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { len } => write!(
                f,
                "the data is {len} bytes long, shorter than the {HEADER_SIZE}-byte header"
            ),
            Error::BadMagic { found } => {
                f.write_str("magic: expected 6d 75 69 6e 66 6f 00 (\"muinfo\\0\") and a version byte, found")?;
                for byte in found {
                    write!(f, " {byte:02x}")?;
                }
                Ok(())
            }
            Error::UnsupportedVersion { version } => write!(
                f,
                "magic: format version {version} is not supported (supported: 3, 4, 5)"
            ),
            Error::TooManyResources { count } => write!(
                f,
                "resource_count: {count} is more than the {RESOURCE_MAX} records a page holds"
            ),
            Error::ResourcesPastEnd { count, len } => write!(
                f,
                "resource_count: {count} records need {} bytes, but the data is {len} bytes long",
                HEADER_SIZE + usize::from(count) * RESOURCE_SIZE
            ),
            Error::NameTooLong { length } => {
                write!(f, "name: length {length} is more than {NAME_MAX}")
            }
            Error::ResourceNameTooLong { index, length } => write!(
                f,
                "resource {index}: name length {length} is more than {NAME_MAX}"
            ),
        }
    }
}

impl core::error::Error for Error {}
