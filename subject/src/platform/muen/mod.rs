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
//! `_start` (emitted by [`entry!`](crate::entry!) into the application) disables
//! interrupts, aligns the stack, zeroes `.bss` and calls the application's entry
//! (`muen_subject_main`, emitted by the same macro), which calls [`Muen::init`]: a GDT
//! with the selectors Muen's profile uses (code 0x08, data 0x10, TSS 0x18), a TSS
//! whose IST stacks take page faults and double faults (so that a stack overflow is
//! still reported), and an IDT: vectors 0..=31 log the exception and exit (through
//! [`exit`](crate::exit)), vectors 32..=255 set their bit in
//! the pending bitmap and return. Interrupts stay disabled except for the `sti; hlt`
//! pair in [`Platform::halt_unless`](super::Platform::halt_unless), so vector handlers
//! never run in the middle of application code.
//!
//! # Modules
//!
//! - `kernel`: the [`Muen`] handle and its [`Platform`](super::Platform) implementation:
//!   the two stubs through which the subject talks to its kernel (event, exit),
//!   `rdtsc`, `sti; hlt`. It imports nothing of this platform.
//! - `cpu`: the GDT, TSS and IDT, the vector stubs, and the exception path, which
//!   reports through the handle of `kernel` (or hands the exception to the handler
//!   given to [`Muen::init_with_exception_handler`]).
//!
//! This module declares them and sets the CPU up in [`Muen::init`].

mod cpu;
mod kernel;

pub use cpu::ExceptionHandler;
pub use kernel::Muen;

impl Muen {
    /// Loads the runtime's GDT, TSS and IDT and returns the platform handle. CPU
    /// exceptions are reported by [`exit`](crate::exit) (exit code 128 + vector).
    ///
    /// # Safety
    ///
    /// Called once, by the entry, before anything else runs, in a Muen subject in the
    /// state the module documentation describes.
    pub unsafe fn init() -> Self {
        // SAFETY: forwarded contract.
        unsafe { cpu::init(None) };
        Muen::assume_initialised()
    }

    /// [`Muen::init`], with CPU exceptions going to `handler` instead: for a program
    /// that reports them its own way (Solo5's bindings, `solo5-muen`).
    ///
    /// # Safety
    ///
    /// As [`Muen::init`]: called once, before anything else of the platform runs.
    pub unsafe fn init_with_exception_handler(handler: ExceptionHandler) -> Self {
        // SAFETY: forwarded contract.
        unsafe { cpu::init(Some(handler)) };
        Muen::assume_initialised()
    }
}
