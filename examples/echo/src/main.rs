//! `echo`: answers ARP and ping at 10.0.0.2/24 on `service0`, echoes UDP port 7 and
//! serves a status page on HTTP port 80 (see the library, `src/lib.rs`).
//!
//! Build for Muen with `cargo build -p echo --target x86_64-unknown-none --release`,
//! or run it in the testbed: `muen-testbed run examples/echo --tap service0=tap0`
//! (`examples/echo/README.md`).

#![no_std]
#![no_main]

use echo::{Memory, Server, SetupError, ADDRESS, DEVICE, HTTP_PORT, PREFIX_LEN, SOCKETS, UDP_PORT};
use log::info;
use muen_subject::device::NetDevice;
use muen_subject::Runtime;
use smoltcp::iface::SocketStorage;

muen_subject::entry!(main);

/// Serves forever; an error (exit code 1, logged) only if it cannot start.
fn main(rt: &mut Runtime) -> Result<(), SetupError> {
    let device = rt.net(DEVICE)?;
    let memory = Memory::take().ok_or(SetupError::MemoryTaken)?;
    let name = rt.name().as_str();
    let mut slots = [SocketStorage::EMPTY; SOCKETS];
    // The TSC at start seeds TCP's initial sequence numbers: they differ per boot.
    let now = rt.now();
    let mut server = Server::new(device, memory, &mut slots, name, now, now.as_nanos());
    let m = server.device().info().mac;
    info!(
        "{DEVICE}: mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    );
    info!("listening on {ADDRESS}/{PREFIX_LEN}");
    info!("udp echo port {UDP_PORT}, http port {HTTP_PORT}");
    loop {
        let now = rt.now();
        server.poll(now);
        let deadline = server.poll_at(now);
        if deadline > now {
            // Sleeps until a frame arrives or the deadline passes.
            rt.poll(deadline, &[&*server.device()]);
        }
    }
}
