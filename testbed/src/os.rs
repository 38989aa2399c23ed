//! The few Linux calls the testbed makes, wrapped so that the rest of the crate stays
//! free of `unsafe`: event counters, `ppoll`, signal descriptors, socket pairs.
//!
//! Every descriptor is created close-on-exec; only the two the subject must inherit are
//! duplicated onto fds 3 and 4 in the child (see [`crate::subject`]).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Turns a C return value into a `Result` (`-1` means `errno`).
pub fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Turns a C size return value into a `Result`.
pub fn cvt_size(ret: isize) -> io::Result<usize> {
    usize::try_from(ret).map_err(|_| io::Error::last_os_error())
}

/// Takes ownership of a descriptor a successful call returned.
fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    let fd = cvt(fd)?;
    // SAFETY: the call just created `fd` and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A counter that one thread bumps to wake another that polls it (`eventfd`).
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A new, non-blocking counter at 0.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain system call without pointers.
        owned(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) }).map(EventFd)
    }

    /// Makes the descriptor readable (adds 1 to the counter).
    pub fn notify(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live local buffer. A full counter (EAGAIN after
        // 2^64 - 2 notifications) is readable anyway, so the result does not matter.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    /// Resets the counter; returns whether it was non-zero.
    pub fn clear(&self) -> bool {
        let mut value = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live local buffer.
        let n = unsafe { libc::read(self.0.as_raw_fd(), value.as_mut_ptr().cast(), value.len()) };
        n == 8
    }

    /// The descriptor, for polling.
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// `pollfd` for `fd` waiting for `events`.
pub fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Waits until one of `fds` is ready or `timeout` passes (`None`: no timeout).
/// Returns the number of ready descriptors; an interrupted wait returns 0.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(t.subsec_nanos()),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `fds` is a live, exclusively borrowed slice of `pollfd`; `ts_ptr` is null or
    // points to a live local; a null signal mask keeps the current mask.
    let n = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            ts_ptr,
            std::ptr::null(),
        )
    };
    match cvt(n) {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// Whether `ready()` became true within `limit`, watched by spinning (for waits too
/// short for a sleep and a wake-up).
pub fn spin_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        if ready() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        for _ in 0..32 {
            std::hint::spin_loop();
        }
    }
}

/// Whether `revents` of a polled descriptor says it is readable (or hung up).
pub fn readable(p: &libc::pollfd) -> bool {
    p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
}

