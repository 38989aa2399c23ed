//! Test data that tells its origin: every frame and every block the suites write is
//! different, so a frame or block returned in the wrong place is noticed.

/// A 64-bit mix (SplitMix64's finaliser).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Fills `out` with bytes derived from `seed`.
pub fn fill(out: &mut [u8], seed: u64) {
    let mut state = mix(seed);
    for chunk in out.chunks_mut(8) {
        state = mix(state);
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
}

/// A frame of `len` bytes, different for every `id`.
pub fn frame(len: usize, id: u64) -> Vec<u8> {
    let mut f = vec![0u8; len];
    fill(&mut f, id ^ ((len as u64) << 40));
    f
}

/// The contents of block `block` (of `block_size` bytes) written with `tag`: different
/// for every pair, and never all zeros.
pub fn block(block_size: u64, tag: u64, block: u64) -> Vec<u8> {
    let mut b = vec![0u8; block_size as usize];
    fill(&mut b, mix(tag) ^ block);
    b[0] |= 1;
    b
}

/// The contents of `count` blocks from `first`, written with `tag`.
pub fn blocks(block_size: u64, tag: u64, first: u64, count: u64) -> Vec<u8> {
    (first..first + count)
        .flat_map(|b| block(block_size, tag, b))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_differ() {
        assert_ne!(frame(60, 1), frame(60, 2));
        assert_eq!(frame(60, 1), frame(60, 1));
        assert_ne!(block(512, 1, 0), block(512, 1, 1));
        assert_ne!(block(512, 1, 0), block(512, 2, 0));
        assert!(block(512, 3, 4).iter().any(|&b| b != 0));
        assert_eq!(blocks(512, 5, 2, 3).len(), 1536);
        assert_eq!(&blocks(512, 5, 2, 3)[512..1024], &block(512, 5, 3)[..]);
    }
}
