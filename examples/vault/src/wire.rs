//! The guestbook's wire format: the elements `web` and `vault` exchange over their
//! channel pair, and the entry as it is stored.
//!
//! `web` writes [`RequestElement`]s into the channel `requests`; `vault` answers with
//! [`ResponseElement`]s in `responses`. Both are 512 bytes, little-endian, with
//! compile-time checked offsets, and carry the request's `tag` (web's choice, echoed),
//! so that answers find their request whatever arrives in between.
//!
//! Request (protocol [`REQUEST_PROTOCOL`], "vaultreq"):
//!
//! | offset | size | field | |
//! |-------:|-----:|-------|---|
//! | 0 | 8 | `tag` | any |
//! | 8 | 1 | `kind` | 1 append, 2 read, 3 recent |
//! | 9 | 1 | `name_len` | append: 1..=32, else 0 |
//! | 10 | 2 | `text_len` | append: 1..=448, else 0 |
//! | 12 | 4 | `count` | recent: 1..=[`RECENT_MAX`], else 0 |
//! | 16 | 8 | `sequence` | read: 1 or more, else 0 |
//! | 24 | 32 | `name` | `name_len` bytes of UTF-8, then zeros |
//! | 56 | 448 | `text` | `text_len` bytes of UTF-8, then zeros |
//! | 504 | 8 | reserved | zeros |
//!
//! Response (protocol [`RESPONSE_PROTOCOL`], "vaultrsp"):
//!
//! | offset | size | field | |
//! |-------:|-----:|-------|---|
//! | 0 | 8 | `tag` | the request's |
//! | 8 | 1 | `kind` | 1 appended, 2 entry, 3 missing, 4 refused |
//! | 9 | 1 | `name_len` | entry: 1..=32, else 0 |
//! | 10 | 2 | `text_len` | entry: 1..=448, else 0 |
//! | 12 | 1 | `detail` | entry: 1 if it is the last of its answer, else 0; refused: the [`Refusal`] |
//! | 13 | 3 | reserved | zeros |
//! | 16 | 8 | `sequence` | appended, entry: its number (1 or more); missing: the one asked for (0 for recent) |
//! | 24 | 8 | `total` | entries in the book (at least `sequence`); refused: 0 |
//! | 32 | 32 | `name` | as in the request |
//! | 64 | 448 | `text` | as in the request |
//!
//! **Decoding is total and strict.** [`RequestElement::decode`] and
//! [`ResponseElement::decode`] accept every byte pattern and return a value or a
//! [`WireError`], never a panic: the kind must be known, every length in range,
//! names and texts UTF-8 without control characters, and every byte a kind does not
//! use zero (so one message has exactly one encoding, and a compromised sender cannot
//! smuggle anything in the unused bytes). A name or text is an [`Entry`]'s only way in,
//! and [`Entry::new`] checks the same rules, so whatever decodes is what could have
//! been encoded.
//!
//! Stored entry (the payload of a blockstore record, [`Entry::to_payload`]): `1`
//! (the format), `name_len`, the name, the text; at most [`PAYLOAD_LEN`] bytes.

use core::fmt;

use muen_subject::channel::ElementType;
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The request channel's protocol id: "vaultreq" in ASCII.
pub const REQUEST_PROTOCOL: u64 = 0x7661_756c_7472_6571;
/// The response channel's protocol id: "vaultrsp" in ASCII.
pub const RESPONSE_PROTOCOL: u64 = 0x7661_756c_7472_7370;
/// Bytes per element, both ways.
pub const ELEMENT_SIZE: usize = 512;
/// The longest name, in bytes.
pub const NAME_MAX: usize = 32;
/// The longest text, in bytes.
pub const TEXT_MAX: usize = 448;
/// The most entries one `recent` request asks for.
pub const RECENT_MAX: u32 = 16;
/// The format byte of a stored entry.
pub const PAYLOAD_FORMAT: u8 = 1;
/// The longest stored entry: format, name length, name, text.
pub const PAYLOAD_LEN: usize = 2 + NAME_MAX + TEXT_MAX;

