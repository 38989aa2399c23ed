//! The hosted platform: the subject is a Linux process run by the testbed.
//!
//! This is the subject's side of `docs/hosted.md`:
//!
//! - [`Hosted::init`], before the application's `main`: reads the memory map at
//!   offset 0 of the memory file (fd 3), validates it (`MemMap::parse`), checks that
//!   every entry lies inside the file, maps every entry with
//!   `mmap(address, size, prot, MAP_SHARED | MAP_FIXED_NOREPLACE, 3, offset)` and
//!   closes fd 3. The control socket (fd 4) must be a `SOCK_SEQPACKET` socket. The
//!   sinfo page must be mapped and must name only regions the map mapped (writable
//!   where it says so), since the runtime trusts its addresses.
//! - events: `Event(n)` datagrams; halting: `Halt`, then a blocking `recv`;
//!   vectors: `Vector(v)` datagrams, drained (non-blocking) into the pending bitmap
//!   whenever the runtime looks for vectors.
//! - any failure (a missing descriptor, a bad map, a mapping that fails, the testbed
//!   closing the socket or sending something that is not a message for a subject):
//!   one line on stderr naming the problem, exit status 125. `main` never runs with
//!   a partial world.

use core::fmt::{self, Write as _};

use muen_abi::addr::VirtAddr;
use muen_abi::layout::SINFO;
use muen_abi::names::Name;
use muen_abi::time::Tsc;
use muen_channel::{Event, EventHook, Vector};
use muen_sinfo::{ResourceData, SubjectInfo};
use muen_testbed_abi::hosted::{
    MemMap, MemMapError, Message, CONTROL_FD, ENTRY_EXECUTABLE, ENTRY_WRITABLE, MEMMAP_SIZE,
    MEMORY_FD,
};

use super::machine::{Platform, VectorSet, PENDING};

/// Exit status of a subject whose world is broken (see `docs/hosted.md`).
pub const EXIT_BROKEN_WORLD: i32 = 125;

/// The hosted platform (a zero-sized handle; the descriptors are fixed).
#[derive(Clone, Copy, Debug)]
pub struct Hosted(());

/// Why the hosted world could not be set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostedError {
    /// fd 3 is not open.
    NoMemoryFile {
        /// `errno` of `fstat`.
        errno: i32,
    },
    /// fd 4 is not open or not a socket.
    NoControlSocket {
        /// `errno` of `getsockopt`.
        errno: i32,
    },
    /// fd 4 is a socket of another type than `SOCK_SEQPACKET`.
    ControlNotSeqpacket {
        /// The socket type found.
        found: i32,
    },
    /// The memory file is shorter than the memory map.
    MemoryFileTooSmall {
        /// Its size.
        size: u64,
    },
    /// Mapping the memory map itself failed.
    MapHeader {
        /// `errno` of `mmap`.
        errno: i32,
    },
    /// The memory map is invalid.
    BadMap(MemMapError),
    /// An entry reaches past the end of the memory file.
    EntryBeyondFile {
        /// Entry index.
        index: usize,
        /// Its offset.
        offset: u64,
        /// Its size.
        size: u64,
        /// The file size.
        file_size: u64,
    },
    /// Mapping an entry failed (for example `EEXIST`: the address is taken).
    MapFailed {
        /// Entry index.
        index: usize,
        /// Its address.
        address: VirtAddr,
        /// Its size.
        size: u64,
        /// `errno` of `mmap`.
        errno: i32,
    },
    /// The kernel mapped an entry elsewhere (a kernel without `MAP_FIXED_NOREPLACE`).
    MapMoved {
        /// Entry index.
        index: usize,
        /// The address asked for.
        address: VirtAddr,
    },
    /// No entry maps the sinfo page at its fixed address.
    NoSinfo,
    /// The sinfo page is invalid.
    BadSinfo(muen_sinfo::Error),
    /// A memory region the sinfo page names is not mapped (or not writable although the
    /// page says it is): the runtime would fault when it used it.
    RegionNotMapped {
        /// Its logical name.
        name: Name,
        /// Its address.
        address: VirtAddr,
        /// Its size.
        size: u64,
        /// Whether the page says it is writable.
        writable: bool,
    },
}

fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EBADF => "EBADF",
        libc::EEXIST => "EEXIST",
        libc::ENOMEM => "ENOMEM",
        libc::EINVAL => "EINVAL",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::ENODEV => "ENODEV",
        _ => "",
    }
}

struct Errno(i32);

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "errno {} {}", self.0, errno_name(self.0))
    }
}

impl fmt::Display for HostedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HostedError::NoMemoryFile { errno } => write!(
                f,
                "fd {MEMORY_FD} (the memory file) is not open ({}); run the subject with muen-testbed",
                Errno(errno)
            ),
            HostedError::NoControlSocket { errno } => write!(
                f,
                "fd {CONTROL_FD} (the control socket) is not an open socket ({})",
                Errno(errno)
            ),
            HostedError::ControlNotSeqpacket { found } => write!(
                f,
                "fd {CONTROL_FD} (the control socket) has socket type {found}, not SOCK_SEQPACKET"
            ),
            HostedError::MemoryFileTooSmall { size } => write!(
                f,
                "fd {MEMORY_FD}: the memory file has {size} bytes, less than the {MEMMAP_SIZE}-byte memory map"
            ),
            HostedError::MapHeader { errno } => {
                write!(f, "fd {MEMORY_FD}: cannot map the memory map ({})", Errno(errno))
            }
            HostedError::BadMap(e) => write!(f, "fd {MEMORY_FD}: invalid memory map: {e:?}"),
            HostedError::EntryBeyondFile {
                index,
                offset,
                size,
                file_size,
            } => write!(
                f,
                "memory map entry {index}: {size:#x} bytes at offset {offset:#x} reach past the end of the {file_size:#x}-byte memory file"
            ),
            HostedError::MapFailed {
                index,
                address,
                size,
                errno,
            } => write!(
                f,
                "memory map entry {index}: cannot map {size:#x} bytes at {address:#x} ({})",
                Errno(errno)
            ),
            HostedError::MapMoved { index, address } => write!(
                f,
                "memory map entry {index}: the kernel did not map it at {address:#x} (no MAP_FIXED_NOREPLACE?)"
            ),
            HostedError::NoSinfo => write!(
                f,
                "the memory map has no entry for the sinfo page at {:#x}",
                SINFO.address
            ),
            HostedError::BadSinfo(e) => write!(f, "sinfo page: {e}"),
            HostedError::RegionNotMapped {
                ref name,
                address,
                size,
                writable,
            } => write!(
                f,
                "sinfo region `{name}`: {size:#x} bytes at {address:#x} are not mapped{} by the memory map",
                if writable { " writable" } else { "" }
            ),
        }
    }
}

impl core::error::Error for HostedError {}

