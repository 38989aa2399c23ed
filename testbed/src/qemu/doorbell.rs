//! The doorbell: the byte stream the guest writes to I/O port
//! [`DOORBELL_PORT`](muen_testbed_abi::qemu::DOORBELL_PORT), which QEMU's `isa-debugcon` device
//! hands to the testbed through a socket.
//!
//! | bytes | from | meaning |
//! |-------|------|---------|
//! | `0x00..=0x3f` | the runtime's event stub | the subject triggered that event |
//! | `0x40 c` | the runtime's exit stub | the subject exits with code `c` |
//! | `0x41 t0..t7` | the boot stage | about to start the subject; guest TSC (little-endian) |
//! | `0x42 text.. 0x0a` | the boot stage | a line of text (why it cannot boot) |
//! | `0x43` | the runtime's halt stub | the subject read the wake-up UART and halts |
//!
//! The guest is not trusted: any other byte is reported as [`Bell::Malformed`] and the
//! parser carries on with the next byte; text is cut at [`TEXT_MAX`] bytes and shown
//! with its control characters escaped.

use muen_testbed_abi::qemu::{
    DOORBELL_EVENT_MAX, DOORBELL_EXIT, DOORBELL_HALT, DOORBELL_STARTED, DOORBELL_TEXT,
};

/// The longest boot stage line kept; the rest of a longer line is dropped.
pub const TEXT_MAX: usize = 512;

/// One message from the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bell {
    /// The subject triggered this event.
    Event(u8),
    /// The subject exits with this code.
    Exit(u8),
    /// The boot stage starts the subject; the guest's TSC at that moment.
    Started(u64),
    /// A line from the boot stage (control characters escaped).
    Text(String),
    /// The subject halts (it read the wake-up UART first).
    Halt,
    /// A byte that starts no message.
    Malformed(u8),
}

#[derive(Clone, Debug, Default)]
enum State {
    #[default]
    Idle,
    Exit,
    Started {
        bytes: [u8; 8],
        have: usize,
    },
    Text(Vec<u8>),
}

/// Turns doorbell bytes into [`Bell`]s.
#[derive(Clone, Debug, Default)]
pub struct Doorbell {
    state: State,
}

impl Doorbell {
    /// A parser expecting the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one byte; returns the message it completes, if any.
    pub fn push(&mut self, byte: u8) -> Option<Bell> {
        match &mut self.state {
            State::Idle => match byte {
                0..=DOORBELL_EVENT_MAX => Some(Bell::Event(byte)),
                DOORBELL_EXIT => {
                    self.state = State::Exit;
                    None
                }
                DOORBELL_STARTED => {
                    self.state = State::Started {
                        bytes: [0; 8],
                        have: 0,
                    };
                    None
                }
                DOORBELL_TEXT => {
                    self.state = State::Text(Vec::new());
                    None
                }
                DOORBELL_HALT => Some(Bell::Halt),
                other => Some(Bell::Malformed(other)),
            },
            State::Exit => {
                self.state = State::Idle;
                Some(Bell::Exit(byte))
            }
            State::Started { bytes, have } => {
                bytes[*have] = byte;
                *have += 1;
                if *have < bytes.len() {
                    return None;
                }
                let tsc = u64::from_le_bytes(*bytes);
                self.state = State::Idle;
                Some(Bell::Started(tsc))
            }
            State::Text(text) => {
                if byte != b'\n' {
                    if text.len() < TEXT_MAX {
                        text.push(byte);
                    }
                    return None;
                }
                let line = escape(text);
                self.state = State::Idle;
                Some(Bell::Text(line))
            }
        }
    }

    /// An unfinished message at the end of the stream, as a [`Bell::Text`] for text and
    /// nothing otherwise (a cut-off exit code or TSC carries no information).
    pub fn finish(&mut self) -> Option<Bell> {
        match std::mem::take(&mut self.state) {
            State::Text(text) if !text.is_empty() => Some(Bell::Text(escape(&text))),
            _ => None,
        }
    }
}

/// `bytes` as text, control characters and non-ASCII bytes as `\xNN`.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8]) -> Vec<Bell> {
        let mut d = Doorbell::new();
        let mut out: Vec<Bell> = bytes.iter().filter_map(|&b| d.push(b)).collect();
        out.extend(d.finish());
        out
    }

    #[test]
    fn every_message_kind_is_recognised() {
        let mut bytes = vec![0, 63, 0x41];
        bytes.extend_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
        bytes.extend_from_slice(b"\x42no map\n");
        bytes.extend_from_slice(&[0x40, 0xff, 2, 0x43]);
        assert_eq!(
            all(&bytes),
            [
                Bell::Event(0),
                Bell::Event(63),
                Bell::Started(0x1122_3344_5566_7788),
                Bell::Text("no map".into()),
                Bell::Exit(255),
                Bell::Event(2),
                Bell::Halt,
            ]
        );
    }

    #[test]
    fn bad_bytes_are_reported_and_parsing_goes_on() {
        assert_eq!(
            all(&[0x44, 0xff, 5, 0x40]),
            [Bell::Malformed(0x44), Bell::Malformed(0xff), Bell::Event(5)]
        );
        // Text is escaped, bounded and delivered even without its line feed.
        let mut long = vec![0x42];
        long.extend(std::iter::repeat_n(b'a', TEXT_MAX + 100));
        long.extend_from_slice(b"\x1b\n\x42cut");
        let got = all(&long);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Bell::Text("a".repeat(TEXT_MAX)));
        assert_eq!(got[1], Bell::Text("cut".into()));
        assert_eq!(
            all(b"\x42\x1b[0m\xe9\n"),
            [Bell::Text("\\x1b[0m\\xe9".into())]
        );
        // A cut-off TSC or exit code says nothing.
        assert_eq!(all(&[0x41, 1, 2, 3]), []);
    }
}