/// A request as it lies in the channel.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct RequestElement {
    tag: U64,
    kind: u8,
    name_len: u8,
    text_len: U16,
    count: U32,
    sequence: U64,
    name: [u8; NAME_MAX],
    text: [u8; TEXT_MAX],
    reserved: [u8; 8],
}

/// A response as it lies in the channel.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct ResponseElement {
    tag: U64,
    kind: u8,
    name_len: u8,
    text_len: U16,
    detail: u8,
    reserved: [u8; 3],
    sequence: U64,
    total: U64,
    name: [u8; NAME_MAX],
    text: [u8; TEXT_MAX],
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<RequestElement>() == ELEMENT_SIZE);
    assert!(offset_of!(RequestElement, kind) == 8);
    assert!(offset_of!(RequestElement, name_len) == 9);
    assert!(offset_of!(RequestElement, text_len) == 10);
    assert!(offset_of!(RequestElement, count) == 12);
    assert!(offset_of!(RequestElement, sequence) == 16);
    assert!(offset_of!(RequestElement, name) == 24);
    assert!(offset_of!(RequestElement, text) == 56);
    assert!(offset_of!(RequestElement, reserved) == 504);
    assert!(size_of::<ResponseElement>() == ELEMENT_SIZE);
    assert!(offset_of!(ResponseElement, detail) == 12);
    assert!(offset_of!(ResponseElement, sequence) == 16);
    assert!(offset_of!(ResponseElement, total) == 24);
    assert!(offset_of!(ResponseElement, name) == 32);
    assert!(offset_of!(ResponseElement, text) == 64);
    // A stored entry fits a blockstore record.
    assert!(PAYLOAD_LEN <= blockstore::format::PAYLOAD_MAX);
};

impl ElementType for RequestElement {
    const PROTOCOL: u64 = REQUEST_PROTOCOL;
}

impl ElementType for ResponseElement {
    const PROTOCOL: u64 = RESPONSE_PROTOCOL;
}

/// A field of an element, for [`WireError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `name` / `name_len`.
    Name,
    /// `text` / `text_len`.
    Text,
    /// `count`.
    Count,
    /// `sequence`.
    Sequence,
    /// `total`.
    Total,
    /// `detail`.
    Detail,
    /// The reserved bytes.
    Reserved,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Name => "name",
            Field::Text => "text",
            Field::Count => "count",
            Field::Sequence => "sequence",
            Field::Total => "total",
            Field::Detail => "detail",
            Field::Reserved => "reserved bytes",
        })
    }
}

/// Why bytes are not a valid message (or an entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// An unknown kind.
    Kind(u8),
    /// A name or text length of 0 or above its maximum.
    Length {
        /// The field.
        field: Field,
        /// The length given.
        length: usize,
    },
    /// A name or text that is not UTF-8.
    NotUtf8(Field),
    /// A name or text with a control character (line breaks included).
    Control(Field),
    /// Bytes after a name's or text's length that are not zero.
    Padding(Field),
    /// A field this kind does not use that is not zero.
    Unused(Field),
    /// A value out of range: a sequence of 0, a count of 0 or above [`RECENT_MAX`], a
    /// total below the sequence, an unknown detail.
    Range(Field),
    /// A stored entry in another format, or of another length.
    Payload,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Kind(k) => write!(f, "unknown kind {k}"),
            WireError::Length { field, length } => {
                let max = match field {
                    Field::Name => NAME_MAX,
                    _ => TEXT_MAX,
                };
                write!(f, "{field} of {length} bytes (1 to {max})")
            }
            WireError::NotUtf8(field) => write!(f, "{field} is not UTF-8"),
            WireError::Control(field) => write!(f, "{field} has a control character"),
            WireError::Padding(field) => write!(f, "bytes after the {field} are not zero"),
            WireError::Unused(field) => write!(f, "unused {field} not zero"),
            WireError::Range(field) => write!(f, "{field} out of range"),
            WireError::Payload => f.write_str("not a stored entry"),
        }
    }
}

impl core::error::Error for WireError {}

