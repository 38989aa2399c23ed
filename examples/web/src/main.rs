//! `web`: serves the guestbook over HTTP at 10.0.0.2/24 on `service0`, and asks
//! `vault` for every entry it stores or shows (see the library, `src/lib.rs`).

#![no_std]
#![no_main]

use echo::host::Host;
use log::info;
use muen_subject::device::NetDevice;
use muen_subject::Runtime;
use smoltcp::iface::SocketStorage;
use vault::wire::{RequestElement, ResponseElement};
use web::{
    Buffers, Guestbook, SetupError, ADDRESS, DEVICE, HTTP_PORT, HTTP_SOCKETS, PREFIX_LEN, REQUESTS,
    RESPONSES,
};

muen_subject::entry!(main);

/// Serves forever; an error (exit code 1, logged) only if it cannot start.
fn main(rt: &mut Runtime) -> Result<(), SetupError> {
    let device = rt.net(DEVICE)?;
    let requests = rt.writer::<RequestElement>(REQUESTS)?;
    let responses = rt.reader::<ResponseElement>(RESPONSES)?;
    let buffers = Buffers::take().ok_or(SetupError::MemoryTaken)?;
    let mut slots = [SocketStorage::EMPTY; HTTP_SOCKETS];
    // The TSC at start seeds TCP's initial sequence numbers and the first tag.
    let now = rt.now();
    let mut host = Host::new(
        device,
        (ADDRESS, PREFIX_LEN, HTTP_PORT),
        buffers.pairs(),
        &mut slots,
        now,
        now.as_nanos(),
    );
    let mut book: Guestbook<_, _, HTTP_SOCKETS> =
        Guestbook::new(requests, responses, now.as_nanos() << 16);
    let m = host.device().info().mac;
    info!(
        "{DEVICE}: mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    );
    info!("guestbook at http://{ADDRESS}/");
    loop {
        let now = rt.now();
        book.collect();
        host.poll(now, &mut book);
        let deadline = host.poll_at(now).min(book.next_deadline());
        if deadline > now {
            // Sleeps until a frame arrives, vault answers, or the deadline passes.
            rt.poll(deadline, &[&*host.device(), book.responses()]);
        }
    }
}
