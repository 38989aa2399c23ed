//! The application's entry: [`entry!`](crate::entry!), what `main` may return
//! ([`Termination`]), and the two functions the macro's code calls.
//!
//! The application names its `main` in `muen_subject::entry!(main)`. The macro emits
//!
//! - on Muen, the image's entry `_start` (assembly in section
//!   `.text.muen_subject_start`, which the linker script puts first): it disables
//!   interrupts, aligns the stack, zeroes `.bss` and calls `muen_subject_main`. It is
//!   emitted into the application, not compiled into the library, so that a program
//!   with an entry of its own (Solo5's bindings, `solo5-muen`) can link the runtime
//!   without a second `_start`;
//! - the platform's entry symbol: `muen_subject_main`, which `_start` calls on Muen,
//!   or the C `main` that the C library's start code calls on Linux; both call
//!   `start`, which sets the platform up, checks the sinfo page, attaches the log,
//!   runs `main` and exits with the code of what it returned;
//! - on Muen, the `#[panic_handler]` (in the application, so that the library itself
//!   stays testable with `std`), which calls `panic`.
//!
//! On Linux (hosted) the runtime links `std` and installs a panic *hook* instead, which
//! reports and exits just like the Muen handler. A `#[panic_handler]` there would break
//! as soon as anything in the build graph turns on a `std` feature of a shared
//! dependency (in this workspace: `serde`'s `std` for the testbed, `bitflags/std`
//! through test tools, unified by Cargo into every member's build), because `std`
//! brings its own.
//!
//! `start` and `panic` are public only for the macro: they are hidden from the
//! documentation, and `start` is `unsafe` (it sets the CPU up and must run once,
//! first). Exits, panics and exceptions are reported by [`exit`](mod@crate::exit), which
//! also lists the exit codes.

use core::fmt;
use core::panic::PanicInfo;

use ::log::Level;
use muen_sinfo::SubjectInfo;

use crate::exit::{self, EXIT_ERROR};
use crate::log::LOG;
use crate::platform::Current;
use crate::runtime::Runtime;

/// Declares the application's `main`: `fn main(rt: &mut muen_subject::Runtime) -> T`
/// where `T` is `()`, `i32` or `Result<U, E>` with `U` one of these and `E: Display`
/// (see [`Termination`]). Use it once, at the root of a `#![no_std] #![no_main]`
/// binary.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        // The entry of the Muen image, placed first in the image by the linker script.
        #[cfg(target_os = "none")]
        ::core::arch::global_asm!(
            ".section .text.muen_subject_start, \"ax\", @progbits",
            ".global _start",
            ".type _start, @function",
            "_start:",
            "    cli",
            "    cld",
            // RSP comes from the policy (top of RAM - 8). Realign it so that the `call`
            // below leaves RSP = 8 (mod 16) at the callee's entry, as the System V ABI
            // wants.
            "    and rsp, -16",
            // Muen fills .bss with zeroes already (policy-gen declares it `fill 0`);
            // zero it again so that a restart of the subject (reset without reloading)
            // starts clean.
            "    lea rdi, [rip + __muen_subject_bss_start]",
            "    lea rcx, [rip + __muen_subject_bss_end]",
            "    sub rcx, rdi",
            "    xor eax, eax",
            "    rep stosb",
            "    xor ebp, ebp",
            "    call muen_subject_main",
            "    ud2",
            ".size _start, . - _start",
        );

        /// Called by `_start` on Muen.
        #[cfg(target_os = "none")]
        #[unsafe(no_mangle)]
        extern "C" fn muen_subject_main() -> ! {
            // SAFETY: `_start` calls this symbol once, before anything else runs.
            unsafe {
                $crate::entry::start(|rt: &mut $crate::Runtime| {
                    $crate::entry::Termination::report($main(rt))
                })
            }
        }

        /// Called by the C library's start code on Linux (hosted).
        #[cfg(target_os = "linux")]
        #[unsafe(export_name = "main")]
        extern "C" fn __muen_subject_c_main(_argc: i32, _argv: *const *const u8) -> i32 {
            // SAFETY: the C library's start code calls `main` once, before anything of
            // the runtime runs.
            unsafe {
                $crate::entry::start(|rt: &mut $crate::Runtime| {
                    $crate::entry::Termination::report($main(rt))
                })
            }
        }

        // On Linux the runtime links `std`, whose panic machinery the runtime hooks
        // (see `muen_subject::entry`); a handler here would be a second one.
        #[cfg(not(target_os = "linux"))]
        #[panic_handler]
        fn __muen_subject_panic(info: &::core::panic::PanicInfo<'_>) -> ! {
            $crate::entry::panic(info)
        }
    };
}

/// What `main` may return, and the exit code it stands for.
///
/// | `main` returns | exit code |
/// |---|---|
/// | `()` | 0 |
/// | `i32` | that number |
/// | `Ok(x)` | `x`'s code |
/// | `Err(e)` | [`EXIT_ERROR`] (1), after logging `ERROR main: <e>` |
///
/// So `main` can use `?` on the runtime's errors (they implement `Display` and
/// `core::error::Error`) and on its own.
pub trait Termination {
    /// Reports the outcome (an error is logged) and gives the exit code.
    fn report(self) -> i32;
}

impl Termination for i32 {
    fn report(self) -> i32 {
        self
    }
}

