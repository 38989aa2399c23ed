//! Numbers in the form Muen's schema requires.

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
            }
        }
    }

    #[test]
    fn bytes() {
        assert_eq!(byte(0), "16#00#");
        assert_eq!(byte(0xff), "16#ff#");
    }
}
