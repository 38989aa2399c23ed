//! Start, exit and panics: what [`entry!`](crate::entry!) wires up.
//!
//! The application names its `main` in `muen_subject::entry!(main)`. The macro emits
//!
//! - the platform's entry symbol: `muen_subject_main`, which the runtime's `_start`
//!   calls on Muen, or the C `main` that the C library's start code calls on Linux;
//! - on Muen, the `#[panic_handler]` (in the application, so that the library itself
//!   stays testable with `std`).
//!
//! On Linux (hosted) the runtime links `std` and installs a panic *hook* instead, which
//! reports and exits just like the Muen handler. A `#[panic_handler]` there would break
//! as soon as anything in the build graph turns on a `std` feature of a shared
//! dependency (in this workspace: `muen-app/manifest` for the testbed, unified by
//! Cargo into every member's build), because `std` brings its own.
//!
//! and both call into this module. [`start`] sets the platform up, checks the sinfo
//! page, attaches the log, runs `main` and exits with its code.
//!
//! Exit codes: `main`'s, 101 after a panic (as Rust's own), 128 + vector after a CPU
//! exception (Muen), 125 when the hosted world is broken (`docs/hosted.md`).

use core::fmt;
use core::panic::{Location, PanicInfo};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use ::log::Level;
use muen_abi::names;
use muen_channel::protocol::debuglog::LogWriter;
use muen_channel::{epoch_from, Event, RegionMut};
use muen_sinfo::{MemoryKind, SubjectInfo};

use crate::log::{Timestamp, LOG};
use crate::platform::{Current, Platform};
use crate::Runtime;

/// Exit code after a panic.
pub const EXIT_PANIC: i32 = 101;

/// Exit code after CPU exception `vector` (Muen).
pub const fn exit_code_of_exception(vector: u8) -> i32 {
    128 + vector as i32
}

/// Declares the application's `main`: `fn main(rt: &mut muen_subject::Runtime) -> C`
/// where `C` is `i32` or `()` (see [`Termination`]). Use it once, at the root of a
/// `#![no_std] #![no_main]` binary.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// Called by the runtime's `_start` on Muen.
        #[cfg(target_os = "none")]
        #[unsafe(no_mangle)]
        extern "C" fn muen_subject_main() -> ! {
            $crate::entry::start(|rt: &mut $crate::Runtime| {
                $crate::entry::Termination::code($main(rt))
            })
        }

        /// Called by the C library's start code on Linux (hosted).
        #[cfg(target_os = "linux")]
        #[unsafe(export_name = "main")]
        extern "C" fn __muen_subject_c_main(_argc: i32, _argv: *const *const u8) -> i32 {
            $crate::entry::start(|rt: &mut $crate::Runtime| {
                $crate::entry::Termination::code($main(rt))
            })
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

/// What `main` may return.
pub trait Termination {
    /// The exit code.
    fn code(self) -> i32;
}

impl Termination for i32 {
    fn code(self) -> i32 {
        self
    }
}

impl Termination for () {
    fn code(self) -> i32 {
        0
    }
}

/// The `exit` event for the panic and exception paths (no runtime handle there);
/// `NO_EVENT` until [`start`] has read the sinfo page.
static EXIT_EVENT: AtomicU8 = AtomicU8::new(NO_EVENT);
const NO_EVENT: u8 = u8::MAX;

fn exit_event() -> Option<Event> {
    Event::new(EXIT_EVENT.load(Ordering::Relaxed))
}

/// Stops with a message before the runtime exists.
fn fatal(message: fmt::Arguments<'_>) -> ! {
    #[cfg(target_os = "linux")]
    crate::platform::hosted::fatal(message);
    #[cfg(not(target_os = "linux"))]
    {
        // No log channel yet: nothing can be reported. Halt.
        let _ = message;
        Current::assume_initialised().exit(1)
    }
}

/// Attaches the `debuglog` channel, if the page has a writable one, to the logger.
///
/// # Safety
///
/// The page's regions are mapped (see [`Runtime::new`]).
unsafe fn attach_log(info: &SubjectInfo<'static>) {
    let Some(m) = info.channel(names::DEBUGLOG) else {
        return;
    };
    if !m.writable() || m.kind != MemoryKind::SubjectChannel {
        return;
    }
    let Ok(len) = usize::try_from(m.size) else {
        return;
    };
    // SAFETY: the channel is mapped writable for the rest of the program (contract),
    // and only the logger uses it.
    let Ok(region) = (unsafe { RegionMut::new(m.address as usize as *mut u8, len) }) else {
        return;
    };
    let stamp: Timestamp = Current::rdtsc;
    if let Ok(writer) = LogWriter::new(region, epoch_from(Current::rdtsc()), stamp) {
        crate::log::install(writer);
    }
}

/// Runs the application: platform set-up, sinfo, log, `main`, exit. Called by the
/// code [`entry!`](crate::entry!) emits, once.
pub fn start(main: impl FnOnce(&mut Runtime) -> i32) -> ! {
    // SAFETY: called once, first (the entry symbol is the only caller).
    let platform = unsafe { Current::init() };
    // SAFETY: Muen's toolchain maps the sinfo page at the fixed address into every
    // subject; the hosted platform mapped it from the memory map above.
    let info = match unsafe { SubjectInfo::from_fixed_address() } {
        Ok(info) => info,
        Err(e) => fatal(format_args!("sinfo page: {e}")),
    };
    // SAFETY: the page's regions are mapped (Muen: by policy; hosted: every memory
    // map entry, and docs/hosted.md makes the sinfo page name exactly those).
    let mut rt = match unsafe { Runtime::new(platform, info) } {
        Ok(rt) => rt,
        Err(e) => fatal(format_args!("{e}")),
    };
    // SAFETY: as above.
    unsafe { attach_log(rt.info()) };
    #[cfg(feature = "alloc")]
    // SAFETY: as above; the heap is set up once, before `main`.
    unsafe {
        crate::heap::init(rt.info())
    };
    if let Some(e) = rt.exit_event() {
        EXIT_EVENT.store(e.number(), Ordering::Relaxed);
    }
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
        report_panic(message, info.location())
    }));
    let code = main(&mut rt);
    rt.exit(code)
}

