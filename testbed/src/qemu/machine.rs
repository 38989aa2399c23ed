//! The QEMU process: its command line and its start.
//!
//! QEMU gets seven descriptors (as fds 3 to 9, through [`Subject::spawn_command`]):
//!
//! | fd | what | QEMU option |
//! |---:|------|-------------|
//! | 3 | the guest's low memory (memory map, boot stage) | `-object memory-backend-file,id=low,mem-path=/proc/self/fd/3,share=on` |
//! | 4 | the boot stage ROM (a memfd) | `-bios /proc/self/fd/4` |
//! | 5 | the doorbell socket | `-chardev socket,fd=5` for `isa-debugcon` on port 0xe9 |
//! | 6 | the monitor socket (QMP) | `-chardev socket,fd=6` for `-mon mode=control` |
//! | 7 | the run's memory file (every region, shared with the other guests) | `id=shared`, `/proc/self/fd/7` |
//! | 8 | the guest's page table pool | `id=pool`, `/proc/self/fd/8` |
//! | 9 | the wake-up socket | `-chardev socket,fd=9` for an `isa-serial` at COM1 (port 0x3f8, IRQ 4) |
//!
//! The three memories are the guest's RAM in this order (`crate::memory::GuestMemory`):
//! QEMU lays the memory of NUMA nodes one after another, so each is a node
//! (`-numa node,memdev=…`).
//!
//! The machine is `microvm` (no PCI, no firmware tables: the quickest to start) with
//! its 8259 PIC, the wake-up UART, the 8254 PIT only for a periodic tick, and nothing
//! else: no RTC, no option ROMs, no display. QEMU's stderr is passed on line by line, each line marked as
//! QEMU's.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use muen_testbed_abi::qemu::{DOORBELL_PORT, EXIT_PORT, WAKE_UART_IRQ, WAKE_UART_PORT};

use crate::memory::{GuestMemory, Memory};
use crate::os::cvt;
use crate::qemu::accel::Accel;
use crate::qemu::qmp::Qmp;
use crate::subject::Subject;

/// The QEMU binary used unless `MUEN_TESTBED_QEMU` names another.
pub const DEFAULT_QEMU: &str = "qemu-system-x86_64";