/// A checked string: 1 to `N` bytes of UTF-8 without control characters.
fn check_str(bytes: &[u8], max: usize, field: Field) -> Result<&str, WireError> {
    if bytes.is_empty() || bytes.len() > max {
        return Err(WireError::Length {
            field,
            length: bytes.len(),
        });
    }
    let text = core::str::from_utf8(bytes).map_err(|_| WireError::NotUtf8(field))?;
    if text.chars().any(char::is_control) {
        return Err(WireError::Control(field));
    }
    Ok(text)
}

/// The first `len` bytes of `area` as a checked string; the rest must be zero.
fn field_str(area: &[u8], len: usize, field: Field) -> Result<&str, WireError> {
    let Some((content, rest)) = area.split_at_checked(len) else {
        return Err(WireError::Length { field, length: len });
    };
    let text = check_str(content, area.len(), field)?;
    if rest.iter().any(|&b| b != 0) {
        return Err(WireError::Padding(field));
    }
    Ok(text)
}

fn zero(bytes: &[u8], field: Field) -> Result<(), WireError> {
    if bytes.iter().any(|&b| b != 0) {
        return Err(WireError::Unused(field));
    }
    Ok(())
}

/// A guestbook entry: a name (1 to [`NAME_MAX`] bytes) and a text (1 to [`TEXT_MAX`]
/// bytes), both UTF-8 without control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    name: heapless::String<NAME_MAX>,
    text: heapless::String<TEXT_MAX>,
}

impl Entry {
    /// An entry of `name` and `text`, if both follow the rules.
    pub fn new(name: &str, text: &str) -> Result<Entry, WireError> {
        let name = check_str(name.as_bytes(), NAME_MAX, Field::Name)?;
        let text = check_str(text.as_bytes(), TEXT_MAX, Field::Text)?;
        // Cannot fail: the lengths were checked.
        let mut entry = Entry {
            name: heapless::String::new(),
            text: heapless::String::new(),
        };
        let _ = entry.name.push_str(name);
        let _ = entry.text.push_str(text);
        Ok(entry)
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The entry as stored: writes it into `out` and returns its length.
    pub fn to_payload(&self, out: &mut [u8; PAYLOAD_LEN]) -> usize {
        let (name, text) = (self.name.as_bytes(), self.text.as_bytes());
        out[0] = PAYLOAD_FORMAT;
        out[1] = name.len() as u8;
        out[2..2 + name.len()].copy_from_slice(name);
        let at = 2 + name.len();
        out[at..at + text.len()].copy_from_slice(text);
        at + text.len()
    }

    /// The entry stored as `payload`, checked as on the wire.
    pub fn from_payload(payload: &[u8]) -> Result<Entry, WireError> {
        let [format, name_len, rest @ ..] = payload else {
            return Err(WireError::Payload);
        };
        if *format != PAYLOAD_FORMAT {
            return Err(WireError::Payload);
        }
        let (name, text) = rest
            .split_at_checked(usize::from(*name_len))
            .ok_or(WireError::Payload)?;
        Entry::new(
            check_str(name, NAME_MAX, Field::Name)?,
            check_str(text, TEXT_MAX, Field::Text)?,
        )
    }

    fn write(&self, name: &mut [u8; NAME_MAX], text: &mut [u8; TEXT_MAX]) -> (u8, u16) {
        name[..self.name.len()].copy_from_slice(self.name.as_bytes());
        text[..self.text.len()].copy_from_slice(self.text.as_bytes());
        (self.name.len() as u8, self.text.len() as u16)
    }

    fn read(
        name: &[u8; NAME_MAX],
        name_len: u8,
        text: &[u8; TEXT_MAX],
        text_len: u16,
    ) -> Result<Entry, WireError> {
        Entry::new(
            field_str(name, usize::from(name_len), Field::Name)?,
            field_str(text, usize::from(text_len), Field::Text)?,
        )
    }
}

/// What web asks vault.
// The subjects have no heap: an entry is held by value (about 500 bytes).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Append this entry to the book.
    Append(Entry),
    /// Read entry `sequence` (1 is the first).
    Read {
        /// The entry's number.
        sequence: u64,
    },
    /// Read the newest `count` entries (1 to [`RECENT_MAX`]), oldest first.
    Recent {
        /// How many.
        count: u32,
    },
}

