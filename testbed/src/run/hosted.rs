//! Hosted mode's path: the subjects are Linux processes that map the memory file and
//! talk to the kernel on their control sockets (`docs/hosted.md`).
//!
//! The memory file holds every region of the run once; the memory map at its start is
//! the map of the subject being started. Subjects start one at a time: the next map is
//! written only once the previous subject has mapped its world and closed the file
//! (the runtime does so before `main`; [`wait_mapped`]). The testbed keeps each
//! subject's end of its control socket, so that a subject started again after a reset
//! gets the same socket, emptied of what its predecessor left.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use super::{
    host, serve, write_sinfo, Devices, Ending, HostedTarget, Options, Outcome, Peers, RunError,
};
use crate::clock::SubjectClock;
use crate::kernel::{self, End, Injector, Kernel, SubjectLink};
use crate::memory::{memory_map, Backing, Layout, Memory, MEMORY_FILE_NAME};
use crate::os::{self, Received, SignalFd};
use crate::run::LOG_PERIOD;
use crate::subject::{Exit, Status, Subject};

/// How long a subject may take from its start to having mapped its world.
pub const MAP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the subjects of `options` as processes of `targets`.
pub(super) fn run(
    options: &Options,
    devices: &Devices,
    targets: &[HostedTarget],
) -> Result<super::Report, RunError> {
    let setup = &options.setup;
    let signals = SignalFd::new().map_err(host("blocking signals"))?;
    let backings: Vec<Backing> = setup.regions.iter().map(|r| r.backing.clone()).collect();
    let memory = Memory::with_regions(&backings, Layout::Hosted)
        .map_err(|e| RunError::Host(format!("creating the memory file: {e}")))?;
    write_sinfo(options, &memory)?;
    let clocks: Vec<SubjectClock> = setup
        .subjects
        .iter()
        .map(|_| SubjectClock::host())
        .collect();
    for &region in &setup.time_info {
        kernel::publish_time_info(&memory, region, options.tsc, &clocks[0]);
    }
    let peers = Peers::open(options, devices, &memory, &clocks)?;
    let sockets = setup
        .subjects
        .iter()
        .map(|_| os::seqpacket_pair())
        .collect::<io::Result<Vec<(OwnedFd, OwnedFd)>>>()
        .map_err(host("control socket"))?;
    let injectors = sockets
        .iter()
        .map(|(ours, _)| Injector::new(ours.as_fd()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(host("eventfd"))?;
    let links: Vec<SubjectLink> = clocks
        .iter()
        .zip(&injectors)
        .map(|(clock, injector)| SubjectLink { clock, injector })
        .collect();
    serve(
        options,
        &memory,
        &links,
        peers,
        LOG_PERIOD,
        |kernel, deadline| {
            let mut start = |i: usize| -> io::Result<Subject> {
                start_subject(options, &memory, i, &targets[i], sockets[i].1.as_fd())
            };
            subjects(kernel, options, &sockets, &signals, deadline, &mut start)
        },
    )
}

/// Starts subject `i` of `options` from `target`: empties its socket `theirs` of what a
/// predecessor left, writes its memory map and spawns it; with other subjects in the
/// run, waits until it has mapped its world.
fn start_subject(
    options: &Options,
    memory: &Memory,
    i: usize,
    target: &HostedTarget,
    theirs: BorrowedFd<'_>,
) -> io::Result<Subject> {
    let mut buf = [0u8; 8];
    while let Received::Datagram(_) = os::recv_nonblocking(theirs.as_raw_fd(), &mut buf)? {}
    let s = &options.setup.subjects[i];
    let offsets: Vec<u64> = s
        .regions
        .iter()
        .map(|&r| memory.placement(r).offset)
        .collect();
    memory.write_map(&memory_map(&s.world.view, &offsets))?;
    let mut subject = Subject::spawn(&target.executable, &target.args, memory.fd(), theirs)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("starting {}: {e}", target.executable.display()),
            )
        })?;
    if options.setup.subjects.len() > 1 {
        if let Err(e) = wait_mapped(subject.pid(), MAP_TIMEOUT) {
            let _ = subject.kill();
            return Err(io::Error::other(format!(
                "subject `{}` ({}): {e}",
                s.name(),
                target.executable.display()
            )));
        }
    }
    Ok(subject)
}

/// Waits until process `pid` no longer holds the memory file as fd 3: it mapped its
/// world and closed the file (or it ended), so the memory map may change.
pub fn wait_mapped(pid: libc::pid_t, timeout: Duration) -> io::Result<()> {
    let link = format!("/proc/{pid}/fd/{}", muen_testbed_abi::hosted::MEMORY_FD);
    let until = Instant::now() + timeout;
    loop {
        match std::fs::read_link(&link) {
            Ok(target) if target.to_string_lossy().contains(MEMORY_FILE_NAME) => {}
            // Closed (or another file there now), or the process is gone.
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
        if Instant::now() >= until {
            return Err(io::Error::other(format!(
                "it has not mapped its memory within {} s (the runtime closes fd 3 once it \
                 has); the testbed cannot start the next subject",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Starts the subject processes and runs the kernel until the run ends; then stops
/// the processes left.
fn subjects(
    kernel: &mut Kernel<'_>,
    options: &Options,
    sockets: &[(OwnedFd, OwnedFd)],
    signals: &SignalFd,
    deadline: Option<Instant>,
    start: &mut dyn FnMut(usize) -> io::Result<Subject>,
) -> Result<Outcome, RunError> {
    let mut processes = Vec::new();
    for i in 0..options.setup.subjects.len() {
        processes.push(start(i).map_err(|e| RunError::BadInput(e.to_string()))?);
    }
    let ours: Vec<BorrowedFd> = sockets.iter().map(|(o, _)| o.as_fd()).collect();
    let end = kernel
        .run(
            &ours,
            &mut processes,
            signals,
            deadline,
            options.restarts,
            start,
        )
        .map_err(host("kernel"));
    let mut exits: Vec<Option<Exit>> = processes
        .iter_mut()
        .map(|p| p.kill().ok().flatten())
        .collect();
    let end = end?;
    let (subject, ending) = match end {
        End::Exited(i, exit) => {
            exits[i] = Some(exit);
            let ending = match exit.status {
                Status::Code(c) => Ending::Exited(c),
                Status::Signal(s) => Ending::Killed(s),
            };
            (i, ending)
        }
        End::TimedOut => (0, Ending::TimedOut(Duration::ZERO)),
        End::Interrupted(s) => (0, Ending::Interrupted(s)),
        End::System(i, action) => (i, Ending::System(action)),
        End::GuestStopped(..) => unreachable!("the hosted kernel loop has no guest"),
    };
    Ok(Outcome {
        subject,
        ending,
        exits: exits.into_iter().flatten().collect(),
        guest: None,
    })
}
