//! What can be wrong with a manifest, and where.

use std::boxed::Box;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::string::String;

use muen_abi::names::NameError;

/// A place in a manifest file (both 1-based; the column counts characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Line number, from 1.
    pub line: usize,
    /// Column number in characters, from 1.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text` (clamped to the text, rounded down to a
    /// character boundary).
    pub fn of_offset(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// The two manifest formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `app.toml`.
    Toml,
    /// Solo5's manifest JSON (`solo5-elftool query-manifest`).
    Json,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Toml => "TOML",
            Format::Json => "JSON",
        })
    }
}

/// Why a size was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SizeError {
    /// Neither an integer nor digits with a `K`, `M` or `G` suffix.
    Format {
        /// The text as written.
        text: String,
    },
    /// A negative integer.
    Negative {
        /// The value as written.
        value: i64,
    },
    /// Zero bytes.
    Zero,
    /// Not a multiple of the page size.
    Unaligned {
        /// The size in bytes.
        bytes: u64,
    },
    /// More than `u64::MAX` bytes.
    Overflow {
        /// The text as written.
        text: String,
    },
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeError::Format { text } => write!(
                f,
                "{text:?} is not a size: write an integer number of bytes or digits with a \
                 K, M or G suffix (powers of 1024), like \"64M\""
            ),
            SizeError::Negative { value } => write!(f, "size {value} is negative"),
            SizeError::Zero => f.write_str("size must not be zero"),
            SizeError::Unaligned { bytes } => write!(
                f,
                "size {bytes} ({bytes:#x}) is not a multiple of the page size (4K = 0x1000)"
            ),
            SizeError::Overflow { text } => {
                write!(f, "size {text:?} is too large (more than 2^64 - 1 bytes)")
            }
        }
    }
}

/// What a checked name names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// The component (subject) name.
    Component,
    /// A device name.
    Device,
    /// A channel name.
    Channel,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Component => "component",
            NameKind::Device => "device",
            NameKind::Channel => "channel",
        })
    }
}

