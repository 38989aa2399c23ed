//! What the integration tests share: Muen's test pages and policy, and the accessor
//! workout that the property tests and the fuzz target run on every accepted page.

#![allow(dead_code)]

pub mod exercise;

use muen_sinfo::layout::PAGE_SIZE;

// Embedded at compile time (not read at run time) so that the tests also run under Miri,
// which has no file system access. The array type checks each page's size.

/// The page Muen's generator writes for subject `lnx` of `test_policy.xml`.
pub const LNX_SINFO: &[u8; PAGE_SIZE] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/testdata/sinfo-v4/lnx_sinfo"
));
/// Muen's serializer test page: ten empty records.
pub const NULL_INFO: &[u8; PAGE_SIZE] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/testdata/sinfo-v4/null_info"
));
/// Muen's serializer test page: ten empty records, then an event and a vector.
pub const SUBJECT_INFO: &[u8; PAGE_SIZE] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/testdata/sinfo-v4/subject_info"
));
/// The policy `lnx_sinfo` was generated from.
pub const TEST_POLICY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/testdata/sinfo-v4/test_policy.xml"
));

/// All three pages with their file names.
pub const PAGES: [(&str, &[u8; PAGE_SIZE]); 3] = [
    ("lnx_sinfo", LNX_SINFO),
    ("null_info", NULL_INFO),
    ("subject_info", SUBJECT_INFO),
];

/// Decodes a hex string (two digits per byte).
pub fn hex(text: &str) -> Vec<u8> {
    assert_eq!(text.len() % 2, 0, "odd hex string {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}