const REQUEST_APPEND: u8 = 1;
const REQUEST_READ: u8 = 2;
const REQUEST_RECENT: u8 = 3;

impl Request {
    /// The request as an element with `tag`. (A `Read` of sequence 0 or a `Recent` of
    /// a count out of range is encoded as it is, and refused by the decoder.)
    pub fn encode(&self, tag: u64) -> RequestElement {
        let mut e = RequestElement::new_zeroed();
        e.tag = tag.into();
        match self {
            Request::Append(entry) => {
                e.kind = REQUEST_APPEND;
                let (n, t) = entry.write(&mut e.name, &mut e.text);
                e.name_len = n;
                e.text_len = t.into();
            }
            Request::Read { sequence } => {
                e.kind = REQUEST_READ;
                e.sequence = (*sequence).into();
            }
            Request::Recent { count } => {
                e.kind = REQUEST_RECENT;
                e.count = (*count).into();
            }
        }
        e
    }
}

impl RequestElement {
    /// The tag (any value is one).
    pub fn tag(&self) -> u64 {
        self.tag.get()
    }

    /// The request, if the element is a valid one (module documentation).
    pub fn decode(&self) -> Result<Request, WireError> {
        zero(&self.reserved, Field::Reserved)?;
        match self.kind {
            REQUEST_APPEND => {
                zero(self.count.as_bytes(), Field::Count)?;
                zero(self.sequence.as_bytes(), Field::Sequence)?;
                Entry::read(&self.name, self.name_len, &self.text, self.text_len.get())
                    .map(Request::Append)
            }
            REQUEST_READ | REQUEST_RECENT => {
                zero(&[self.name_len], Field::Name)?;
                zero(&self.name, Field::Name)?;
                zero(self.text_len.as_bytes(), Field::Text)?;
                zero(&self.text, Field::Text)?;
                if self.kind == REQUEST_READ {
                    zero(self.count.as_bytes(), Field::Count)?;
                    match self.sequence.get() {
                        0 => Err(WireError::Range(Field::Sequence)),
                        sequence => Ok(Request::Read { sequence }),
                    }
                } else {
                    zero(self.sequence.as_bytes(), Field::Sequence)?;
                    match self.count.get() {
                        count @ 1..=RECENT_MAX => Ok(Request::Recent { count }),
                        _ => Err(WireError::Range(Field::Count)),
                    }
                }
            }
            kind => Err(WireError::Kind(kind)),
        }
    }
}

/// Why vault refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The request element is not a valid request ([`WireError`]).
    Malformed,
    /// The book is full.
    Full,
    /// The book has a damaged record with valid ones after it: it takes no new entries
    /// until it is repaired.
    NeedsRepair,
    /// The entry's record is damaged (or not an entry).
    Damaged,
    /// The disk failed.
    Storage,
}

impl Refusal {
    const ALL: [Refusal; 5] = [
        Refusal::Malformed,
        Refusal::Full,
        Refusal::NeedsRepair,
        Refusal::Damaged,
        Refusal::Storage,
    ];

    fn code(self) -> u8 {
        match self {
            Refusal::Malformed => 1,
            Refusal::Full => 2,
            Refusal::NeedsRepair => 3,
            Refusal::Damaged => 4,
            Refusal::Storage => 5,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Malformed => "malformed request",
            Refusal::Full => "the book is full",
            Refusal::NeedsRepair => "the book needs repair",
            Refusal::Damaged => "the entry is damaged",
            Refusal::Storage => "the disk failed",
        })
    }
}

