//! The body of `POST /entries`: an HTML form (`application/x-www-form-urlencoded`)
//! with the fields `name` and `text`, as `curl -d name=ann -d text=hello` or
//! `curl --data-urlencode ...` send it.
//!
//! Fields are `key=value` pairs separated by `&`; in both, `+` is a space and `%XX` a
//! byte in hex. Other fields are ignored (browsers add their submit button's); a
//! field given twice, a `%` without two hex digits, or a value longer than the entry
//! allows is an error. The decoded values must make an [`Entry`] (UTF-8, no control
//! characters, lengths in range). Never panics, whatever the body holds.

use core::fmt;

use vault::wire::{Entry, WireError, NAME_MAX, TEXT_MAX};

/// Why a form is not an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormError {
    /// A field the entry needs is missing.
    Missing(&'static str),
    /// A field is given twice.
    Twice(&'static str),
    /// A `%` not followed by two hex digits.
    Encoding,
    /// A field's value is longer than the entry allows (in bytes, decoded).
    TooLong(&'static str),
    /// The values are no entry (not UTF-8, a control character, empty).
    Entry(WireError),
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::Missing(field) => write!(f, "the form has no `{field}`"),
            FormError::Twice(field) => write!(f, "the form has `{field}` twice"),
            FormError::Encoding => f.write_str("a `%` without two hex digits"),
            FormError::TooLong(field) => {
                let max = if *field == "name" { NAME_MAX } else { TEXT_MAX };
                write!(f, "`{field}` is longer than {max} bytes")
            }
            FormError::Entry(e) => e.fmt(f),
        }
    }
}

/// A decoded value: at most `N` bytes.
struct Value<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

/// Decodes `raw` (`+` and `%XX`) into at most `N` bytes; `None` if it is longer.
fn decode<const N: usize>(raw: &[u8]) -> Result<Option<Value<N>>, FormError> {
    let mut out = Value {
        bytes: [0; N],
        len: 0,
    };
    let mut i = 0;
    while i < raw.len() {
        let byte = match raw[i] {
            b'+' => b' ',
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16);
                let (Some(&h), Some(&l)) = (raw.get(i + 1), raw.get(i + 2)) else {
                    return Err(FormError::Encoding);
                };
                let (Some(h), Some(l)) = (hex(h), hex(l)) else {
                    return Err(FormError::Encoding);
                };
                i += 2;
                (h * 16 + l) as u8
            }
            b => b,
        };
        let Some(slot) = out.bytes.get_mut(out.len) else {
            return Ok(None);
        };
        *slot = byte;
        out.len += 1;
        i += 1;
    }
    Ok(Some(out))
}

/// The entry the form `body` describes.
pub fn entry(body: &[u8]) -> Result<Entry, FormError> {
    let mut name: Option<Value<NAME_MAX>> = None;
    let mut text: Option<Value<TEXT_MAX>> = None;
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        // Keys are short: decode them into a small buffer (longer ones are no field
        // of ours).
        let Some(key) = decode::<8>(key)? else {
            continue;
        };
        match &key.bytes[..key.len] {
            b"name" if name.is_some() => return Err(FormError::Twice("name")),
            b"name" => name = Some(decode(value)?.ok_or(FormError::TooLong("name"))?),
            b"text" if text.is_some() => return Err(FormError::Twice("text")),
            b"text" => text = Some(decode(value)?.ok_or(FormError::TooLong("text"))?),
            _ => {}
        }
    }
    let name = name.ok_or(FormError::Missing("name"))?;
    let text = text.ok_or(FormError::Missing("text"))?;
    fn utf8(bytes: &[u8], field: vault::wire::Field) -> Result<&str, FormError> {
        core::str::from_utf8(bytes).map_err(|_| FormError::Entry(WireError::NotUtf8(field)))
    }
    Entry::new(
        utf8(&name.bytes[..name.len], vault::wire::Field::Name)?,
        utf8(&text.bytes[..text.len], vault::wire::Field::Text)?,
    )
    .map_err(FormError::Entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vault::wire::Field;

    #[test]
    fn forms_decode_into_entries() {
        let e = entry(b"name=ann&text=hello+world").unwrap();
        assert_eq!((e.name(), e.text()), ("ann", "hello world"));
        let e = entry(b"submit=Sign&text=caf%C3%A9+%26+more%21&name=B%c3%A9a&").unwrap();
        assert_eq!((e.name(), e.text()), ("Béa", "café & more!"));
        // The longest values fit.
        let long = format!(
            "name={}&text={}",
            "n".repeat(NAME_MAX),
            "t".repeat(TEXT_MAX)
        );
        assert!(entry(long.as_bytes()).is_ok());
    }

    #[test]
    fn bad_forms_say_why() {
        assert_eq!(entry(b"text=x"), Err(FormError::Missing("name")));
        assert_eq!(entry(b"name=x"), Err(FormError::Missing("text")));
        assert_eq!(entry(b""), Err(FormError::Missing("name")));
        assert_eq!(
            entry(b"name=a&name=b&text=c"),
            Err(FormError::Twice("name"))
        );
        for bad in [&b"name=%&text=x"[..], b"name=%4&text=x", b"name=%zz&text=x"] {
            assert_eq!(entry(bad), Err(FormError::Encoding), "{bad:?}");
        }
        let long = format!("name={}&text=x", "n".repeat(NAME_MAX + 1));
        assert_eq!(entry(long.as_bytes()), Err(FormError::TooLong("name")));
        assert_eq!(
            entry(b"name=a&text=line%0Abreak"),
            Err(FormError::Entry(WireError::Control(Field::Text)))
        );
        assert_eq!(
            entry(b"name=%FF&text=x"),
            Err(FormError::Entry(WireError::NotUtf8(Field::Name)))
        );
        assert_eq!(
            entry(b"name=&text=x"),
            Err(FormError::Entry(WireError::Length {
                field: Field::Name,
                length: 0
            }))
        );
        assert_eq!(
            FormError::TooLong("text").to_string(),
            "`text` is longer than 448 bytes"
        );
    }

    proptest! {
        /// Any body: an entry or an error, never a panic; an entry's values are
        /// what a form of them encodes.
        #[test]
        fn any_body_is_an_entry_or_an_error(body in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(e) = entry(&body) {
                let again = format!("name={}&text={}", percent(e.name()), percent(e.text()));
                prop_assert_eq!(entry(again.as_bytes()), Ok(e));
            }
        }

        #[test]
        fn encoded_entries_come_back(name in "[^\\p{Cc}]{1,8}", text in "[^\\p{Cc}]{1,100}") {
            prop_assume!(name.len() <= NAME_MAX && text.len() <= TEXT_MAX);
            let body = format!("name={}&text={}", percent(&name), percent(&text));
            let e = entry(body.as_bytes()).unwrap();
            prop_assert_eq!((e.name(), e.text()), (name.as_str(), text.as_str()));
        }
    }

    /// Every byte as `%XX`.
    fn percent(s: &str) -> String {
        s.bytes().map(|b| format!("%{b:02X}")).collect()
    }
}