/// A connected pair of `SOCK_SEQPACKET` sockets (the hosted control socket).
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a live array of two ints, as `socketpair` expects.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends one datagram without blocking. `Ok(false)`: the socket's buffer is full.
pub fn send_nonblocking(fd: RawFd, bytes: &[u8]) -> io::Result<bool> {
    // SAFETY: sends from a live slice; MSG_NOSIGNAL turns a closed peer into EPIPE
    // instead of SIGPIPE.
    let n = unsafe {
        libc::send(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    match cvt_size(n) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// What [`recv_nonblocking`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// A datagram of this length (the buffer holds its first bytes; a longer datagram
    /// reports its full length).
    Datagram(usize),
    /// Nothing queued.
    Empty,
    /// The peer closed its end.
    Closed,
}

/// Receives one datagram without blocking.
pub fn recv_nonblocking(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    // SAFETY: receives into a live, exclusively borrowed buffer of the given length.
    // MSG_TRUNC makes the call return the real datagram length.
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_TRUNC,
        )
    };
    match cvt_size(n) {
        Ok(0) => Ok(Received::Closed),
        Ok(n) => Ok(Received::Datagram(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Received::Empty),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(Received::Closed),
        Err(e) => Err(e),
    }
}

/// The signals the testbed handles itself: the subject's end and requests to stop.
pub const HANDLED_SIGNALS: [libc::c_int; 5] = [
    libc::SIGCHLD,
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGUSR1,
];

/// A descriptor that reports [`HANDLED_SIGNALS`] (`signalfd`).
///
/// The signals are blocked in the calling thread and in every thread it starts
/// afterwards, so create it before starting threads. The subject gets an empty mask
/// (see [`crate::subject`]).
#[derive(Debug)]
pub struct SignalFd(OwnedFd);

impl SignalFd {
    /// Blocks the signals and opens the descriptor.
    pub fn new() -> io::Result<Self> {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: `sigemptyset` initialises the set; `sigaddset` and `pthread_sigmask`
        // get a pointer to that initialised set; the old mask is not wanted (null).
        let set = unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            let mut set = set.assume_init();
            for s in HANDLED_SIGNALS {
                libc::sigaddset(&mut set, s);
            }
            let err = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if err != 0 {
                return Err(io::Error::from_raw_os_error(err));
            }
            set
        };
        // SAFETY: `set` is an initialised signal set; -1 asks for a new descriptor.
        owned(unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) })
            .map(SignalFd)
    }

    /// The next pending signal, if any.
    pub fn next(&self) -> Option<libc::c_int> {
        let mut info = std::mem::MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads at most `size` bytes into `info`.
        let n = unsafe { libc::read(self.0.as_raw_fd(), info.as_mut_ptr().cast(), size) };
        if usize::try_from(n).ok() != Some(size) {
            return None;
        }
        // SAFETY: the kernel wrote a whole `signalfd_siginfo`.
        let info = unsafe { info.assume_init() };
        libc::c_int::try_from(info.ssi_signo).ok()
    }

    /// The descriptor, for polling.
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// The name of signal `signo` (`SIGSEGV`, ...), or its number.
pub fn signal_name(signo: libc::c_int) -> String {
    let name = match signo {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {signo}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventfd_wakes_a_poller_until_cleared() {
        let e = EventFd::new().unwrap();
        let mut fds = [pollfd(e.fd(), libc::POLLIN)];
        assert_eq!(poll(&mut fds, Some(Duration::ZERO)).unwrap(), 0);
        e.notify();
        e.notify();
        assert_eq!(poll(&mut fds, Some(Duration::ZERO)).unwrap(), 1);
        assert!(readable(&fds[0]));
        assert!(e.clear());
        assert!(!e.clear());
        assert_eq!(poll(&mut fds, Some(Duration::ZERO)).unwrap(), 0);
    }

    #[test]
    fn seqpacket_keeps_datagram_boundaries_and_reports_close() {
        let (a, b) = seqpacket_pair().unwrap();
        assert!(send_nonblocking(a.as_raw_fd(), &[1, 2]).unwrap());
        assert!(send_nonblocking(a.as_raw_fd(), &[3, 4, 5]).unwrap());
        let mut buf = [0u8; 2];
        assert_eq!(
            recv_nonblocking(b.as_raw_fd(), &mut buf).unwrap(),
            Received::Datagram(2)
        );
        assert_eq!(buf, [1, 2]);
        // A longer datagram reports its real length (and is consumed whole).
        assert_eq!(
            recv_nonblocking(b.as_raw_fd(), &mut buf).unwrap(),
            Received::Datagram(3)
        );
        assert_eq!(
            recv_nonblocking(b.as_raw_fd(), &mut buf).unwrap(),
            Received::Empty
        );
        drop(a);
        assert_eq!(
            recv_nonblocking(b.as_raw_fd(), &mut buf).unwrap(),
            Received::Closed
        );
    }

    #[test]
    fn a_full_socket_does_not_block_the_sender() {
        let (a, _b) = seqpacket_pair().unwrap();
        let mut sent = 0;
        while send_nonblocking(a.as_raw_fd(), &[3, 33]).unwrap() {
            sent += 1;
            assert!(sent < 10_000_000, "the socket never filled up");
        }
        assert!(sent > 10);
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(libc::SIGSEGV), "SIGSEGV");
        assert_eq!(signal_name(64), "signal 64");
    }
}
