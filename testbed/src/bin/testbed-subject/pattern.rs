//! The data the block modes write; the integration tests include this file to check
//! an image from outside.

/// Byte `i` of sector `sector` for `seed`.
pub fn pattern(seed: u64, sector: u64, i: usize) -> u8 {
    let x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ sector.wrapping_mul(0x0100_0000_01b3)
        ^ (i as u64 / 8).wrapping_mul(0xff51_afd7_ed55_8ccd);
    x.to_le_bytes()[i % 8]
}