/// Logs the exit, triggers `exit_event` and ends the subject through `platform`.
pub fn finish<P: Platform>(platform: &P, exit_event: Option<Event>, code: i32) -> ! {
    LOG.record(Level::Info, format_args!("exit {code}"));
    if let Some(e) = exit_event {
        platform.trigger(e);
    }
    platform.exit(code)
}

/// The panic handler: logs message and location, exits with [`EXIT_PANIC`].
pub fn panic(info: &PanicInfo<'_>) -> ! {
    report_panic(info.message(), info.location())
}

/// Logs a panic's message and location (and on hosted, prints them on stderr), then
/// exits with [`EXIT_PANIC`].
pub fn report_panic(message: impl fmt::Display, location: Option<&Location<'_>>) -> ! {
    static PANICKING: AtomicBool = AtomicBool::new(false);
    // A panic while reporting a panic goes straight to the exit.
    if !PANICKING.swap(true, Ordering::Relaxed) {
        let (file, line) = location.map_or(("?", 0), |l| (l.file(), l.line()));
        LOG.record(
            Level::Error,
            format_args!("panic at {file}:{line}: {message}"),
        );
        #[cfg(target_os = "linux")]
        crate::platform::hosted::eprint(format_args!(
            "muen-subject: panic at {file}:{line}: {message}"
        ));
    }
    finish(&Current::assume_initialised(), exit_event(), EXIT_PANIC)
}

/// Short names of the CPU exceptions.
const EXCEPTIONS: [&str; 32] = [
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#CSO", "#TS", "#NP", "#SS",
    "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23", "#24", "#25",
    "#26", "#27", "#HV", "#VC", "#SX", "#31",
];

/// Reports CPU exception `vector` and exits with [`exit_code_of_exception`]; called by
/// the Muen platform's exception stub.
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
pub(crate) fn exception(vector: u8, error: u64, rip: u64, cr2: Option<u64>) -> ! {
    let name = EXCEPTIONS.get(usize::from(vector)).copied().unwrap_or("?");
    match cr2 {
        Some(cr2) => LOG.record(
            Level::Error,
            format_args!(
                "exception {name} vector {vector} error {error:#x} rip {rip:#x} cr2 {cr2:#x}"
            ),
        ),
        None => LOG.record(
            Level::Error,
            format_args!("exception {name} vector {vector} error {error:#x} rip {rip:#x}"),
        ),
    }
    finish(
        &Current::assume_initialised(),
        exit_event(),
        exit_code_of_exception(vector),
    )
}
