//! A minimal hosted platform written straight from `docs/hosted.md`, so that the
//! testbed can be tested without the runtime: map the memory file (fd 3) as its map
//! says, talk to the testbed over the control socket (fd 4), and find everything else
//! in the sinfo page.

use std::fmt::Write as _;
use std::os::fd::RawFd;
use std::sync::Mutex;

use muen_abi::layout::SINFO;
use muen_channel::protocol::debuglog::LogWriter;
use muen_channel::{epoch_from, Region, RegionMut};
use muen_sinfo::{SchedulingInfo, SubjectInfo, TimedEvent};
use muen_testbed_abi::hosted::{
    MemMap, Message, CONTROL_FD, ENTRY_EXECUTABLE, ENTRY_WRITABLE, MEMMAP_SIZE, MEMORY_FD,
};

/// Prints one line on stderr and exits with 125, as the runtime does when its world is
/// broken.
pub fn die(message: &str) -> ! {
    eprintln!("testbed-subject: {message}");
    std::process::exit(125)
}

/// The current TSC value.
pub fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` has no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

type Clock = fn() -> u64;

/// The debug log, shared with the panic hook.
static LOG: Mutex<Option<LogWriter<'static, Clock>>> = Mutex::new(None);

/// Writes to the debug log (a line ends at `\n`).
pub fn log_str(text: &str) {
    if let Ok(mut log) = LOG.lock() {
        if let Some(log) = log.as_mut() {
            let _ = log.write_str(text);
        }
    }
}

/// `log!("...")`: a formatted line in the debug log.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::hosted::log_str(&format!("{}\n", format_args!($($arg)*)))
    };
}

fn flush_log() {
    // `try_lock`: a panic while logging must not deadlock its own report.
    if let Ok(mut log) = LOG.try_lock() {
        if let Some(log) = log.as_mut() {
            log.flush();
        }
    }
}

/// The platform: the sinfo page, the control socket and the pending vectors.
pub struct Platform {
    /// The subject info page.
    pub info: SubjectInfo<'static>,
    socket: RawFd,
    pending: [u64; 4],
}

fn scheduling_info() -> SchedulingInfo<'static> {
    // SAFETY: `start` mapped the scheduling info page before any clock reading.
    unsafe { SchedulingInfo::from_fixed_address() }
}

fn clock() -> u64 {
    scheduling_info().tsc_schedule_start().ticks()
}

/// Maps the world and opens the log; call once, first thing.
pub fn start() -> Platform {
    let mut head = vec![0u8; MEMMAP_SIZE as usize];
    // SAFETY: reads into a live buffer of its length.
    let n = unsafe { libc::pread(MEMORY_FD, head.as_mut_ptr().cast(), head.len(), 0) };
    if n != head.len() as isize {
        die(&format!(
            "fd {MEMORY_FD}: cannot read the memory map: {}",
            std::io::Error::last_os_error()
        ));
    }
    let map = MemMap::parse(&head).unwrap_or_else(|e| die(&format!("bad memory map: {e:?}")));
    for e in map.entries() {
        let mut prot = libc::PROT_READ;
        if e.flags.get() & ENTRY_WRITABLE != 0 {
            prot |= libc::PROT_WRITE;
        }
        if e.flags.get() & ENTRY_EXECUTABLE != 0 {
            prot |= libc::PROT_EXEC;
        }
        let address = e.address.get() as usize as *mut libc::c_void;
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; the result is
        // checked against the wanted address.
        let got = unsafe {
            libc::mmap(
                address,
                e.size.get() as usize,
                prot,
                libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE,
                MEMORY_FD,
                e.offset.get() as libc::off_t,
            )
        };
        if got != address {
            die(&format!(
                "mapping {:#x}+{:#x}: {}",
                e.address.get(),
                e.size.get(),
                std::io::Error::last_os_error()
            ));
        }
    }
    // SAFETY: fd 3 is ours and no longer needed.
    unsafe { libc::close(MEMORY_FD) };
    // SAFETY: the sinfo page is mapped read-only at SINFO for the rest of the program and
    // nobody changes it after the subject started.
    let page = unsafe {
        std::slice::from_raw_parts(
            SINFO.address.as_u64() as usize as *const u8,
            muen_sinfo::layout::PAGE_SIZE,
        )
    };
    let info = SubjectInfo::new_checked(page).unwrap_or_else(|e| die(&format!("sinfo: {e}")));
    let platform = Platform {
        info,
        socket: CONTROL_FD,
        pending: [0; 4],
    };
    if let Some(log) = platform.info.channel("debuglog") {
        let region = platform.region_mut("debuglog", log.address, log.size);
        let writer = LogWriter::new(region, epoch_from(rdtsc()), clock as Clock)
            .unwrap_or_else(|e| die(&format!("debuglog: {e}")));
        *LOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(writer);
    }
    let exit_event = platform.info.event("exit");
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        if let Ok(mut log) = LOG.try_lock() {
            if let Some(log) = log.as_mut() {
                let _ = writeln!(log, "panicked at {location}: {message}");
                log.flush();
            }
        }
        if let Some(e) = exit_event {
            send(CONTROL_FD, Message::Event(e));
        }
        std::process::exit(101);
    }));
    platform
}

fn send(socket: RawFd, message: Message) {
    let bytes = message.encode();
    // SAFETY: sends from a live array; MSG_NOSIGNAL turns a closed testbed into EPIPE.
    let n = unsafe {
        libc::send(
            socket,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    if n != 2 {
        die(&format!(
            "control socket: {}",
            std::io::Error::last_os_error()
        ));
    }
}

impl Platform {
    fn region_mut(&self, name: &str, address: u64, size: u64) -> RegionMut<'static> {
        // SAFETY: `start` mapped this writable region for the rest of the program; it is
        // accessed only through muen-channel handles.
        unsafe { RegionMut::new(address as usize as *mut u8, size as usize) }
            .unwrap_or_else(|e| die(&format!("{name}: {e}")))
    }

    /// The writable region `name` (a channel this subject writes, or a data buffer).
    pub fn writable(&self, name: &str) -> RegionMut<'static> {
        let m = self
            .info
            .memory(name)
            .filter(|m| m.writable())
            .unwrap_or_else(|| die(&format!("no writable region `{name}`")));
        self.region_mut(name, m.address, m.size)
    }

    /// The readable region `name` (a channel this subject reads).
    pub fn readable(&self, name: &str) -> Region<'static> {
        let m = self
            .info
            .memory(name)
            .unwrap_or_else(|| die(&format!("no region `{name}`")));
        // SAFETY: as in `region_mut`, read-only.
        unsafe { Region::new(m.address as usize as *const u8, m.size as usize) }
            .unwrap_or_else(|e| die(&format!("{name}: {e}")))
    }

    /// The name of the first device whose regions end in `suffix` (`|in` for a network
    /// device, `|req` for a block device); dies naming `what` if there is none.
    pub fn device(&self, suffix: &str, what: &str) -> String {
        self.info
            .resources()
            .find_map(|r| {
                r.name
                    .as_str()
                    .ok()
                    .and_then(|n| n.strip_suffix(suffix))
                    .map(String::from)
            })
            .unwrap_or_else(|| die(&format!("no {what}")))
    }

    /// The scheduling info page.
    pub fn scheduling_info(&self) -> SchedulingInfo<'static> {
        scheduling_info()
    }

    /// The timed event page (one view only: the caller keeps it).
    pub fn timed_event(&self) -> TimedEvent<'static> {
        // SAFETY: mapped writable by `start`; callers create one view.
        unsafe { TimedEvent::from_fixed_address() }
    }

    /// `vmcall` with `event`.
    pub fn trigger(&self, event: u8) {
        send(self.socket, Message::Event(event));
    }

    /// Sends arbitrary bytes on the control socket (to test the testbed).
    pub fn send_raw(&self, bytes: &[u8]) {
        // SAFETY: sends from a live slice.
        unsafe {
            libc::send(
                self.socket,
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL,
            )
        };
    }

    /// Moves every queued message into the pending set without blocking.
    pub fn poll_vectors(&mut self) {
        while let Some(m) = self.receive(libc::MSG_DONTWAIT) {
            self.note(m);
        }
    }

    fn note(&mut self, m: Message) {
        if let Message::Vector(v) = m {
            self.pending[usize::from(v / 64)] |= 1 << (v % 64);
        }
    }

    fn receive(&self, flags: libc::c_int) -> Option<Message> {
        let mut buf = [0u8; 2];
        // SAFETY: receives into a live buffer of its length.
        let n = unsafe { libc::recv(self.socket, buf.as_mut_ptr().cast(), buf.len(), flags) };
        if n == 0 {
            die("control socket: the testbed is gone");
        }
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::Interrupted
            {
                return None;
            }
            die(&format!("control socket: {e}"));
        }
        Message::decode(&buf[..n as usize])
    }

    /// Takes vector `v` from the pending set.
    pub fn take(&mut self, v: u8) -> bool {
        let (word, bit) = (usize::from(v / 64), 1u64 << (v % 64));
        let was = self.pending[word] & bit != 0;
        self.pending[word] &= !bit;
        was
    }

    /// `HLT`: tells the testbed, sleeps until a message arrives, then drains the queue.
    pub fn halt(&mut self) {
        send(self.socket, Message::Halt);
        if let Some(m) = self.receive(0) {
            self.note(m);
        }
        self.poll_vectors();
    }

    /// Logs the exit, triggers `exit` and ends the process with `code`.
    pub fn exit(&self, code: i32) -> ! {
        flush_log();
        if let Some(e) = self.info.event("exit") {
            self.trigger(e);
        }
        std::process::exit(code)
    }
}