fn errno() -> i32 {
    // SAFETY: `__errno_location` returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// Writes `muen-subject: <message>` as one line on stderr and exits with status 125.
pub(crate) fn fatal(message: fmt::Arguments<'_>) -> ! {
    let mut line = Line::new();
    let _ = write!(line, "muen-subject: {message}");
    line.finish();
    // SAFETY: `write` of a private buffer to fd 2; a failure cannot be reported.
    unsafe { libc::write(2, line.buf.as_ptr().cast(), line.len) };
    // SAFETY: ends the process; nothing is left to clean up.
    unsafe { libc::_exit(EXIT_BROKEN_WORLD) }
}

/// Writes `message` and a newline to stderr (used for panics, besides the debug log).
pub(crate) fn eprint(message: fmt::Arguments<'_>) {
    let mut line = Line::new();
    let _ = write!(line, "{message}");
    line.finish();
    // SAFETY: as in `fatal`.
    unsafe { libc::write(2, line.buf.as_ptr().cast(), line.len) };
}

/// A line of at most 255 bytes on the stack (longer text is cut).
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Line {
            buf: [0; 256],
            len: 0,
        }
    }

    fn finish(&mut self) {
        self.len = self.len.min(self.buf.len() - 1);
        self.buf[self.len] = b'\n';
        self.len += 1;
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - 1 - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Maps the world described by the memory file and checks the control socket.
///
/// # Safety
///
/// Called once, before anything uses the addresses the memory map names; the
/// process's own memory must not be at those addresses (`MAP_FIXED_NOREPLACE` refuses
/// to replace it, so the worst case is an error).
pub unsafe fn map_world() -> Result<(), HostedError> {
    // SAFETY: fstat writes only into `st`.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(MEMORY_FD, &mut st) } != 0 {
        return Err(HostedError::NoMemoryFile { errno: errno() });
    }
    let mut kind: libc::c_int = 0;
    let mut len = core::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `kind`.
    let r = unsafe {
        libc::getsockopt(
            CONTROL_FD,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&raw mut kind).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(HostedError::NoControlSocket { errno: errno() });
    }
    if kind != libc::SOCK_SEQPACKET {
        return Err(HostedError::ControlNotSeqpacket { found: kind });
    }
    let file_size = st.st_size as u64;
    if file_size < MEMMAP_SIZE {
        return Err(HostedError::MemoryFileTooSmall { size: file_size });
    }
    // SAFETY: a fresh read-only mapping of the map's bytes, placed by the kernel.
    let header = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            MEMMAP_SIZE as usize,
            libc::PROT_READ,
            libc::MAP_SHARED,
            MEMORY_FD,
            0,
        )
    };
    if header == libc::MAP_FAILED {
        return Err(HostedError::MapHeader { errno: errno() });
    }
    // SAFETY: the mapping is MEMMAP_SIZE readable bytes inside the file (checked
    // above), alive until the munmap below. The testbed does not change the map while
    // the subject starts (it wrote it before starting us).
    let bytes = unsafe { core::slice::from_raw_parts(header.cast::<u8>(), MEMMAP_SIZE as usize) };
    let result = map_entries(bytes, file_size);
    // SAFETY: unmaps the mapping made above; `bytes` is not used after this.
    unsafe { libc::munmap(header, MEMMAP_SIZE as usize) };
    result?;
    // SAFETY: closing our own descriptor; every mapping keeps the file alive.
    unsafe { libc::close(MEMORY_FD) };
    Ok(())
}

fn map_entries(bytes: &[u8], file_size: u64) -> Result<(), HostedError> {
    let map = MemMap::parse(bytes).map_err(HostedError::BadMap)?;
    for (index, e) in map.entries().iter().enumerate() {
        let (address, offset, size, flags) =
            (e.address.get(), e.offset.get(), e.size.get(), e.flags.get());
        if offset.checked_add(size).is_none_or(|end| end > file_size) {
            return Err(HostedError::EntryBeyondFile {
                index,
                offset,
                size,
                file_size,
            });
        }
        let mut prot = libc::PROT_READ;
        if flags & ENTRY_WRITABLE != 0 {
            prot |= libc::PROT_WRITE;
        }
        if flags & ENTRY_EXECUTABLE != 0 {
            prot |= libc::PROT_EXEC;
        }
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping, so this can
        // only add memory at an address nothing in the process uses.
        let got = unsafe {
            libc::mmap(
                address as *mut libc::c_void,
                size as usize,
                prot,
                libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE,
                MEMORY_FD,
                offset as libc::off_t,
            )
        };
        if got == libc::MAP_FAILED {
            return Err(HostedError::MapFailed {
                index,
                address: VirtAddr::new(address),
                size,
                errno: errno(),
            });
        }
        if got as u64 != address {
            // SAFETY: unmaps what the kernel placed elsewhere; nothing uses it.
            unsafe { libc::munmap(got, size as usize) };
            return Err(HostedError::MapMoved {
                index,
                address: VirtAddr::new(address),
            });
        }
    }
    check_sinfo(&map)
}

/// Checks that the sinfo page is mapped and that every memory region it names is
/// mapped (writable where it says so): the runtime trusts the page's addresses.
fn check_sinfo(map: &MemMap<'_>) -> Result<(), HostedError> {
    let mapped = |address: u64, size: u64, writable: bool| {
        map.entries().iter().any(|e| {
            let (a, s) = (e.address.get(), e.size.get());
            address >= a
                && address.checked_add(size).is_some_and(|end| end <= a + s)
                && (!writable || e.flags.get() & ENTRY_WRITABLE != 0)
        })
    };
    if !mapped(SINFO.address.as_u64(), SINFO.size, false) {
        return Err(HostedError::NoSinfo);
    }
    // SAFETY: the page was just mapped read-only at its fixed address from the
    // memory file, for the rest of the process, and nothing writes it.
    let info = unsafe { SubjectInfo::from_fixed_address() }.map_err(HostedError::BadSinfo)?;
    for r in info.resources() {
        if let ResourceData::Memory(m) = r.data {
            if !mapped(m.address, m.size, m.writable()) {
                let mut name = Name::new();
                let _ = write!(name, "{}", r.name);
                return Err(HostedError::RegionNotMapped {
                    name,
                    address: VirtAddr::new(m.address),
                    size: m.size,
                    writable: m.writable(),
                });
            }
        }
    }
    Ok(())
}

