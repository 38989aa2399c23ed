//! Addresses as types: a subject's virtual addresses and guest physical addresses are
//! both 64-bit numbers, and mixing them up is an easy mistake where both occur (the
//! testbed's QEMU boot stage maps one to the other). Sizes stay plain `u64` byte counts.

use core::fmt;
use core::ops::{Add, Sub};

/// The size of a page; every region address and size of a subject is a multiple of it.
pub const PAGE_SIZE: u64 = 0x1000;

macro_rules! address {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(transparent)]
        pub struct $name(u64);

        impl $name {
            /// Address 0.
            pub const ZERO: $name = $name(0);

            #[doc = concat!("The ", $what, " `address`.")]
            pub const fn new(address: u64) -> Self {
                $name(address)
            }

            /// The address as a number.
            pub const fn as_u64(self) -> u64 {
                self.0
            }

            /// The address `bytes` further on, `None` on overflow.
            pub const fn checked_add(self, bytes: u64) -> Option<Self> {
                match self.0.checked_add(bytes) {
                    Some(a) => Some($name(a)),
                    None => None,
                }
            }

            /// The number of bytes from `base` up to `self`, `None` if `self` is below
            /// `base`.
            pub const fn checked_offset_from(self, base: Self) -> Option<u64> {
                self.0.checked_sub(base.0)
            }

            /// Whether the address is a multiple of `align` (a power of two).
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align.wrapping_sub(1)) == 0
            }

            /// Whether the address is a multiple of [`PAGE_SIZE`].
            pub const fn is_page_aligned(self) -> bool {
                self.is_aligned(PAGE_SIZE)
            }

            /// The address rounded down to a multiple of `align` (a power of two).
            pub const fn align_down(self, align: u64) -> Self {
                $name(self.0 & !(align.wrapping_sub(1)))
            }
        }

        /// `address + bytes`; overflows as `u64` arithmetic does (a panic in debug
        /// builds): use [`checked_add`](Self::checked_add) for untrusted values.
        impl Add<u64> for $name {
            type Output = $name;
            fn add(self, bytes: u64) -> $name {
                $name(self.0 + bytes)
            }
        }

        /// `address - bytes`; overflows as `u64` arithmetic does.
        impl Sub<u64> for $name {
            type Output = $name;
            fn sub(self, bytes: u64) -> $name {
                $name(self.0 - bytes)
            }
        }

        /// The bytes from `base` up to `self`; overflows as `u64` arithmetic does: use
        /// [`checked_offset_from`](Self::checked_offset_from) where `self` may be lower.
        impl Sub<$name> for $name {
            type Output = u64;
            fn sub(self, base: $name) -> u64 {
                self.0 - base.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

address!(
    /// A virtual address in a subject's address space, as the policy's
    /// `virtualAddress` attributes state it.
    VirtAddr,
    "virtual address"
);

address!(
    /// A guest physical address. On Muen these are the kernel's business; the
    /// testbed's QEMU mode has them (memory file offset = guest physical address).
    PhysAddr,
    "physical address"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_alignment() {
        let a = VirtAddr::new(0x20_1234);
        assert_eq!(a.align_down(PAGE_SIZE), VirtAddr::new(0x20_1000));
        assert!(!a.is_page_aligned());
        assert!(VirtAddr::new(0x20_0000).is_page_aligned());
        assert_eq!(a.checked_add(0x10), Some(VirtAddr::new(0x20_1244)));
        assert_eq!(a + 0x10, VirtAddr::new(0x20_1244));
        assert_eq!(a - 0x234, VirtAddr::new(0x20_1000));
        assert_eq!(a - VirtAddr::new(0x20_0000), 0x1234);
        assert_eq!(VirtAddr::new(u64::MAX).checked_add(1), None);
        assert_eq!(
            a.checked_offset_from(VirtAddr::new(0x20_0000)),
            Some(0x1234)
        );
        assert_eq!(VirtAddr::new(1).checked_offset_from(a), None);
        extern crate std;
        assert_eq!(
            std::format!("{a} {a:?} {a:x}"),
            "0x201234 VirtAddr(0x201234) 201234"
        );
        assert_eq!(std::format!("{:?}", PhysAddr::new(0x10)), "PhysAddr(0x10)");
    }
}
