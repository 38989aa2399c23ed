//! How a subject ends: the exit codes, the exit itself, and the reports of a panic or a
//! CPU exception.
//!
//! | code | when |
//! |-----:|------|
//! | `main`'s | `main` returned an `i32` (`()` is 0, `Ok(x)` is `x`'s code) |
//! | [`EXIT_ERROR`] (1) | `main` returned `Err(e)` (`ERROR main: <e>` is logged), or the runtime cannot start on Muen (the reason is logged if it can be) |
//! | [`EXIT_PANIC`] (101) | a panic (as Rust's own); message and location are logged |
//! | [`exit_code_of_exception`] (128 + vector) | a CPU exception (Muen); vector, error code, RIP (and CR2) are logged |
//! | 125 | the hosted world is broken (`platform::hosted::EXIT_BROKEN_WORLD`, `docs/hosted.md`) |
//!
//! Every exit, whatever its cause, logs `INFO exit <code>`, triggers the `exit` event if
//! the policy has one, and ends the subject through the platform (Muen: halts for good;
//! hosted: `_exit`).
//!
//! A leaf below the runtime: [`Runtime::exit`](crate::Runtime::exit), the entry's panic
//! handler and hook, and the Muen platform's exception handler call it; it imports only
//! the log, the [`Platform`] trait and, hosted, stderr.

use core::fmt;
use core::panic::Location;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use ::log::Level;
use muen_channel::Event;

use crate::log::LOG;
use crate::platform::machine::{CpuException, Platform};

/// Exit code when `main` returns an error, or the runtime cannot start (Muen).
pub const EXIT_ERROR: i32 = 1;

/// Exit code after a panic.
pub const EXIT_PANIC: i32 = 101;

/// Exit code after CPU exception `vector` (Muen).
pub const fn exit_code_of_exception(vector: u8) -> i32 {
    128 + vector as i32
}

/// The `exit` event for the panic and exception paths (no runtime handle there);
/// `NO_EVENT` until the entry has read the sinfo page.
static EXIT_EVENT: AtomicU8 = AtomicU8::new(NO_EVENT);
const NO_EVENT: u8 = u8::MAX;

/// Remembers the `exit` event for the panic and exception paths.
pub(crate) fn set_exit_event(event: Option<Event>) {
    EXIT_EVENT.store(event.map_or(NO_EVENT, Event::number), Ordering::Relaxed);
}

fn exit_event() -> Option<Event> {
    Event::new(EXIT_EVENT.load(Ordering::Relaxed))
}

/// Logs the exit, triggers `exit_event` and ends the subject through `platform`.
pub(crate) fn finish<P: Platform + ?Sized>(
    platform: &P,
    exit_event: Option<Event>,
    code: i32,
) -> ! {
    LOG.record(Level::Info, format_args!("exit {code}"));
    if let Some(e) = exit_event {
        platform.trigger(e);
    }
    platform.exit(code)
}

/// Logs a panic's message and location (and hosted, prints them on stderr), then
/// exits with [`EXIT_PANIC`].
pub(crate) fn panic<P: Platform + ?Sized>(
    platform: &P,
    message: impl fmt::Display,
    location: Option<&Location<'_>>,
) -> ! {
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
    finish(platform, exit_event(), EXIT_PANIC)
}

/// Short names of the CPU exceptions.
const EXCEPTIONS: [&str; 32] = [
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#CSO", "#TS", "#NP", "#SS",
    "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23", "#24", "#25",
    "#26", "#27", "#HV", "#VC", "#SX", "#31",
];

/// A CPU exception as it is logged:
/// `exception #PF vector 14 error 0x2 rip 0x201234 cr2 0x0` (CR2 for page faults).
struct Exception<'a>(&'a CpuException);

impl fmt::Display for Exception<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let CpuException {
            vector,
            error_code,
            rip,
            cr2,
            ..
        } = *self.0;
        let name = EXCEPTIONS.get(usize::from(vector)).copied().unwrap_or("?");
        write!(
            f,
            "exception {name} vector {vector} error {error_code:#x} rip {rip:#x}"
        )?;
        match cr2 {
            Some(cr2) => write!(f, " cr2 {cr2:#x}"),
            None => Ok(()),
        }
    }
}

