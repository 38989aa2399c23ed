//! The Muen platform handle: how the subject talks to its kernel.
//!
//! Three 16-byte stubs with fixed symbols, each in its own section, are the image's
//! only paravirtualisation points (`muen_testbed_abi::qemu`: the testbed's QEMU mode
//! replaces exactly these bytes before boot, after checking them; on Muen they run as
//! they are):
//!
//! - `muen_subject_hypercall`: `vmcall; ret`, event number in RAX;
//! - `muen_subject_exit`: `cli; 1: hlt; jmp 1b`, exit code in EDI;
//! - `muen_subject_halt`: `sti; hlt; cli; ret`, the idle loop's sleep (the QEMU body
//!   also acknowledges the testbed's wake-up source and clobbers RAX and RDX).
//!
//! [`Muen`] implements [`Platform`] with them and `rdtsc`. The module imports nothing of the Muen platform, so the CPU code (`cpu`) can
//! report exceptions through this handle.

use core::arch::{asm, global_asm};

use muen_abi::time::Tsc;
use muen_channel::{Event, EventHook};

use crate::platform::machine::{Platform, VectorSet, PENDING};

global_asm!(
    // Event: number in RAX; RAX is clobbered, everything else preserved.
    ".section .text.muen_subject_hypercall, \"ax\", @progbits",
    ".balign 16",
    ".global muen_subject_hypercall",
    ".type muen_subject_hypercall, @function",
    "muen_subject_hypercall:",
    "    vmcall",
    "    ret",
    "    .fill 12, 1, 0xcc",
    ".size muen_subject_hypercall, 16",
    "",
    // Exit: code in EDI (unused on Muen, where nobody collects it); never returns.
    ".section .text.muen_subject_exit, \"ax\", @progbits",
    ".balign 16",
    ".global muen_subject_exit",
    ".type muen_subject_exit, @function",
    "muen_subject_exit:",
    "    cli",
    "2:  hlt",
    "    jmp 2b",
    "    .fill 12, 1, 0xcc",
    ".size muen_subject_exit, 16",
    "",
    // Halt: with interrupts disabled on entry and on return; a vector pending at the
    // `sti` ends the `hlt` in its shadow at once. RAX and RDX may be clobbered.
    ".section .text.muen_subject_halt, \"ax\", @progbits",
    ".balign 16",
    ".global muen_subject_halt",
    ".type muen_subject_halt, @function",
    "muen_subject_halt:",
    "    sti",
    "    hlt",
    "    cli",
    "    ret",
    "    .fill 12, 1, 0xcc",
    ".size muen_subject_halt, 16",
);

extern "C" {
    /// Triggers the event in RAX (`vmcall` on Muen); clobbers RAX only.
    fn muen_subject_hypercall();
    /// Ends the subject with the code in EDI (`cli; hlt` forever on Muen).
    fn muen_subject_exit() -> !;
    /// Sleeps until a vector arrives (`sti; hlt; cli` on Muen); clobbers RAX and RDX.
    fn muen_subject_halt();
}

/// The Muen platform (a zero-sized handle).
#[derive(Clone, Copy, Debug)]
pub struct Muen(());

impl Muen {
    /// The handle, for [`Muen::init`] and for code that runs after it without access
    /// to the runtime (the panic handler, the exception handler).
    pub(crate) const fn assume_initialised() -> Self {
        Muen(())
    }

    /// Reads the TSC (the log's timestamp source; [`Platform::tsc`] gives a [`Tsc`]).
    pub(crate) fn rdtsc() -> u64 {
        // SAFETY: `rdtsc` has no side effects; policy-gen disables RDTSC exiting.
        #[allow(unused_unsafe)]
        unsafe {
            core::arch::x86_64::_rdtsc()
        }
    }
}

impl EventHook for Muen {
    fn trigger(&self, event: Event) {
        // SAFETY: `muen_subject_hypercall` (above) is `vmcall; ret` on Muen, where this
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
                hypercall = sym muen_subject_hypercall,
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
        // SAFETY: `muen_subject_halt` (above) is `sti; hlt; cli; ret`: it enables
        // interrupts for exactly the `hlt`; the IDT is loaded, and the vector stubs only
        // set a bit in PENDING and `iretq`. The testbed's QEMU mode replaces the body
        // (muen_testbed_abi::qemu::HALT_QEMU) with one that first reads its wake-up
        // UART and writes its doorbell (port I/O, clobbering RAX and RDX, declared
        // here), then does the same. The target has no red zone, so the `call` and the
        // interrupt frame pushed below RSP overwrite nothing. Memory is clobbered (no
        // `nomem`): PENDING changes behind the compiler's back.
        unsafe {
            asm!(
                "call {halt}",
                halt = sym muen_subject_halt,
                out("rax") _,
                out("rdx") _,
            )
        };
        true
    }

    fn exit(&self, code: i32) -> ! {
        // SAFETY: `muen_subject_exit` (above) is `cli; 1: hlt; jmp 1b` on Muen: it
        // stops this vCPU for good (with IF = 0 only an NMI, handled by Muen, could
        // resume it, and the loop halts again). In the testbed's QEMU mode its body
        // reports the code in EDI and ends QEMU (muen_testbed_abi::qemu::EXIT_QEMU), then
        // halts the same way. It never returns, and it touches no memory.
        unsafe {
            asm!(
                "call {exit}",
                exit = sym muen_subject_exit,
                in("edi") code,
                options(noreturn),
            )
        }
    }
}
