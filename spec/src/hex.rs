//! Numbers in the forms Muen's schemas use: `16#…#` (hexadecimal, `_` between groups)
//! and plain decimal digits.

/// A 64-bit value as Muen's `word64Type`: `16#`, groups of exactly four lowercase hex
/// digits joined by `_` (left-padded to whole groups), `#`. Zero is `16#0000#`.
pub fn word64(value: u64) -> String {
    let digits = format!("{value:x}");
    let padded = format!("{digits:0>width$}", width = digits.len().div_ceil(4) * 4);
    let groups: Vec<&str> = padded
        .as_bytes()
        .chunks(4)
        // The digits are ASCII, so every chunk is valid UTF-8.
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!("16#{}#", groups.join("_"))
}

/// A byte as Muen's `byteType`: `16#` and exactly two hex digits, `#`.
pub fn byte(value: u8) -> String {
    format!("16#{value:02x}#")
}

/// A SHA-256 digest as Muen's `hash256DigestType`: `16#`, 64 lowercase hex digits, `#`.
pub fn digest(value: &[u8; 32]) -> String {
    let mut out = String::from("16#");
    for b in value {
        out.push_str(&format!("{b:02x}"));
    }
    out.push('#');
    out
}

/// Parses a number as Muen's schemas write them: `16#0010_0000#` (hexadecimal) or
/// decimal digits, with optional `_` separators between digits.
pub fn parse_number(text: &str) -> Option<u64> {
    let (digits, radix) = match text.strip_prefix("16#") {
        Some(rest) => (rest.strip_suffix('#')?, 16),
        None => (text, 10),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(&clean, radix).ok()
}

/// Parses a SHA-256 digest: `16#`, 64 hex digits (`_` between them is tolerated), `#`.
pub fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let hex = text
        .strip_prefix("16#")
        .and_then(|t| t.strip_suffix('#'))
        .map(|t| t.replace('_', ""))
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))?;
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word64_groups_of_four() {
        assert_eq!(word64(0), "16#0000#");
        assert_eq!(word64(0x8), "16#0008#");
        assert_eq!(word64(0x1000), "16#1000#");
        assert_eq!(word64(0x1_0000), "16#0001_0000#");
        assert_eq!(word64(0x20_0000), "16#0020_0000#");
        assert_eq!(word64(0x4000_0000), "16#4000_0000#");
        assert_eq!(word64(0x43ff_fff8), "16#43ff_fff8#");
        assert_eq!(word64(0x10_0000_0000), "16#0010_0000_0000#");
        assert_eq!(word64(u64::MAX), "16#ffff_ffff_ffff_ffff#");
    }

    #[test]
    fn word64_matches_the_schema_pattern() {
        // 16#[0-9a-fA-F]{4}(_([0-9a-fA-F]{4})){0,3}#
        for shift in 0..64 {
            for v in [1u64 << shift, (1u64 << shift) - 1, (1u64 << shift) + 0xabc] {
                let s = word64(v);
                let inner = s
                    .strip_prefix("16#")
                    .and_then(|s| s.strip_suffix('#'))
                    .unwrap();
                let groups: Vec<&str> = inner.split('_').collect();
                assert!((1..=4).contains(&groups.len()), "{s}");
                for g in groups {
                    assert_eq!(g.len(), 4, "{s}");
                    assert!(g.bytes().all(|b| b.is_ascii_hexdigit()), "{s}");
                }
                assert_eq!(u64::from_str_radix(&inner.replace('_', ""), 16).unwrap(), v);
                assert_eq!(parse_number(&s), Some(v));
            }
        }
    }

    #[test]
    fn bytes() {
        assert_eq!(byte(0), "16#00#");
        assert_eq!(byte(0xff), "16#ff#");
        assert_eq!(parse_number(&byte(0xab)), Some(0xab));
    }

    #[test]
    fn numbers_in_muen_format() {
        assert_eq!(parse_number("16#0010_0000#"), Some(0x10_0000));
        assert_eq!(parse_number("16#ff#"), Some(255));
        assert_eq!(parse_number("42"), Some(42));
        assert_eq!(parse_number("1_000"), Some(1000));
        for bad in [
            "", "16#", "16##", "16#fg#", "0x10", "16#10", "-1", "_1", "1_",
        ] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
        assert_eq!(parse_number("16#1_0000_0000_0000_0000#"), None);
    }

    #[test]
    fn digests_round_trip() {
        let d: [u8; 32] = std::array::from_fn(|i| (i * 7) as u8);
        let s = digest(&d);
        assert_eq!(s.len(), 3 + 64 + 1);
        assert_eq!(parse_digest(&s), Some(d));
        assert_eq!(
            parse_digest(
                "16#00010203_04050607_08090a0b_0c0d0e0f_10111213_14151617_18191a1b_1c1d1e1f#"
            ),
            Some(std::array::from_fn(|i| i as u8))
        );
        for bad in ["none", "16#00#", &s[..s.len() - 1], &s.replace('0', "g")] {
            assert_eq!(parse_digest(bad), None, "{bad}");
        }
    }
}
