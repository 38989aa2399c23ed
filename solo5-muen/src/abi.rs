//! The C side (only for `x86_64-unknown-none`): `_start`, the functions of `solo5.h`,
//! the ELF notes and `.interp`, the stack protector's symbols, the exception and panic
//! paths, and the state they share.
//!
//! What Solo5's link expects of the object that replaces `solo5_muen.o`, and where it
//! is here:
//!
//! | | |
//! |---|---|
//! | `_start` first in `.text` | assembly in section `.text.solo5_muen_start`, which `link/solo5_muen-r.lds` puts first in the object's `.text` |
//! | `.interp` (24 bytes, `/nonexistent/solo5/`) | [`INTERP`] |
//! | `.note.solo5.abi` | [`ABI1_NOTE`] ([`crate::ABI`]), then [`BINDINGS_NOTE`] (`muen_abi::solo5`) |
//! | `.note.solo5.not_openbsd` | [`OPENBSD_NOTE`] |
//! | `__stack_chk_guard`, `__stack_chk_fail` | here; the guard is set before the application runs |
//! | `solo5_*` | here, each a thin wrapper of [`Bindings`] |
//! | imports `solo5_app_main`, `__solo5_mft1_note`, `_stext _etext _erodata _end _stdata _ltdata _ltbss` | `extern` block below |
//!
//! Every other symbol is made local by the build (`objcopy -w -G ...`, as Solo5 does),
//! so the application's own `memcpy` and friends do not clash with the ones inside.
//!
//! The state (`CONSOLE`, `PLATFORM`, `RUNTIME`, `BINDINGS`, `START_INFO`) lives in
//! statics: the C functions have no context argument. The subject has one CPU and no
//! threads, and interrupts are enabled only inside the runtime's `sti; hlt`, whose
//! vector stubs touch none of it; so plain cells, written once at start, are enough
//! ([`Global`]).

use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use muen_channel::Event;
use muen_sinfo::SubjectInfo;
use muen_subject::platform::muen::Muen;
use muen_subject::platform::{CpuException, Platform};
use muen_subject::{Duration, Runtime};
use solo5_abi::{
    Abi1Note, Solo5BlockInfo, Solo5Handle, Solo5HandleSet, Solo5NetInfo, Solo5NoteHeader,
    Solo5Offset, Solo5Result, Solo5StartInfo, Solo5Time, MFT_NAME_SIZE, SOLO5_EXIT_ABORT,
};

use crate::bindings::{exit_event, halt, Bindings, EXIT_EVENT};
use crate::boot::{BootInfo, Heap};
use crate::console::{log, Console};
use crate::tls::{is_canonical, TlsLayout};
use crate::trap::Trap;

core::arch::global_asm!(
    ".section .text.solo5_muen_start, \"ax\", @progbits",
    ".global _start",
    ".type _start, @function",
    "_start:",
    // RDI: the boot info (Solo5's `_start(void *arg)`); RSP: the policy's stack (end of
    // `ram` - 8). Interrupts off, string operations upwards, the stack aligned so that
    // the call leaves RSP = 8 (mod 16) at the callee's entry.
    "    cli",
    "    cld",
    "    and rsp, -16",
    "    xor ebp, ebp",
    "    call {start}",
    "    ud2",
    ".size _start, . - _start",
    start = sym start,
);

extern "C" {
    /// The application.
    fn solo5_app_main(info: *const Solo5StartInfo) -> c_int;
    /// The built-in manifest (the application's `manifest.o`).
    static __solo5_mft1_note: Solo5NoteHeader;
    /// Start of the image (Solo5's linker script).
    static _stext: u8;
    /// End of the text segment.
    static _etext: u8;
    /// End of the read-only data.
    static _erodata: u8;
    /// End of the image.
    static _end: u8;
    /// The TLS template (`.tdata`).
    static _stdata: u8;
    /// The size of `.tdata`, as the symbol's value.
    static _ltdata: u8;
    /// The size of `.tbss`, as the symbol's value.
    static _ltbss: u8;
}

/// The address of a linker-script symbol (or its value, for the size symbols).
macro_rules! symbol {
    ($name:ident) => {
        // Only the address is taken; nothing is read.
        (&raw const $name) as u64
    };
}

