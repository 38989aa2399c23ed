//! Sizes as written in a manifest: integer bytes or digits with a K/M/G suffix.

use std::string::{String, ToString};

use crate::error::SizeError;
use muen_abi::layout::PAGE_SIZE;

/// A size as written: an integer, or a string such as `"64M"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawSize {
    /// An integer number of bytes.
    Bytes(i64),
    /// A string: digits with an optional `K`, `M` or `G` suffix (powers of 1024).
    Text(String),
}

impl RawSize {
    /// The number of bytes, checked: not negative, not zero, a multiple of the page size,
    /// and at most `u64::MAX`.
    pub fn bytes(&self) -> Result<u64, SizeError> {
        let bytes = match self {
            RawSize::Bytes(value) => {
                u64::try_from(*value).map_err(|_| SizeError::Negative { value: *value })?
            }
            RawSize::Text(text) => parse(text)?,
        };
        check(bytes)
    }
}

/// Parses digits with an optional `K`, `M` or `G` suffix (powers of 1024).
pub fn parse(text: &str) -> Result<u64, SizeError> {
    let format = || SizeError::Format {
        text: text.to_string(),
    };
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'K') => (&text[..text.len() - 1], 10),
        Some(b'M') => (&text[..text.len() - 1], 20),
        Some(b'G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format());
    }
    let overflow = || SizeError::Overflow {
        text: text.to_string(),
    };
    let value: u64 = digits.parse().map_err(|_| overflow())?;
    value.checked_mul(1 << shift).ok_or_else(overflow)
}

/// Checks that `bytes` is a non-zero multiple of the page size.
pub fn check(bytes: u64) -> Result<u64, SizeError> {
    if bytes == 0 {
        Err(SizeError::Zero)
    } else if bytes % PAGE_SIZE != 0 {
        Err(SizeError::Unaligned { bytes })
    } else {
        Ok(bytes)
    }
}

impl<'de> serde::Deserialize<'de> for RawSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawSize;

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a size (an integer number of bytes, or a string like \"64M\")")
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(v))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawSize, E> {
                // TOML integers are i64; larger values only come from other formats.
                i64::try_from(v)
                    .map(RawSize::Bytes)
                    .or(Ok(RawSize::Text(v.to_string())))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_powers_of_1024() {
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("4K"), Ok(4096));
        assert_eq!(parse("64M"), Ok(64 << 20));
        assert_eq!(parse("2G"), Ok(2 << 30));
        assert_eq!(parse("0"), Ok(0));
    }

    #[test]
    fn rejects_malformed_text() {
        for text in [
            "", "M", "1.5M", "64m", "64 M", " 64M", "64MB", "0x1000", "-1", "1_000",
        ] {
            assert_eq!(
                parse(text),
                Err(SizeError::Format { text: text.into() }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn rejects_overflow() {
        // 2^34 G = 2^64 bytes: one too many.
        assert!(matches!(
            parse("17179869184G"),
            Err(SizeError::Overflow { .. })
        ));
        assert_eq!(parse("17179869183G"), Ok(u64::MAX - (1 << 30) + 1));
        assert!(matches!(
            parse("99999999999999999999"),
            Err(SizeError::Overflow { .. })
        ));
        assert_eq!(parse("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn checks_zero_alignment_and_sign() {
        assert_eq!(RawSize::Bytes(0).bytes(), Err(SizeError::Zero));
        assert_eq!(RawSize::Text("0K".into()).bytes(), Err(SizeError::Zero));
        assert_eq!(
            RawSize::Bytes(4097).bytes(),
            Err(SizeError::Unaligned { bytes: 4097 })
        );
        assert_eq!(
            RawSize::Text("1K".into()).bytes(),
            Err(SizeError::Unaligned { bytes: 1024 })
        );
        assert_eq!(
            RawSize::Bytes(-4096).bytes(),
            Err(SizeError::Negative { value: -4096 })
        );
        assert_eq!(RawSize::Text("16M".into()).bytes(), Ok(16 << 20));
        assert_eq!(RawSize::Bytes(8192).bytes(), Ok(8192));
    }
}