/// Reports a CPU exception and exits with [`exit_code_of_exception`]; what the Muen
/// platform's exception path does unless the program gave it a handler of its own.
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
pub(crate) fn exception<P: Platform + ?Sized>(platform: &P, exception: &CpuException) -> ! {
    LOG.record(Level::Error, format_args!("{}", Exception(exception)));
    finish(
        platform,
        exit_event(),
        exit_code_of_exception(exception.vector),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::machine::VectorSet;
    use core::cell::RefCell;
    use muen_abi::time::Tsc;
    use muen_channel::EventHook;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    /// A platform whose exit unwinds with the code, recording the events triggered.
    #[derive(Default)]
    struct Recorder {
        events: RefCell<Vec<u8>>,
    }

    impl EventHook for Recorder {
        fn trigger(&self, event: Event) {
            self.events.borrow_mut().push(event.number());
        }
    }

    impl Platform for Recorder {
        fn tsc(&self) -> Tsc {
            Tsc::ZERO
        }
        fn pause(&self) {}
        fn take_pending(&self) -> VectorSet {
            VectorSet::EMPTY
        }
        fn halt_unless(&self, _: &mut dyn FnMut() -> bool) -> bool {
            false
        }
        fn exit(&self, code: i32) -> ! {
            std::panic::resume_unwind(Box::new(code))
        }
    }

    /// The code `f` exits with.
    fn exit_code(f: impl FnOnce()) -> i32 {
        let payload = catch_unwind(AssertUnwindSafe(f)).unwrap_err();
        *payload.downcast::<i32>().unwrap()
    }

    #[test]
    fn exceptions_are_described_and_exit_with_128_plus_the_vector() {
        let _log = crate::log::serial();
        let at = |vector, error_code, rip, cr2| CpuException {
            vector,
            error_code,
            rip,
            cs: 0x08,
            rflags: 0x2,
            rsp: 0x4000_0000,
            ss: 0x10,
            cr2,
        };
        let page_fault = at(14, 2, 0x20_1234, Some(0));
        assert_eq!(
            Exception(&page_fault).to_string(),
            "exception #PF vector 14 error 0x2 rip 0x201234 cr2 0x0"
        );
        let ud = at(6, 0, 0x20_0010, None);
        assert_eq!(
            Exception(&ud).to_string(),
            "exception #UD vector 6 error 0x0 rip 0x200010"
        );
        let beyond = at(40, 0, 0, None);
        assert!(Exception(&beyond)
            .to_string()
            .starts_with("exception ? vector 40"));

        // The panic and exception paths have no runtime: they use the remembered event.
        let p = Recorder::default();
        set_exit_event(Event::new(5));
        assert_eq!(exit_code(|| exception(&p, &ud)), 134);
        assert_eq!(exit_code(|| exception(&p, &at(13, 0, 0, None))), 141);
        assert_eq!(*p.events.borrow(), [5, 5]);
        set_exit_event(None);
        assert_eq!(exit_code(|| exception(&p, &at(0, 0, 0, None))), 128);
        assert_eq!(*p.events.borrow(), [5, 5], "no exit event: none triggered");

        // A panic exits with 101, also when it happens while a panic is reported.
        set_exit_event(Event::new(6));
        let here = Location::caller();
        assert_eq!(
            exit_code(|| panic(&p, "on purpose", Some(here))),
            EXIT_PANIC
        );
        assert_eq!(exit_code(|| panic(&p, "again", None)), EXIT_PANIC);
        assert_eq!(*p.events.borrow(), [5, 5, 6, 6]);
        set_exit_event(None);
    }

    #[test]
    fn finish_triggers_the_given_event_then_exits_with_the_code() {
        let _log = crate::log::serial();
        let p = Recorder::default();
        assert_eq!(exit_code(|| finish(&p, Event::new(9), 7)), 7);
        assert_eq!(exit_code(|| finish(&p, None, EXIT_ERROR)), 1);
        assert_eq!(*p.events.borrow(), [9]);
        assert_eq!(EXIT_PANIC, 101);
        assert_eq!(exit_code_of_exception(255), 383);
    }
}
