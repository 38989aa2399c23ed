//! Starting the subject process (or, in QEMU mode, QEMU) and collecting its end.
//!
//! The child gets the memory file on fd 3 and its end of the control socket on fd 4
//! (`muen_testbed_abi::hosted::{MEMORY_FD, CONTROL_FD}`; QEMU gets its four descriptors as fds 3
//! to 6, see `crate::qemu::machine`); every other descriptor except 0, 1 and 2 is
//! closed, stdin is `/dev/null`, the signal mask is empty. It runs in its own
//! process group (a Ctrl-C at the terminal reaches the testbed, which then stops the
//! subject cleanly) and dies with the testbed (`PR_SET_PDEATHSIG`), so no subject
//! outlives a testbed that was killed.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ChildStderr, Command, Stdio};
use std::time::Duration;

use muen_testbed_abi::hosted::{CONTROL_FD, MEMORY_FD};

use crate::os::cvt;

/// How the subject process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

/// The end of the subject process.
#[derive(Clone, Copy, Debug)]
pub struct Exit {
    /// How it ended.
    pub status: Status,
    /// CPU time it spent in user mode.
    pub user: Duration,
    /// CPU time it spent in the kernel.
    pub system: Duration,
}

/// A running subject process.
#[derive(Debug)]
pub struct Subject {
    pid: libc::pid_t,
    reaped: bool,
}

/// A copy of `fd` at a descriptor number of at least 10, close-on-exec, so that moving
/// it to 3 or 4 in the child cannot overwrite the other one.
fn high_copy(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: plain fcntl on a live descriptor.
    let copy = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) })?;
    // SAFETY: `copy` was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// The most descriptors [`Subject::spawn_command`] hands over (fds 3 to 9: below the
/// copies at 10 and up that `high_copy` makes).
pub const MAX_PASSED_FDS: usize = 7;

impl Subject {
    /// Starts `executable` with `args`, handing it `memory` and `control`.
    pub fn spawn(
        executable: &Path,
        args: &[OsString],
        memory: BorrowedFd<'_>,
        control: BorrowedFd<'_>,
    ) -> io::Result<Subject> {
        const _: () = assert!(MEMORY_FD == 3 && CONTROL_FD == 4);
        let mut command = Command::new(executable);
        command.args(args);
        Self::spawn_command(command, &[memory, control]).map(|(subject, _)| subject)
    }

    /// Starts `command` (stdin `/dev/null`, stdout and stderr as the command says)
    /// with `fds[i]` as descriptor `3 + i` (QEMU mode passes the memory file, the ROM,
    /// the doorbell and the monitor socket). Returns the process and its stderr, if the
    /// command piped it.
    pub fn spawn_command(
        mut command: Command,
        fds: &[BorrowedFd<'_>],
    ) -> io::Result<(Subject, Option<ChildStderr>)> {
        if fds.len() > MAX_PASSED_FDS {
            return Err(io::Error::other("too many descriptors for the subject"));
        }
        let copies = fds
            .iter()
            .map(|fd| high_copy(*fd))
            .collect::<io::Result<Vec<OwnedFd>>>()?;
        let mut raw: [RawFd; MAX_PASSED_FDS] = [-1; MAX_PASSED_FDS];
        for (slot, copy) in raw.iter_mut().zip(&copies) {
            *slot = copy.as_raw_fd();
        }
        let count = copies.len();
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        command.stdin(Stdio::null()).process_group(0);
        // SAFETY: the closure runs in the child between fork and exec and only makes
        // async-signal-safe system calls (dup2, syscall, sigprocmask, prctl, getppid,
        // _exit) on plain integers and a local signal set.
        unsafe {
            command.pre_exec(move || {
                // The copies are at 10 or above, so no dup2 overwrites one still needed.
                for (i, &fd) in raw[..count].iter().enumerate() {
                    if libc::dup2(fd, 3 + i as RawFd) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                // Every other descriptor is already close-on-exec (the testbed creates
                // all of them so); this catches any a library opened without the flag.
                // Linux before 5.11 lacks the flag: then the first guarantee stands alone.
                libc::syscall(
                    libc::SYS_close_range,
                    (3 + count) as libc::c_uint,
                    libc::c_uint::MAX,
                    libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
                );
                let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
                libc::sigemptyset(empty.as_mut_ptr());
                libc::sigprocmask(libc::SIG_SETMASK, empty.as_ptr(), std::ptr::null_mut());
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != parent {
                    // The testbed died before the death signal was armed.
                    libc::_exit(125);
                }
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        // The child has its copies; ours close with `copies`.
        drop(copies);
        let stderr = child.stderr.take();
        let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
        // `child` is not waited through std: `try_reap` collects the process with
        // `wait4` to get its resource usage.
        drop(child);
        Ok((Subject { pid, reaped: false }, stderr))
    }

    /// The process id.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// CPU time (user + system, all threads) the process used so far; `None` once it
    /// was collected (its total is in [`Exit`]) or if the kernel does not tell.
    pub fn cpu_time(&self) -> Option<Duration> {
        if self.reaped {
            return None;
        }
        let mut clock: libc::clockid_t = 0;
        // SAFETY: writes the clock id of our (not yet collected) child into the local.
        if unsafe { libc::clock_getcpuclockid(self.pid, &mut clock) } != 0 {
            return None;
        }
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: reads that clock into the live local.
        if unsafe { libc::clock_gettime(clock, &mut t) } != 0 {
            return None;
        }
        Some(
            Duration::from_secs(u64::try_from(t.tv_sec).ok()?)
                + Duration::from_nanos(u64::try_from(t.tv_nsec).ok()?),
        )
    }

    /// Collects the process if it ended.
    pub fn try_reap(&mut self) -> io::Result<Option<Exit>> {
        self.wait(libc::WNOHANG)
    }

    fn wait(&mut self, flags: libc::c_int) -> io::Result<Option<Exit>> {
        if self.reaped {
            return Ok(None);
        }
        let mut status = 0;
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `status` and `usage` are live locals of the types wait4 writes.
        let pid = cvt(unsafe { libc::wait4(self.pid, &mut status, flags, usage.as_mut_ptr()) })?;
        if pid == 0 {
            return Ok(None);
        }
        // SAFETY: wait4 succeeded for our child, so it filled in `usage`.
        let usage = unsafe { usage.assume_init() };
        self.reaped = true;
        let status = if libc::WIFSIGNALED(status) {
            Status::Signal(libc::WTERMSIG(status))
        } else {
            Status::Code(libc::WEXITSTATUS(status))
        };
        Ok(Some(Exit {
            status,
            user: timeval(usage.ru_utime),
            system: timeval(usage.ru_stime),
        }))
    }

    /// Kills the process (SIGKILL) and collects it.
    pub fn kill(&mut self) -> io::Result<Option<Exit>> {
        if self.reaped {
            return Ok(None);
        }
        // SAFETY: `pid` is our child and not yet collected, so it cannot have been
        // reused by another process.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        self.wait(0)
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        // Never leave a subject behind, whatever path the testbed takes out.
        let _ = self.kill();
    }
}

/// A `timeval` as a `Duration`.
pub fn timeval(t: libc::timeval) -> Duration {
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let micros = u32::try_from(t.tv_usec).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
}

/// CPU time (user + system) the testbed process itself used so far, all threads.
pub fn own_cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the live local.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } == 0;
    if !ok {
        return Duration::ZERO;
    }
    // SAFETY: getrusage succeeded and filled it in.
    let usage = unsafe { usage.assume_init() };
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}