impl Hosted {
    /// Maps the world (see [`map_world`]) and returns the platform handle; on failure
    /// reports the problem on stderr and exits with status 125.
    ///
    /// # Safety
    ///
    /// As for [`map_world`]; called once, before `main`.
    pub unsafe fn init() -> Self {
        // SAFETY: forwarded contract.
        if let Err(e) = unsafe { map_world() } {
            fatal(format_args!("{e}"));
        }
        Hosted(())
    }

    /// The handle, for code that runs after [`Hosted::init`] without access to the
    /// runtime (the panic handler).
    pub(crate) const fn assume_initialised() -> Self {
        Hosted(())
    }

    /// Reads the TSC (the log's timestamp source; [`Platform::tsc`] gives a [`Tsc`]).
    pub(crate) fn rdtsc() -> u64 {
        // SAFETY: `rdtsc` is allowed in user mode on Linux and has no side effects.
        #[allow(unused_unsafe)]
        unsafe {
            core::arch::x86_64::_rdtsc()
        }
    }
}

fn send(message: Message) {
    let bytes = message.encode();
    loop {
        // SAFETY: sends two bytes from a private buffer.
        let n = unsafe {
            libc::send(
                CONTROL_FD,
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n == bytes.len() as isize {
            return;
        }
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        fatal(format_args!(
            "control socket: cannot send {message:?} ({}); the testbed is gone",
            Errno(errno())
        ));
    }
}

/// Receives one message; `None` if `blocking` is false and none is queued.
fn receive(blocking: bool) -> Option<u8> {
    let mut buf = [0u8; 16];
    let flags = if blocking { 0 } else { libc::MSG_DONTWAIT };
    loop {
        // SAFETY: receives at most `buf.len()` bytes into a private buffer.
        let n = unsafe { libc::recv(CONTROL_FD, buf.as_mut_ptr().cast(), buf.len(), flags) };
        if n > 0 {
            // A datagram longer than the buffer is cut by the kernel and is no message.
            return match Message::decode(&buf[..n as usize]) {
                Some(Message::Vector(v)) => Some(v),
                other => fatal(format_args!(
                    "control socket: unexpected datagram {:02x?} ({other:?}); only Vector messages go to a subject",
                    &buf[..n as usize]
                )),
            };
        }
        if n == 0 {
            fatal(format_args!(
                "control socket: end of file; the testbed is gone"
            ));
        }
        match errno() {
            libc::EINTR => continue,
            libc::EAGAIN if !blocking => return None,
            e => fatal(format_args!(
                "control socket: receive failed ({})",
                Errno(e)
            )),
        }
    }
}

/// Moves every queued `Vector` message into the pending set.
fn drain() {
    while let Some(v) = receive(false) {
        PENDING.set(Vector(v));
    }
}

impl EventHook for Hosted {
    fn trigger(&self, event: Event) {
        send(Message::Event(event.number()));
    }
}

impl Platform for Hosted {
    fn tsc(&self) -> Tsc {
        Tsc::from_ticks(Hosted::rdtsc())
    }

    fn pause(&self) {
        core::hint::spin_loop()
    }

    fn take_pending(&self) -> VectorSet {
        drain();
        PENDING.take()
    }

    fn halt_unless(&self, ready: &mut dyn FnMut() -> bool) -> bool {
        // Vectors that arrive after this drain stay queued in the socket, so the
        // blocking receive below returns at once: none is lost between the check and
        // the sleep.
        drain();
        if ready() || PENDING.any() {
            return false;
        }
        send(Message::Halt);
        if let Some(v) = receive(true) {
            PENDING.set(Vector(v));
        }
        drain();
        true
    }

    fn exit(&self, code: i32) -> ! {
        // SAFETY: ends the process; a no_std subject has no buffers to flush.
        unsafe { libc::_exit(code) }
    }
}
