//! The Muen platform: a native subject on `x86_64-unknown-none`.
//!
//! # What the runtime assumes about the CPU
//!
//! Muen starts a native subject (vCPU profile `native`, settings from `policy-gen`) in
//! this state, and the runtime relies on nothing else:
//!
//! - 64-bit mode with paging; the page tables map the policy's regions (the ELF image
//!   at `0x20_0000`, `ram`, the sinfo page, the channels) with the policy's rights;
//! - flat 64-bit segments; whether a GDT, IDT or TSS is present in memory is not
//!   assumed: the runtime loads its own (below);
//! - RIP = `_start` (the first byte of the image, `muen_abi::layout::ENTRY`), RSP from
//!   the policy (`layout::stack_top`: top of `ram` - 8; the runtime realigns it to 16
//!   bytes before the first call, so any value works);
//! - RFLAGS.IF = 0, and no vector is injected while it stays 0;
//! - exceptions are delivered through the subject's own IDT: `policy-gen` clears the
//!   exception masks, so the subject handles them itself;
//! - `rdtsc` does not exit (`RDTSCExiting` 0); `hlt` exits to the kernel, which puts the
//!   subject to sleep until one of its events is pending or its timed event expired
//!   (`HLTExiting` 1 and the `subject_sleep` mapping in the system policy,
//!   `docs/muen.md`); a vector pending at the `hlt` ends the sleep at once;
//! - injected vectors need no end-of-interrupt (native subjects have no local APIC);
//! - no SSE: the `x86_64-unknown-none` target compiles for soft float, so the runtime
//!   never touches CR0/CR4 or saves FPU state.
//!
//! # What the runtime sets up
//!
//! `_start` (in `cpu.rs`) disables interrupts, aligns the stack, zeroes `.bss` and calls
//! the application's entry (`muen_subject_main`, emitted by [`entry!`](crate::entry!)),
//! which calls [`Muen::init`]: a GDT with the selectors Muen's profile uses (code 0x08,
//! data 0x10, TSS 0x18), a TSS whose IST stacks take page faults and double faults (so
//! that a stack overflow is still reported), and an IDT: vectors 0..=31 log the
//! exception and exit, vectors 32..=255 set their bit in [`PENDING`] and return.
//! Interrupts stay disabled except for the `sti; hlt` pair in
//! [`Platform::halt_unless`], so vector handlers never run in the middle of
//! application code.

use core::arch::asm;

use muen_abi::time::Tsc;
use muen_channel::{Event, EventHook};

use super::{Platform, VectorSet, PENDING};

mod cpu;

/// The Muen platform (a zero-sized handle).
#[derive(Clone, Copy, Debug)]
pub struct Muen(());

impl Muen {
    /// Loads the runtime's GDT, TSS and IDT and returns the platform handle.
    ///
    /// # Safety
    ///
    /// Called once, by the entry, before anything else runs, in a Muen subject in the
    /// state the module documentation describes.
    pub unsafe fn init() -> Self {
        // SAFETY: forwarded contract.
        unsafe { cpu::init() };
        Muen(())
    }

    /// The handle, for code that runs after [`Muen::init`] without access to the
    /// runtime (the panic handler).
    pub(crate) const fn assume_initialised() -> Self {
        Muen(())
    }

    /// Reads the TSC.
    pub fn rdtsc() -> u64 {
        // SAFETY: `rdtsc` has no side effects; policy-gen disables RDTSC exiting.
        #[allow(unused_unsafe)]
        unsafe {
            core::arch::x86_64::_rdtsc()
        }
    }
}

impl EventHook for Muen {
    fn trigger(&self, event: Event) {
        // SAFETY: `muen_subject_hypercall` (cpu.rs) is `vmcall; ret` on Muen, where this
        // image runs as a subject at CPL 0: the kernel handles (or ignores) the event in
        // RAX and resumes us after the `vmcall`. The testbed's QEMU mode replaces the
        // body with `out 0xe9, al; nop; ret` (muen_testbed_abi::qemu::HYPERCALL_QEMU), which
        // has the same contract. Either way only RAX and the flags change; the `call`
        // pushes a return address below RSP, which is safe because the target has no
        // red zone. Memory may be read or written as far as the compiler knows (no
        // `nomem`), so channel stores issued before the event are not moved past it.
        unsafe {
            asm!(
                "call {hypercall}",
                hypercall = sym cpu::muen_subject_hypercall,
                inout("rax") u64::from(event.number()) => _,
            );
        }
    }
}

impl Platform for Muen {
    fn tsc(&self) -> Tsc {
        Tsc::from_ticks(Muen::rdtsc())
    }

    fn pause(&self) {
        core::hint::spin_loop()
    }

    fn take_pending(&self) -> VectorSet {
        PENDING.take()
    }

    fn halt_unless(&self, ready: &mut dyn FnMut() -> bool) -> bool {
        // Interrupts are disabled here (always, outside this function), so a vector
        // that arrives from now on waits in the kernel until `sti`, and the `hlt` in
        // the STI shadow then ends at once.
        if ready() || PENDING.any() {
            return false;
        }
        // SAFETY: enables interrupts for exactly the `hlt`: the IDT is loaded, and the
        // vector stubs only set a bit in PENDING and `iretq`. The target has no red
        // zone, so the interrupt frame pushed below RSP overwrites nothing. Memory is
        // clobbered (no `nomem`): PENDING changes behind the compiler's back.
        unsafe { asm!("sti", "hlt", "cli") };
        true
    }

    fn exit(&self, code: i32) -> ! {
        // SAFETY: `muen_subject_exit` (cpu.rs) is `cli; 1: hlt; jmp 1b` on Muen: it
        // stops this vCPU for good (with IF = 0 only an NMI, handled by Muen, could
        // resume it, and the loop halts again). In the testbed's QEMU mode its body
        // reports the code in EDI and ends QEMU (muen_testbed_abi::qemu::EXIT_QEMU), then
        // halts the same way. It never returns, and it touches no memory.
        unsafe {
            asm!(
                "call {exit}",
                exit = sym cpu::muen_subject_exit,
                in("edi") code,
                options(noreturn),
            )
        }
    }
}