/// What vault answers.
#[allow(clippy::large_enum_variant)] // no heap, as `Request`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The entry was appended as number `sequence`.
    Appended {
        /// Its number.
        sequence: u64,
        /// Entries in the book now.
        total: u64,
    },
    /// One entry of a `Read` or `Recent` answer.
    Entry {
        /// Its number.
        sequence: u64,
        /// Entries in the book.
        total: u64,
        /// Whether it is the last element of the answer.
        last: bool,
        /// The entry.
        entry: Entry,
    },
    /// The book has no entry `sequence` (a `Read`), or no entries at all (a
    /// `Recent`, `sequence` 0).
    Missing {
        /// The number asked for (0: a `Recent`).
        sequence: u64,
        /// Entries in the book.
        total: u64,
    },
    /// The request was refused.
    Refused(Refusal),
}

const RESPONSE_APPENDED: u8 = 1;
const RESPONSE_ENTRY: u8 = 2;
const RESPONSE_MISSING: u8 = 3;
const RESPONSE_REFUSED: u8 = 4;

impl Response {
    /// The response as an element with `tag`.
    pub fn encode(&self, tag: u64) -> ResponseElement {
        let mut e = ResponseElement::new_zeroed();
        e.tag = tag.into();
        match self {
            Response::Appended { sequence, total } => {
                e.kind = RESPONSE_APPENDED;
                e.sequence = (*sequence).into();
                e.total = (*total).into();
            }
            Response::Entry {
                sequence,
                total,
                last,
                entry,
            } => {
                e.kind = RESPONSE_ENTRY;
                e.sequence = (*sequence).into();
                e.total = (*total).into();
                e.detail = u8::from(*last);
                let (n, t) = entry.write(&mut e.name, &mut e.text);
                e.name_len = n;
                e.text_len = t.into();
            }
            Response::Missing { sequence, total } => {
                e.kind = RESPONSE_MISSING;
                e.sequence = (*sequence).into();
                e.total = (*total).into();
            }
            Response::Refused(reason) => {
                e.kind = RESPONSE_REFUSED;
                e.detail = reason.code();
            }
        }
        e
    }

    /// Whether this is the last element of its answer (every response but an `Entry`
    /// that is not).
    pub fn is_last(&self) -> bool {
        !matches!(self, Response::Entry { last: false, .. })
    }
}

impl ResponseElement {
    /// The tag (any value is one).
    pub fn tag(&self) -> u64 {
        self.tag.get()
    }

    /// The response, if the element is a valid one (module documentation).
    pub fn decode(&self) -> Result<Response, WireError> {
        zero(&self.reserved, Field::Reserved)?;
        let (sequence, total) = (self.sequence.get(), self.total.get());
        let no_entry = || -> Result<(), WireError> {
            zero(&[self.name_len], Field::Name)?;
            zero(&self.name, Field::Name)?;
            zero(self.text_len.as_bytes(), Field::Text)?;
            zero(&self.text, Field::Text)
        };
        let numbered = || -> Result<(), WireError> {
            if sequence == 0 {
                return Err(WireError::Range(Field::Sequence));
            }
            if total < sequence {
                return Err(WireError::Range(Field::Total));
            }
            Ok(())
        };
        match self.kind {
            RESPONSE_APPENDED => {
                no_entry()?;
                zero(&[self.detail], Field::Detail)?;
                numbered()?;
                Ok(Response::Appended { sequence, total })
            }
            RESPONSE_ENTRY => {
                numbered()?;
                let last = match self.detail {
                    0 => false,
                    1 => true,
                    _ => return Err(WireError::Range(Field::Detail)),
                };
                let entry =
                    Entry::read(&self.name, self.name_len, &self.text, self.text_len.get())?;
                Ok(Response::Entry {
                    sequence,
                    total,
                    last,
                    entry,
                })
            }
            RESPONSE_MISSING => {
                no_entry()?;
                zero(&[self.detail], Field::Detail)?;
                Ok(Response::Missing { sequence, total })
            }
            RESPONSE_REFUSED => {
                no_entry()?;
                zero(self.sequence.as_bytes(), Field::Sequence)?;
                zero(self.total.as_bytes(), Field::Total)?;
                Refusal::ALL
                    .into_iter()
                    .find(|r| r.code() == self.detail)
                    .map(Response::Refused)
                    .ok_or(WireError::Range(Field::Detail))
            }
            kind => Err(WireError::Kind(kind)),
        }
    }
}

#[cfg(test)]
mod tests;
