//! Thread-local storage for the unikernel's threads, as Solo5 lays it out on x86-64.
//!
//! x86-64 uses TLS variant II: the block is `.tdata` (copied from the image), then
//! `.tbss` (zeros), then the thread pointer, a word that holds its own address; FS base
//! points at it and `%fs:-n` reaches the variables below it. Solo5's linker script
//! gives the image's `.tdata` at `_stdata`, and the sizes as the values of the symbols
//! `_ltdata` and `_ltbss`. So, as Solo5's bindings compute it:
//!
//! - `solo5_tls_size()` = `_ltdata + _ltbss + 8`;
//! - `solo5_tls_tp_offset(tls)` = `tls + _ltdata + _ltbss`;
//! - `solo5_tls_init(tls)` copies `.tdata` to `tls` and writes the thread pointer;
//!   `tls` 0 is `SOLO5_R_EINVAL`. This crate also zeroes `.tbss` (Solo5 leaves it to
//!   the caller, who allocated the block with `calloc`);
//! - `solo5_set_tls_base(base)` writes FS base (`wrmsr` IA32_FS_BASE). A
//!   non-canonical address, which would raise #GP, is `SOLO5_R_EINVAL` here
//!   ([`is_canonical`]).

use solo5_abi::Solo5Result;

/// Size of the thread control block: the thread pointer word.
pub const TCB_SIZE: u64 = 8;

/// The image's TLS template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsLayout {
    /// Address of `.tdata` in the image (`_stdata`).
    pub tdata: u64,
    /// Size of `.tdata` (`_ltdata`).
    pub tdata_len: u64,
    /// Size of `.tbss` (`_ltbss`).
    pub tbss_len: u64,
}

impl TlsLayout {
    /// Bytes a TLS block needs (`solo5_tls_size`).
    pub const fn size(&self) -> u64 {
        self.tdata_len + self.tbss_len + TCB_SIZE
    }

    /// The thread pointer of the block at `tls` (`solo5_tls_tp_offset`); wraps as the
    /// C computation does.
    pub const fn tp_offset(&self, tls: u64) -> u64 {
        tls.wrapping_add(self.tdata_len).wrapping_add(self.tbss_len)
    }

    /// Initialises the TLS block at `tls` (`solo5_tls_init`): `.tdata` copied, `.tbss`
    /// zeroed, the thread pointer written. `tls` 0 is [`Solo5Result::Einval`].
    ///
    /// # Safety
    ///
    /// `tls` is 0 or points to [`size`](Self::size) writable bytes that nothing else
    /// accesses meanwhile, and `tdata` points to `tdata_len` readable bytes that do not
    /// overlap them.
    pub unsafe fn init(&self, tls: u64) -> Result<(), Solo5Result> {
        if tls == 0 {
            return Err(Solo5Result::Einval);
        }
        let block = tls as usize as *mut u8;
        let (tdata, tbss) = (self.tdata_len as usize, self.tbss_len as usize);
        // SAFETY: the block has size() = tdata + tbss + 8 writable bytes and `tdata`
        // tdata_len readable ones, not overlapping (contract); the thread pointer word
        // may be unaligned, so it is written unaligned.
        unsafe {
            core::ptr::copy_nonoverlapping(self.tdata as usize as *const u8, block, tdata);
            core::ptr::write_bytes(block.add(tdata), 0, tbss);
            let tp = self.tp_offset(tls);
            (tp as usize as *mut u64).write_unaligned(tp);
        }
        Ok(())
    }
}

/// Whether `address` is canonical for 48-bit virtual addresses (bits 63..=47 all equal),
/// which a base register must be.
pub const fn is_canonical(address: u64) -> bool {
    let top = address >> 47;
    top == 0 || top == (1 << 17) - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_block_is_tdata_tbss_then_the_thread_pointer() {
        let tdata: Vec<u8> = (1..=24).collect();
        let layout = TlsLayout {
            tdata: tdata.as_ptr() as u64,
            tdata_len: 24,
            tbss_len: 16,
        };
        assert_eq!(layout.size(), 48);
        let mut block = vec![0xeeu8; 48 + 3];
        // An unaligned block works, too.
        let tls = block.as_mut_ptr() as u64 + 3;
        assert_eq!(layout.tp_offset(tls), tls + 40);
        // SAFETY: 48 writable bytes at `tls`, tdata readable, no overlap.
        unsafe { layout.init(tls) }.unwrap();
        assert_eq!(&block[3..27], &tdata[..]);
        assert_eq!(&block[27..43], &[0; 16], ".tbss zeroed");
        assert_eq!(
            block[43..51],
            (tls + 40).to_le_bytes(),
            "tp holds its address"
        );
        assert_eq!(&block[..3], &[0xee; 3], "nothing before the block");
    }

    #[test]
    fn an_image_without_tls_has_just_the_thread_pointer() {
        let layout = TlsLayout {
            tdata: 0,
            tdata_len: 0,
            tbss_len: 0,
        };
        assert_eq!(layout.size(), 8);
        let mut word = [0u64; 1];
        let tls = word.as_mut_ptr() as u64;
        assert_eq!(layout.tp_offset(tls), tls);
        // SAFETY: 8 writable bytes; nothing is copied.
        unsafe { layout.init(tls) }.unwrap();
        assert_eq!(word[0], tls);
        // SAFETY: tls 0 is refused before anything is written.
        assert_eq!(unsafe { layout.init(0) }, Err(Solo5Result::Einval));
    }

    #[test]
    fn canonical_addresses() {
        for ok in [
            0,
            0x20_0000,
            0x7fff_ffff_ffff,
            0xffff_8000_0000_0000,
            u64::MAX,
        ] {
            assert!(is_canonical(ok), "{ok:#x}");
        }
        for bad in [0x8000_0000_0000, 0x1_0000_0000_0000, 0xffff_7fff_ffff_ffff] {
            assert!(!is_canonical(bad), "{bad:#x}");
        }
    }

    proptest! {
        #[test]
        fn tp_offset_is_the_end_of_the_variables(
            tls in any::<u64>(), tdata_len in 0u64..0x10_0000, tbss_len in 0u64..0x10_0000,
        ) {
            let layout = TlsLayout { tdata: 0, tdata_len, tbss_len };
            prop_assert_eq!(layout.tp_offset(tls), tls.wrapping_add(tdata_len + tbss_len));
            prop_assert_eq!(layout.size(), tdata_len + tbss_len + 8);
        }
    }
}