/// What is wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum Problem {
    /// The file could not be read (missing, no permission, not UTF-8, ...).
    Read(io::Error),
    /// The file is not valid TOML / JSON.
    Syntax {
        /// Which format the file was read as.
        format: Format,
        /// The parser's message.
        message: String,
    },
    /// A key that the manifest format does not have (the key is the last part of the
    /// field).
    UnknownKey {
        /// A known key that is spelled similarly.
        suggestion: Option<&'static str>,
    },
    /// A required key is missing.
    Missing,
    /// A value of the wrong type (the parser's message).
    Invalid(String),
    /// An invalid component or device name.
    Name {
        /// The name as written.
        name: String,
        /// What is wrong with it.
        error: NameError,
        /// What the name names.
        kind: NameKind,
    },
    /// A device name used twice (device names are unique across kinds, since they
    /// prefix the names of every device region).
    DuplicateDevice {
        /// The name.
        name: String,
        /// Where it was first used (a field path).
        first: String,
    },
    /// A channel name that a device or another channel uses already (device and channel
    /// names share one name space).
    DuplicateChannel {
        /// The name.
        name: String,
        /// Where it was first used (a field path).
        first: String,
    },
    /// A channel direction other than `"in"` and `"out"`.
    Direction {
        /// What was written.
        found: String,
    },
    /// A channel element size that is zero or leaves no room for one element.
    ElementSize {
        /// The element size.
        element_size: u64,
        /// The channel's size.
        channel_size: u64,
    },
    /// A protocol id that is not a non-zero 64-bit number.
    Protocol {
        /// What was written.
        found: String,
    },
    /// An invalid size.
    Size(SizeError),
    /// The RAM does not fit between `layout::RAM_BASE` and `layout::RAM_LIMIT`.
    RamTooLarge {
        /// The requested size.
        size: u64,
        /// The largest possible size.
        max: u64,
    },
    /// An empty path.
    EmptyPath,
    /// The JSON's `type` is not `solo5.manifest`.
    NotSolo5Manifest {
        /// The `type` found.
        found: String,
    },
    /// The Solo5 manifest version is not 1.
    Solo5Version {
        /// The version found.
        found: u64,
    },
    /// A Solo5 device type other than `NET_BASIC` and `BLOCK_BASIC`.
    DeviceType {
        /// The type found.
        found: String,
        /// A known type that is spelled similarly.
        suggestion: Option<&'static str>,
    },
    /// A Solo5 manifest has no component name, and none was given.
    NameRequired,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Read(e) => write!(f, "cannot read the file: {e}"),
            Problem::Syntax { format, message } => write!(f, "invalid {format}: {message}"),
            Problem::UnknownKey { suggestion } => {
                f.write_str("unknown key")?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean `{s}`?")?;
                }
                Ok(())
            }
            Problem::Missing => f.write_str("missing (this key is required)"),
            Problem::Invalid(message) => f.write_str(message),
            Problem::Name { name, error, kind } => {
                write!(f, "{kind} name {name:?} {error}")?;
                match (error, kind) {
                    (NameError::TooLong { .. }, NameKind::Component) => f.write_str(
                        " (Muen names the component's regions `<component>|<region>`, and \
                         names have at most 63 characters)",
                    ),
                    (NameError::TooLong { .. }, NameKind::Device) => f.write_str(
                        " (the device's regions are named `<device>|resp` and so on, and \
                         names have at most 63 characters)",
                    ),
                    (NameError::TooLong { .. }, NameKind::Channel) => {
                        f.write_str(" (channel names follow the rules of device names)")
                    }
                    (NameError::BadStart | NameError::BadCharacter { .. }, NameKind::Component) => {
                        f.write_str(
                            " (allowed: an ASCII letter, then ASCII letters, digits, `_`, `-`)",
                        )
                    }
                    (
                        NameError::BadStart | NameError::BadCharacter { .. },
                        NameKind::Device | NameKind::Channel,
                    ) => {
                        f.write_str(" (allowed: an ASCII letter, then ASCII letters, digits, `_`)")
                    }
                    (NameError::Empty | NameError::Reserved, _) => Ok(()),
                }
            }
            Problem::DuplicateDevice { name, first } => write!(
                f,
                "device name {name:?} is already used by `{first}` (device names must be \
                 unique across all kinds)"
            ),
            Problem::DuplicateChannel { name, first } => write!(
                f,
                "channel name {name:?} is already used by `{first}` (device and channel \
                 names must be unique: they name the app's regions)"
            ),
            Problem::Direction { found } => write!(
                f,
                "unknown direction {found:?} (expected \"out\": this app writes the channel, \
                 or \"in\": it reads it)"
            ),
            Problem::ElementSize {
                element_size: 0, ..
            } => f.write_str("the element size must not be zero"),
            Problem::ElementSize {
                element_size,
                channel_size,
            } => write!(
                f,
                "an element of {element_size} bytes does not fit the channel of \
                 {channel_size} bytes after its 64-byte header"
            ),
            Problem::Protocol { found } => write!(
                f,
                "{found} is not a protocol id: write a non-zero 64-bit number, as an \
                 integer or a string such as \"0x6775_6573_7462_6f6f\""
            ),
            Problem::Size(e) => e.fmt(f),
            Problem::RamTooLarge { size, max } => write!(
                f,
                "RAM size {size:#x} is larger than {max:#x} bytes, the room between the RAM \
                 base {:#x} and the subject info page at {:#x}",
                muen_abi::layout::RAM_BASE,
                muen_abi::layout::RAM_LIMIT
            ),
            Problem::EmptyPath => f.write_str("the path is empty"),
            Problem::NotSolo5Manifest { found } => write!(
                f,
                "expected \"solo5.manifest\", found {found:?} (is this the output of \
                 `solo5-elftool query-manifest`?)"
            ),
            Problem::Solo5Version { found } => {
                write!(f, "unsupported Solo5 manifest version {found} (expected 1)")
            }
            Problem::DeviceType { found, suggestion } => {
                write!(
                    f,
                    "unknown device type {found:?} (expected \"NET_BASIC\" or \"BLOCK_BASIC\")"
                )?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean {s:?}?")?;
                }
                Ok(())
            }
            Problem::NameRequired => f.write_str(
                "a Solo5 manifest does not name the component: give the name separately \
                 (policy-gen --name NAME)",
            ),
        }
    }
}

/// A manifest was rejected: which file, which field, where, and why.
///
/// Boxed inside, so that `Result<App, ManifestError>` stays small.
#[derive(Debug)]
pub struct ManifestError {
    details: Box<Details>,
}

#[derive(Debug)]
struct Details {
    file: PathBuf,
    field: Option<String>,
    position: Option<Position>,
    problem: Problem,
}

impl ManifestError {
    pub(crate) fn new(file: impl Into<PathBuf>, problem: Problem) -> Self {
        ManifestError {
            details: Box::new(Details {
                file: file.into(),
                field: None,
                position: None,
                problem,
            }),
        }
    }

    pub(crate) fn with_field(mut self, field: impl Into<String>) -> Self {
        self.details.field = Some(field.into());
        self
    }

    pub(crate) fn at(mut self, position: Option<Position>) -> Self {
        self.details.position = position;
        self
    }

    /// The manifest file.
    pub fn file(&self) -> &Path {
        &self.details.file
    }

    /// The field as a path (`net.service0.channel_size`, `devices[0].name`), if the
    /// problem belongs to one.
    pub fn field(&self) -> Option<&str> {
        self.details.field.as_deref()
    }

    /// Where in the file, if known.
    pub fn position(&self) -> Option<Position> {
        self.details.position
    }

    /// What is wrong.
    pub fn problem(&self) -> &Problem {
        &self.details.problem
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file().display())?;
        if let Some(p) = self.position() {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        if let Some(field) = self.field() {
            write!(f, ": `{field}`")?;
        }
        write!(f, ": {}", self.problem())
    }
}

impl std::error::Error for ManifestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.problem() {
            Problem::Read(e) => Some(e),
            _ => None,
        }
    }
}