impl Termination for () {
    fn report(self) -> i32 {
        0
    }
}

impl<T: Termination, E: fmt::Display> Termination for Result<T, E> {
    fn report(self) -> i32 {
        match self {
            Ok(outcome) => outcome.report(),
            Err(e) => {
                ::log::error!("main: {e}");
                EXIT_ERROR
            }
        }
    }
}

/// Stops with a message before the runtime exists: logs it (if the log is attached
/// already); hosted, writes it on stderr and exits with 125, on Muen exits with
/// [`EXIT_ERROR`].
fn fatal(message: fmt::Arguments<'_>) -> ! {
    LOG.record(Level::Error, message);
    #[cfg(target_os = "linux")]
    crate::platform::hosted::fatal(message);
    #[cfg(not(target_os = "linux"))]
    exit::finish(&Current::assume_initialised(), None, EXIT_ERROR)
}

/// Runs the application: platform set-up, sinfo, log, `main`, exit. Called by the
/// code [`entry!`](crate::entry!) emits.
///
/// # Safety
///
/// Called once, before anything else of this crate runs, from the platform's entry
/// symbol: it sets the CPU up (Muen) or maps the world (hosted), and the runtime it
/// creates is the only user of the subject's channels.
#[doc(hidden)]
pub unsafe fn start(main: impl FnOnce(&mut Runtime) -> i32) -> ! {
    // SAFETY: called once, first (contract).
    let platform = unsafe { Current::init() };
    // SAFETY: Muen's toolchain maps the sinfo page at the fixed address into every
    // subject; the hosted platform mapped it from the memory map above.
    let info = match unsafe { SubjectInfo::from_fixed_address() } {
        Ok(info) => info,
        Err(e) => fatal(format_args!("sinfo page: {e}")),
    };
    // SAFETY: the page's regions are mapped (Muen: by policy; hosted: every memory
    // map entry, and docs/hosted.md makes the sinfo page name exactly those), and the
    // logger is the only user of `debuglog`: no device has that name.
    unsafe { crate::log::attach_debuglog(&info, Current::rdtsc) };
    // SAFETY: as above; this is the only runtime (contract), and nothing else views
    // the timed event page.
    let mut rt = match unsafe { Runtime::new(platform, info) } {
        Ok(rt) => rt,
        Err(e) => fatal(format_args!("{e}")),
    };
    #[cfg(feature = "alloc")]
    // SAFETY: as above; the heap is set up once, before `main`.
    unsafe {
        crate::heap::init(rt.info())
    };
    exit::set_exit_event(rt.exit_event());
    #[cfg(target_os = "linux")]
    std::panic::set_hook(std::boxed::Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| {
                payload
                    .downcast_ref::<std::string::String>()
                    .map(|s| s.as_str())
            })
            .unwrap_or("(a non-text payload)");
        exit::panic(&Current::assume_initialised(), message, info.location())
    }));
    let code = main(&mut rt);
    rt.exit(code)
}

/// The panic handler (Muen): logs message and location, exits with
/// [`EXIT_PANIC`](crate::exit::EXIT_PANIC).
#[doc(hidden)]
pub fn panic(info: &PanicInfo<'_>) -> ! {
    exit::panic(
        &Current::assume_initialised(),
        info.message(),
        info.location(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU64;
    use muen_channel::protocol::debuglog::{self, Element, LogWriter};
    use muen_channel::{epoch_from, ReadError, Reader, Region, RegionMut};

    #[test]
    fn what_main_returns_becomes_the_exit_code() {
        let _log = crate::log::serial();
        // The `log` crate's logger is the runtime's, on a channel in ordinary memory.
        let memory: &'static [AtomicU64] =
            Box::leak((0..0x1000 / 8).map(|_| AtomicU64::new(0)).collect());
        let stamp: crate::log::Timestamp = || 1;
        crate::log::install(
            LogWriter::new(
                RegionMut::from_atomics(memory).unwrap(),
                epoch_from(1),
                stamp,
            )
            .unwrap(),
        );
        let mut reader = Reader::new(
            Region::from_atomics(memory).unwrap(),
            debuglog::PROTOCOL,
            debuglog::ELEMENT_SIZE,
        )
        .unwrap();
        let mut logged = || {
            let mut text = String::new();
            loop {
                match reader.read::<Element>() {
                    Ok(e) => text.push_str(core::str::from_utf8(e.text()).unwrap()),
                    Err(ReadError::EpochChanged) => continue,
                    Err(ReadError::NoData) => return text,
                    Err(e) => panic!("{e}"),
                }
            }
        };

        assert_eq!(().report(), 0);
        assert_eq!(7.report(), 7);
        assert_eq!(Ok::<(), &str>(()).report(), 0);
        assert_eq!(Ok::<i32, &str>(2).report(), 2);
        assert_eq!(logged(), "", "success logs nothing");
        assert_eq!(Err::<(), &str>("no disk").report(), EXIT_ERROR);
        assert_eq!(logged(), "ERROR main: no disk\n");
        assert_eq!(Err::<i32, &str>("no disk").report(), 1);
        assert_eq!(Ok::<Result<i32, &str>, &str>(Err("inner")).report(), 1);
        assert_eq!(logged(), "ERROR main: no disk\nERROR main: inner\n");
    }
}
