//! A global allocator over the `ram` region (feature `alloc`).
//!
//! The runtime itself never allocates. An application that wants `alloc` enables the
//! feature; before `main` the runtime hands the heap the part of `ram` below the
//! stack: `[ram start, ram end - STACK_RESERVE)`. On Muen the stack starts at the top
//! of `ram` (`muen_abi::layout::stack_top`) and grows down into the reserve; on the
//! hosted platform the stack is the process's own, and the reserve simply stays
//! unused. The allocator is `linked_list_allocator`'s first-fit `LockedHeap`.
//!
//! The global allocator is not installed in this crate's own unit tests (which use
//! `std`'s). Any other test binary that links this crate with `alloc` gets it, and
//! its allocations fail (there is no `ram` region): enable the feature only in
//! subjects.

use linked_list_allocator::LockedHeap;
use muen_abi::names;
use muen_sinfo::{Memory, SubjectInfo};

/// Bytes at the top of `ram` left to the stack.
pub const STACK_RESERVE: u64 = 1 << 20;

#[cfg_attr(not(test), global_allocator)]
static HEAP: LockedHeap = LockedHeap::empty();

/// The heap's range in `ram`: start and size, or `None` if `ram` is missing or not
/// larger than the stack reserve.
pub(crate) fn heap_range(ram: Option<Memory>) -> Option<(u64, u64)> {
    let ram = ram?;
    let size = ram.size.checked_sub(STACK_RESERVE).filter(|&s| s > 0)?;
    ram.end()?;
    Some((ram.address, size))
}

/// Gives the heap its memory.
///
/// # Safety
///
/// Called once; `ram` is mapped writable and nothing else uses its part below the
/// stack reserve.
pub unsafe fn init(info: &SubjectInfo<'_>) {
    if let Some((start, size)) = heap_range(info.memory(names::RAM).filter(Memory::writable)) {
        // SAFETY: the range is mapped, writable and unused (contract).
        unsafe { HEAP.lock().init(start as usize as *mut u8, size as usize) };
    }
}

/// Bytes allocated now.
pub fn used() -> usize {
    HEAP.lock().used()
}

#[cfg(test)]
mod tests {
    use super::*;
    use muen_sinfo::{Content, MemoryFlags, MemoryKind};

    fn ram(size: u64) -> Memory {
        Memory {
            kind: MemoryKind::Subject,
            content: Content::Uninitialized,
            flags: MemoryFlags::WRITABLE,
            pattern: None,
            address: 0x4000_0000,
            size,
            hash: None,
        }
    }

    #[test]
    fn heap_is_ram_below_the_stack_reserve() {
        assert_eq!(
            heap_range(Some(ram(16 << 20))),
            Some((0x4000_0000, (16 << 20) - STACK_RESERVE))
        );
        assert_eq!(heap_range(Some(ram(STACK_RESERVE))), None);
        assert_eq!(heap_range(None), None);
    }
}
