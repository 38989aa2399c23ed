//! Hosted mode's path: the subject is a Linux process that maps the memory file and
//! talks to the kernel on the control socket (`docs/hosted.md`).

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{host, serve, time_info, write_sinfo, Ending, Options, Outcome, Peers, RunError};
use crate::clock::SubjectClock;
use crate::kernel::{self, End, Injector, Kernel};
use crate::memory::{Layout, Memory};
use crate::os::{self, SignalFd};
use crate::run::LOG_PERIOD;
use crate::subject::{Status, Subject};

/// Runs `executable` with `args` as the subject of `options`.
pub(super) fn run(
    options: &Options,
    executable: &Path,
    args: &[OsString],
) -> Result<super::Report, RunError> {
    let view = &options.world.view;
    let signals = SignalFd::new().map_err(host("blocking signals"))?;
    let memory = Memory::with_layout(view, Layout::Hosted)
        .map_err(|e| RunError::Host(format!("creating the memory file: {e}")))?;
    write_sinfo(options, &memory, muen_sinfo::Version::V5)?;
    let clock = SubjectClock::host();
    if let Some(i) = time_info(&options.world) {
        kernel::publish_time_info(&memory, i, options.tsc, &clock);
    }
    let peers = Peers::open(options, &memory, &clock)?;
    let (ours, theirs) = os::seqpacket_pair().map_err(host("control socket"))?;
    let injector = Injector::new(ours.as_fd()).map_err(host("eventfd"))?;
    serve(
        options,
        &memory,
        &clock,
        &injector,
        peers,
        LOG_PERIOD,
        |kernel, deadline| {
            subject(
                kernel,
                executable,
                args,
                &memory,
                (ours.as_fd(), theirs),
                &signals,
                deadline,
            )
        },
    )
}

/// Starts the subject process and runs the kernel until it ends.
fn subject(
    kernel: &mut Kernel<'_>,
    executable: &Path,
    args: &[OsString],
    memory: &Memory,
    (ours, theirs): (BorrowedFd<'_>, OwnedFd),
    signals: &SignalFd,
    deadline: Option<Instant>,
) -> Result<Outcome, RunError> {
    let mut subject = Subject::spawn(executable, args, memory.fd(), theirs.as_fd())
        .map_err(|e| RunError::BadInput(format!("starting {}: {e}", executable.display())))?;
    drop(theirs);
    let end = kernel
        .run(ours, signals, &mut subject, deadline)
        .map_err(host("kernel"));
    let end = match end {
        Ok(end) => end,
        Err(e) => {
            let _ = subject.kill();
            return Err(e);
        }
    };
    let (ending, exit) = match end {
        End::Exited(exit) => (
            match exit.status {
                Status::Code(c) => Ending::Exited(c),
                Status::Signal(s) => Ending::Killed(s),
            },
            Some(exit),
        ),
        End::TimedOut => (
            Ending::TimedOut(Duration::ZERO),
            subject.kill().ok().flatten(),
        ),
        End::Interrupted(s) => (Ending::Interrupted(s), subject.kill().ok().flatten()),
        End::GuestStopped(_) => unreachable!("the hosted kernel loop has no guest"),
    };
    Ok(Outcome {
        ending,
        exit,
        guest: None,
    })
}