/// A value set once at start and only read afterwards.
struct Global<T> {
    ready: AtomicBool,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the subject runs on one CPU without threads; the vector stubs that run while
// interrupts are enabled touch no `Global`, and the exception and panic paths only read
// one after `ready` says it is complete. So no two accesses ever race.
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    const fn new() -> Self {
        Global {
            ready: AtomicBool::new(false),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Stores `value` and returns it.
    ///
    /// # Safety
    ///
    /// Called at most once per global, before anything reads it.
    unsafe fn set(&'static self, value: T) -> &'static T {
        // SAFETY: nobody reads the value before `ready` is set and nobody else writes
        // it (contract).
        let value = unsafe { (*self.value.get()).write(value) };
        self.ready.store(true, Ordering::Release);
        value
    }

    /// The value, once set.
    fn get(&'static self) -> Option<&'static T> {
        if self.ready.load(Ordering::Acquire) {
            // SAFETY: written completely before `ready` was set, and never again.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }
}

static CONSOLE: Console<'static> = Console::new();
static PLATFORM: Global<Muen> = Global::new();
static RUNTIME: Global<Runtime<Muen>> = Global::new();
static BINDINGS: Global<Bindings<'static, Muen>> = Global::new();
static START_INFO: Global<Solo5StartInfo> = Global::new();

/// `.interp`: a loader that does not exist, so no host kernel runs the image.
#[repr(C, align(8))]
struct Interp([u8; 24]);

#[used]
#[unsafe(link_section = ".interp")]
static INTERP: Interp = Interp(*b"/nonexistent/solo5/\0\0\0\0\0");

/// The ABI note: target `muen`, version [`crate::ABI`].
#[used]
#[unsafe(link_section = ".note.solo5.abi")]
static ABI1_NOTE: Abi1Note = Abi1Note::new(crate::ABI);

/// The note that says these are this project's bindings (`muen_abi::solo5`), in the
/// `ABI1` note's segment after it: `policy-gen --elf` writes the runtime's resources
/// into the policy when it finds it.
#[repr(C, align(4))]
struct BindingsNote([u8; muen_abi::solo5::NOTE_SIZE]);

#[used]
#[unsafe(link_section = ".note.solo5.abi.muen_subject")]
static BINDINGS_NOTE: BindingsNote = BindingsNote(muen_abi::solo5::note_bytes());

/// The note that makes OpenBSD's loader take the image for one of its own (and refuse
/// it for `.interp`), which Solo5's linker script puts in the first `PT_NOTE`.
#[repr(C, align(4))]
struct OpenBsdNote {
    namesz: u32,
    descsz: u32,
    note_type: u32,
    name: [u8; 8],
    desc: u32,
}

#[used]
#[unsafe(link_section = ".note.solo5.not_openbsd")]
static OPENBSD_NOTE: OpenBsdNote = OpenBsdNote {
    namesz: 8,
    descsz: 4,
    note_type: 1,
    name: *b"OpenBSD\0",
    desc: 0,
};

/// The stack protector's canary, read by every protected function of the application
/// (`-mstack-protector-guard=global`). A recognisable value until `start` sets a
/// random one.
#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static __stack_chk_guard: AtomicUsize = AtomicUsize::new(0x00de_adbe_ef0d_0a00);

fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` has no side effects; the policy lets the subject execute it.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
}

/// A fresh canary: two TSC readings mixed (SplitMix64's finaliser), its second byte
/// cleared as Solo5 does, so that a string copy stops at it.
fn canary() -> usize {
    let mut x = rdtsc() ^ rdtsc().rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x & !0xff00) as usize
}

/// The platform handle, once set (it is set first).
fn platform() -> Muen {
    match PLATFORM.get() {
        Some(&p) => p,
        // Unreachable: nothing of the application runs before `start` set it. Halt
        // without a platform handle the way the runtime's exit stub does.
        None => loop {
            // SAFETY: stops this CPU for good; touches no memory.
            unsafe { core::arch::asm!("cli", "hlt", options(nomem, nostack)) };
        },
    }
}

/// The `solo5_exit` event, once the runtime exists.
fn exit_event_now() -> Option<Event> {
    RUNTIME.get().and_then(exit_event)
}

/// Ends the unikernel with [`SOLO5_EXIT_ABORT`] after `Solo5: ABORT: <args>`.
fn abort(args: core::fmt::Arguments<'_>) -> ! {
    log!(CONSOLE, Error, "ABORT: {args}");
    halt(&CONSOLE, &platform(), exit_event_now(), SOLO5_EXIT_ABORT)
}

/// The entry, called by `_start` with the boot info address (RDI).
extern "sysv64" fn start(boot_info: u64) -> ! {
    __stack_chk_guard.store(canary(), Ordering::Relaxed);
    // SAFETY: runs once, first, in a Muen subject; the handler is this crate's.
    let muen = unsafe { Muen::init_with_exception_handler(trap) };
    // SAFETY: the first write of PLATFORM; nothing has read it.
    unsafe { PLATFORM.set(muen) };
    // SAFETY: Muen's tool chain maps the sinfo page at its fixed address.
    let info = match unsafe { SubjectInfo::from_fixed_address() } {
        Ok(info) => info,
        // No page, so no console: nothing can be said.
        Err(_) => muen.exit(SOLO5_EXIT_ABORT),
    };
    // SAFETY: the page's regions are mapped with their rights for the rest of the
    // program, and only the console uses `debuglog`.
    let debuglog = unsafe { CONSOLE.attach_debuglog(&info, rdtsc) };
    if info.version() != crate::SINFO_FORMAT {
        abort(format_args!(
            "the subject info page has format {}, Solo5 ABI {} goes with format {} \
             (solo5-muen's feature `abi3` selects the other pair)",
            info.version().number(),
            crate::ABI.version,
            crate::SINFO_FORMAT.number()
        ));
    }
    // SAFETY: the page's regions are mapped for the rest of the program (Muen), this is
    // the only runtime, and nothing else views the timed event page.
    let rt = match unsafe { Runtime::new(muen, info) } {
        // SAFETY: the first write of RUNTIME.
        Ok(rt) => unsafe { RUNTIME.set(rt) },
        Err(e) => abort(format_args!("{e}")),
    };

    // SAFETY: the page's regions are mapped readable, and Muen maps the boot info
    // read-only.
    let boot = match unsafe { BootInfo::read(rt.info(), boot_info) } {
        Ok(boot) => boot,
        Err(e) => abort(format_args!("{e}")),
    };
    // SAFETY: the application's manifest note, whole and read-only in the image.
    let manifest = match unsafe { crate::manifest::builtin(&raw const __solo5_mft1_note) } {
        Ok(m) => m,
        Err(e) => {
            log!(CONSOLE, Error, "manifest: {e}");
            log!(
                CONSOLE,
                Error,
                "Built-in manifest validation failed. Aborting."
            );
            log!(CONSOLE, Info, "solo5_abort() called");
            halt(&CONSOLE, &muen, exit_event(rt), SOLO5_EXIT_ABORT)
        }
    };
    let cmdline = crate::cmdline::parse(boot.cmdline);
    if let Some(level) = cmdline.level {
        CONSOLE.set_level(level);
    }

    log!(
        CONSOLE,
        Info,
        "Bindings version {} (Rust, on muen-subject; Solo5 ABI {}, sinfo format {})",
        crate::BINDINGS_VERSION,
        crate::ABI,
        info.version().number()
    );
    if let Some(m) = debuglog {
        log!(
            CONSOLE,
            Info,
            "Console: Muen channel debuglog @ {:#x}, size {:#x}",
            m.address,
            m.size
        );
    }
    let heap = match Heap::new(rt.info(), symbol!(_end), boot.mem_size) {
        Ok(heap) => heap,
        Err(e) => abort(format_args!("{e}")),
    };
    log_memory_map(&heap, boot.mem_size);
    log!(CONSOLE, Info, "Clock source: TSC, {}", rt.tsc_rate());
    if rt.info().memory(muen_abi::names::TIME_INFO).is_some() {
        if let Err(e) = rt.wall_clock(Duration::from_secs(1)) {
            log!(
                CONSOLE,
                Warn,
                "Wall clock: {e}; solo5_clock_wall counts from 1970"
            );
        }
    } else {
        log!(
            CONSOLE,
            Warn,
            "Wall clock: no time_info region; solo5_clock_wall counts from 1970"
        );
    }
    if rt.has_timer() {
        log!(
            CONSOLE,
            Info,
            "Yield: halts (timed event and `timer` vector)"
        );
    } else {
        log!(
            CONSOLE,
            Info,
            "Yield: polls with PAUSE (no timed_event page or `timer` event and vector)"
        );
    }
    if exit_event(rt).is_none() {
        log!(CONSOLE, Debug, "Exit: no `{EXIT_EVENT}` event");
    }

    // SAFETY: the first write of BINDINGS; the manifest borrows the image.
    let bindings = unsafe { BINDINGS.set(Bindings::new(rt, &CONSOLE, manifest)) };
    // SAFETY: the first write of START_INFO. The command line is a suffix of the boot
    // info's NUL-terminated text, so it stays NUL-terminated.
    let start_info = unsafe {
        START_INFO.set(Solo5StartInfo {
            cmdline: boot.cmdline.as_ptr().add(cmdline.offset).cast(),
            heap_start: heap.start as usize,
            heap_size: heap.size as usize,
        })
    };
    // SAFETY: the application's entry, called once with a start info that lives for
    // the rest of the program.
    let status = unsafe { solo5_app_main(start_info) };
    bindings.exit(status)
}

/// Solo5's memory map lines.
fn log_memory_map(heap: &Heap, mem_size: u64) {
    let (text, etext, erodata, end) = (
        symbol!(_stext),
        symbol!(_etext),
        symbol!(_erodata),
        symbol!(_end),
    );
    log!(
        CONSOLE,
        Info,
        "Memory map: {} MB addressable:",
        mem_size >> 20
    );
    log!(
        CONSOLE,
        Info,
        "  reserved @ (0x0 - {:#x})",
        text.saturating_sub(1)
    );
    log!(CONSOLE, Info, "      text @ ({text:#x} - {:#x})", etext - 1);
    log!(
        CONSOLE,
        Info,
        "    rodata @ ({etext:#x} - {:#x})",
        erodata - 1
    );
    log!(
        CONSOLE,
        Info,
        "      data @ ({erodata:#x} - {:#x})",
        end - 1
    );
    log!(
        CONSOLE,
        Info,
        "      heap >= {:#x} < stack < {mem_size:#x}",
        heap.start
    );
}

/// The CPU exception handler: Solo5's trap report, then exit 255.
fn trap(muen: Muen, e: &CpuException) -> ! {
    static TRAPPED: AtomicBool = AtomicBool::new(false);
    if TRAPPED.swap(true, Ordering::Relaxed) {
        // An exception while reporting one.
        muen.exit(SOLO5_EXIT_ABORT)
    }
    log!(CONSOLE, Error, "{}", Trap(e));
    if let Some(cr2) = e.cr2 {
        log!(CONSOLE, Error, "trap: cr2={cr2:#x}");
    }
    log!(CONSOLE, Error, "ABORT: Fatal trap");
    halt(&CONSOLE, &muen, exit_event_now(), SOLO5_EXIT_ABORT)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let (file, line) = info.location().map_or(("?", 0), |l| (l.file(), l.line()));
    abort(format_args!("{file}:{line}: {}", info.message()))
}

/// Called by the application's stack-protected functions when the canary was
/// overwritten.
#[unsafe(no_mangle)]
pub extern "C" fn __stack_chk_fail() -> ! {
    abort(format_args!("Stack corruption detected"))
}

/// The bindings, once the application runs (always, for its calls).
fn bindings() -> &'static Bindings<'static, Muen> {
    match BINDINGS.get() {
        Some(b) => b,
        None => abort(format_args!("a Solo5 call before solo5_app_main")),
    }
}

/// `solo5_exit`.
#[unsafe(no_mangle)]
pub extern "C" fn solo5_exit(status: c_int) -> ! {
    bindings().exit(status)
}

/// `solo5_abort`.
#[unsafe(no_mangle)]
pub extern "C" fn solo5_abort() -> ! {
    bindings().abort()
}

/// `solo5_console_write`.
///
/// # Safety
///
/// `buf` points to `size` readable bytes (or `size` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn solo5_console_write(buf: *const c_char, size: usize) {
    if buf.is_null() || size == 0 || size > isize::MAX as usize {
        return;
    }
    // SAFETY: `size` readable bytes (contract).
    let bytes = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), size) };
    CONSOLE.write(bytes);
}

/// `solo5_clock_monotonic`.
#[unsafe(no_mangle)]
pub extern "C" fn solo5_clock_monotonic() -> Solo5Time {
    bindings().monotonic()
}

/// `solo5_clock_wall`.
#[unsafe(no_mangle)]
pub extern "C" fn solo5_clock_wall() -> Solo5Time {
    bindings().wall()
}

/// `solo5_yield`.
///
/// # Safety
///
/// `ready_set` is null or points to a writable `solo5_handle_set_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn solo5_yield(deadline: Solo5Time, ready_set: *mut Solo5HandleSet) {
    let ready = bindings().yield_until(deadline);
    if !ready_set.is_null() {
        // SAFETY: writable (contract).
        unsafe { ready_set.write(ready) };
    }
}

/// The image's TLS template, from Solo5's linker script.
fn tls_layout() -> TlsLayout {
    TlsLayout {
        tdata: symbol!(_stdata),
        tdata_len: symbol!(_ltdata),
        tbss_len: symbol!(_ltbss),
    }
}

/// `solo5_tls_size`.
#[unsafe(no_mangle)]
pub extern "C" fn solo5_tls_size() -> usize {
    tls_layout().size() as usize
}

/// `solo5_tls_tp_offset`.
#[unsafe(no_mangle)]
pub extern "C" fn solo5_tls_tp_offset(tls: usize) -> usize {
    tls_layout().tp_offset(tls as u64) as usize
}

/// `solo5_tls_init`.
///
/// # Safety
///
/// `tls` is 0 or points to `solo5_tls_size()` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn solo5_tls_init(tls: usize) -> Solo5Result {
    // SAFETY: the block is writable (contract); `.tdata` is the image's, readable and
    // apart from any block the application allocated.
    match unsafe { tls_layout().init(tls as u64) } {
        Ok(()) => Solo5Result::Ok,
        Err(e) => e,
    }
}

/// `solo5_set_tls_base`: FS base (`wrmsr` IA32_FS_BASE; the policy allows the MSR).
#[unsafe(no_mangle)]
pub extern "C" fn solo5_set_tls_base(base: usize) -> Solo5Result {
    const IA32_FS_BASE: u32 = 0xc000_0100;
    let base = base as u64;
    if !is_canonical(base) {
        return Solo5Result::Einval;
    }
    // SAFETY: writes FS base with a canonical address (no #GP); the policy grants the
    // MSR (as for Solo5's own bindings). Only FS-relative accesses of the application
    // change meaning, which is what it asked for.
    unsafe {
        core::arch::asm!(
            "wrmsr",
            in("ecx") IA32_FS_BASE,
            in("eax") base as u32,
            in("edx") (base >> 32) as u32,
            options(nostack, preserves_flags),
        )
    };
    Solo5Result::Ok
}

/// A device name from C: at most [`MFT_NAME_SIZE`] bytes are read, up to the NUL; a
/// longer name (which no manifest entry has) is `None`, as is a null pointer.
///
/// # Safety
///
/// `name` is null or a NUL-terminated string.
unsafe fn c_name<'a>(name: *const c_char) -> Option<&'a [u8]> {
    if name.is_null() {
        return None;
    }
    let name = name.cast::<u8>();
    // SAFETY: reads byte by byte up to and including the NUL, which the string has
    // (contract); it stops there.
    let len = (0..MFT_NAME_SIZE).find(|&i| unsafe { name.add(i).read() } == 0)?;
    // SAFETY: the `len` bytes before the NUL are readable (just read).
    Some(unsafe { core::slice::from_raw_parts(name, len) })
}

/// The two `solo5_*_acquire` functions: the device `name` from `acquire`, its handle
/// and information written through `handle` and `info`; SOLO5_R_EINVAL for a bad name
/// or a null pointer.
///
/// # Safety
///
/// `name` is a NUL-terminated string; `handle` and `info` are null or writable.
unsafe fn acquire<I>(
    name: *const c_char,
    handle: *mut Solo5Handle,
    info: *mut I,
    acquire: impl FnOnce(&[u8]) -> Result<(Solo5Handle, I), Solo5Result>,
) -> Solo5Result {
    // SAFETY: forwarded contract.
    let Some(name) = (unsafe { c_name(name) }) else {
        return Solo5Result::Einval;
    };
    if handle.is_null() || info.is_null() {
        return Solo5Result::Einval;
    }
    match acquire(name) {
        Ok((h, i)) => {
            // SAFETY: both writable (contract, checked non-null).
            unsafe {
                handle.write(h);
                info.write(i);
            }
            Solo5Result::Ok
        }
        Err(e) => e,
    }
}

/// `solo5_net_acquire`.
///
/// # Safety
///
/// `name` is a NUL-terminated string; `handle` and `info` are null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn solo5_net_acquire(
    name: *const c_char,
    handle: *mut Solo5Handle,
    info: *mut Solo5NetInfo,
) -> Solo5Result {
    // SAFETY: forwarded contract.
    unsafe { acquire(name, handle, info, |name| bindings().net_acquire(name)) }
}

/// `solo5_net_write`.
///
/// # Safety
///
/// `buf` points to `size` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn solo5_net_write(
    handle: Solo5Handle,
    buf: *const u8,
    size: usize,
) -> Solo5Result {
    if buf.is_null() || size > muen_device::FRAME_MAX {
        return Solo5Result::Einval;
    }
    // SAFETY: `size` (at most 1514) readable bytes (contract).
    let frame = unsafe { core::slice::from_raw_parts(buf, size) };
    match bindings().net_write(handle, frame) {
        Ok(()) => Solo5Result::Ok,
        Err(e) => e,
    }
}

/// `solo5_net_read`: never writes more than `min(size, 1514)` bytes to `buf`.
///
/// # Safety
///
/// `buf` points to `size` writable bytes; `read_size` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn solo5_net_read(
    handle: Solo5Handle,
    buf: *mut u8,
    size: usize,
    read_size: *mut usize,
) -> Solo5Result {
    if buf.is_null() || read_size.is_null() {
        return Solo5Result::Einval;
    }
    // Only the first 1514 bytes can ever be written: view no more.
    let len = size.min(muen_device::FRAME_MAX);
    // SAFETY: `len` <= `size` writable bytes (contract), not aliased during the call.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    match bindings().net_read(handle, buf) {
        Ok(n) => {
            // SAFETY: writable (contract, checked non-null).
            unsafe { read_size.write(n) };
            Solo5Result::Ok
        }
        Err(e) => e,
    }
}

/// `solo5_block_acquire`.
///
/// # Safety
///
/// `name` is a NUL-terminated string; `handle` and `info` are null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn solo5_block_acquire(
    name: *const c_char,
    handle: *mut Solo5Handle,
    info: *mut Solo5BlockInfo,
) -> Solo5Result {
    // SAFETY: forwarded contract.
    unsafe { acquire(name, handle, info, |name| bindings().block_acquire(name)) }
}

/// `solo5_block_write`.
///
/// # Safety
///
/// `buf` points to `size` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn solo5_block_write(
    handle: Solo5Handle,
    offset: Solo5Offset,
    buf: *const u8,
    size: usize,
) -> Solo5Result {
    if buf.is_null() || size > isize::MAX as usize {
        return Solo5Result::Einval;
    }
    // SAFETY: `size` readable bytes (contract).
    let data = unsafe { core::slice::from_raw_parts(buf, size) };
    match bindings().block_write(handle, offset, data) {
        Ok(()) => Solo5Result::Ok,
        Err(e) => e,
    }
}

/// `solo5_block_read`.
///
/// # Safety
///
/// `buf` points to `size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn solo5_block_read(
    handle: Solo5Handle,
    offset: Solo5Offset,
    buf: *mut u8,
    size: usize,
) -> Solo5Result {
    if buf.is_null() || size > isize::MAX as usize {
        return Solo5Result::Einval;
    }
    // SAFETY: `size` writable bytes (contract), not aliased during the call.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf, size) };
    match bindings().block_read(handle, offset, buf) {
        Ok(()) => Solo5Result::Ok,
        Err(e) => e,
    }
}
