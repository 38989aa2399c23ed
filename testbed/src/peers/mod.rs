//! The testbed's peer subjects: what sits at the other end of the subject's channels.
//!
//! - [`log`]: Muen's debug server, reading `debuglog` and printing its lines;
//! - [`net`]: the network bridge between `<dev>|in`/`<dev>|out` and a TAP interface
//!   ([`tap`]);
//! - [`block`]: a muenblock server over an image file.
//!
//! Each peer runs on its own thread. It sleeps in `poll` until the kernel wakes it with
//! the event of the channel it reads, its outside descriptor (TAP) becomes readable, or
//! the run ends ([`Stop`]). It treats everything the subject wrote as untrusted: the
//! channel readers of `muen-channel` validate the rings, and the peers validate every
//! element before acting on it.

pub mod block;
pub mod log;
pub mod net;
pub mod tap;

use std::io;

use crate::os::{self, EventFd};

/// Tells every peer that the run is over: after one last look at their channels they
/// return.
#[derive(Debug)]
pub struct Stop(EventFd);

impl Stop {
    /// A stop signal that is not given yet.
    pub fn new() -> io::Result<Self> {
        EventFd::new().map(Stop)
    }

    /// Gives the signal (it stays given).
    pub fn stop(&self) {
        self.0.notify();
    }

    /// Whether the signal was given (without waiting).
    pub fn given(&self) -> bool {
        let mut fd = [os::pollfd(self.0.fd(), libc::POLLIN)];
        os::poll(&mut fd, Some(std::time::Duration::ZERO)).is_ok() && os::readable(&fd[0])
    }

    /// The descriptor to poll: readable once the signal is given.
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.0.fd()
    }
}