/// How long QEMU may take to open its monitor.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// QEMU's arguments for a guest whose RAM is `low`, `shared` and `pool` bytes (the
/// three parts of [`GuestMemory`]), with an 8254 PIT if `pit` (for a periodic tick;
/// without one the guest has no timer device at all, so an idle QEMU has nothing to
/// do).
pub fn arguments(accel: Accel, low: u64, shared: u64, pool: u64, pit: bool) -> Vec<String> {
    let machine = format!(
        "microvm,x-option-roms=off,isa-serial=off,rtc=off,acpi=off,pit={},pic=on",
        if pit { "on" } else { "off" }
    );
    let mut args: Vec<String> = [
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-machine",
        &machine,
        "-accel",
        accel.qemu_name(),
        "-cpu",
        accel.cpu(),
        "-smp",
        "1",
        // The guest waits until the monitor session is up (see `Machine::start`): a
        // boot stage that refuses the subject ends QEMU at once, which would otherwise
        // race the monitor's handshake.
        "-S",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for (id, fd, size) in [("low", 3, low), ("shared", 7, shared), ("pool", 8, pool)] {
        args.extend([
            "-object".into(),
            format!("memory-backend-file,id={id},mem-path=/proc/self/fd/{fd},size={size},share=on"),
            "-numa".into(),
            format!("node,memdev={id}"),
        ]);
    }
    args.extend([
        "-m".into(),
        format!("{}B", low + shared + pool),
        "-bios".into(),
        "/proc/self/fd/4".into(),
        "-chardev".into(),
        "socket,id=doorbell,fd=5".into(),
        "-device".into(),
        format!("isa-debugcon,iobase={DOORBELL_PORT:#x},chardev=doorbell"),
        "-device".into(),
        format!("isa-debug-exit,iobase={EXIT_PORT:#x},iosize=1"),
        "-chardev".into(),
        "socket,id=monitor,fd=6".into(),
        "-mon".into(),
        "chardev=monitor,mode=control".into(),
        "-chardev".into(),
        "socket,id=wake,fd=9".into(),
        "-device".into(),
        format!("isa-serial,chardev=wake,iobase={WAKE_UART_PORT:#x},irq={WAKE_UART_IRQ}"),
        // A triple fault pauses the guest (instead of resetting it), so that its
        // registers can still be read; QMP reports it.
        "-action".into(),
        "reboot=shutdown,shutdown=pause".into(),
    ]);
    if accel == Accel::Kvm && pit {
        // The in-kernel PIT would otherwise replay every tick the guest missed while
        // its interrupts were off (most of the time), waking it many times in a row.
        args.extend(["-global".into(), "kvm-pit.lost_tick_policy=discard".into()]);
    }
    args
}

/// A memfd holding `bytes`, for QEMU to open through `/proc/self/fd`.
fn memfd(name: &std::ffi::CStr, bytes: &[u8]) -> io::Result<File> {
    // SAFETY: `name` is NUL-terminated; no other pointer is passed.
    let fd = cvt(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: memfd_create just returned `fd`; nothing else owns it.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(bytes)?;
    Ok(file)
}

/// A running QEMU.
#[derive(Debug)]
pub struct Machine {
    /// The QEMU process (collected like a hosted subject).
    pub process: Subject,
    /// The testbed's end of the doorbell.
    pub doorbell: UnixStream,
    /// The monitor session.
    pub qmp: Qmp,
    stderr: Option<JoinHandle<()>>,
}

impl Machine {
    /// Starts `qemu` with `accel` (and a PIT if `pit`) on `guest` (its own memory) and
    /// `memory` (the run's) with the boot stage `rom` and `wake` as the wake-up UART's
    /// character device (QEMU's end of a socket pair), and connects to its monitor.
    pub fn start(
        qemu: &Path,
        accel: Accel,
        pit: bool,
        guest: &GuestMemory,
        memory: &Memory,
        rom: &[u8],
        wake: &UnixStream,
    ) -> io::Result<Self> {
        let rom = memfd(c"muen-testbed-rom", rom)?;
        let (doorbell, doorbell_qemu) = UnixStream::pair()?;
        let (monitor, monitor_qemu) = UnixStream::pair()?;
        let mut command = Command::new(qemu);
        command
            .args(arguments(
                accel,
                guest.low.len() as u64,
                memory.len() as u64,
                guest.pool.end - guest.pool.start,
                pit,
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let fds = [
            guest.low.fd(),
            rom.as_fd(),
            doorbell_qemu.as_fd(),
            monitor_qemu.as_fd(),
            memory.fd(),
            guest.pool_fd(),
            wake.as_fd(),
        ];
        let (process, stderr) = Subject::spawn_command(command, &fds)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", qemu.display())))?;
        drop((rom, doorbell_qemu, monitor_qemu));
        let stderr = stderr.map(|pipe| {
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    eprintln!("muen-testbed: qemu: {line}");
                }
            })
        });
        let mut process = process;
        let qmp = Qmp::connect(monitor, STARTUP_TIMEOUT).and_then(|mut q| {
            // Commands after the start wait at most this long for an answer.
            q.set_timeout(Duration::from_secs(5))?;
            match q.execute("cont", serde_json::Value::Null) {
                // The guest ran and QEMU ended before it answered (a boot stage that
                // refuses the subject exits at once): the run sees QEMU's end and the
                // doorbell's last words, so this is a started machine.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(q),
                Err(e) => Err(e),
                Ok(_) => Ok(q),
            }
        });
        match qmp {
            Ok(qmp) => Ok(Machine {
                process,
                doorbell,
                qmp,
                stderr,
            }),
            Err(e) => {
                // QEMU failed to start: let its own messages come out first.
                let _ = process.kill();
                if let Some(t) = stderr {
                    let _ = t.join();
                }
                Err(io::Error::other(format!("QEMU did not start ({e})")))
            }
        }
    }

    /// Waits until QEMU's stderr is passed on completely (call once QEMU ended).
    pub fn flush_stderr(&mut self) {
        if let Some(t) = self.stderr.take() {
            let _ = t.join();
        }
    }
}
