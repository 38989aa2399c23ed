//! The server: a [`Host`] (one smoltcp interface on a [`NetDevice`] and its HTTP
//! sockets) with a UDP echo socket and the status page, with every buffer given by the
//! caller (no heap).

use core::fmt::Write as _;

use muen_subject::device::NetDevice;
use muen_subject::Instant;
use smoltcp::iface::{SocketHandle, SocketStorage};
use smoltcp::socket::udp;

use crate::host::{Context, Counted, Handler, Host, Reply};
use crate::http::{self, Cursor, Method, Request, RequestError, Status};
use crate::status::{self, Page, ServerStats};
use crate::{ADDRESS, HTTP_PORT, PREFIX_LEN, UDP_PORT};

/// Sockets listening on the HTTP port: up to this many connections are served at once
/// (smoltcp has no listen backlog: a listening socket takes one connection, and a SYN
/// that finds no listening socket is answered with a reset).
pub const HTTP_SOCKETS: usize = 16;
/// Receive buffer per HTTP socket: the largest request head accepted.
pub const HTTP_RX: usize = 2048;
/// Transmit buffer per HTTP socket: holds a whole response.
pub const HTTP_TX: usize = 2048;
/// Datagrams the UDP socket queues in each direction.
pub const UDP_PACKETS: usize = 16;
/// Payload bytes the UDP socket queues in each direction.
pub const UDP_BUFFER: usize = UDP_PACKETS * 1536;
/// Socket slots [`Server::new`] needs: the UDP socket and the HTTP sockets.
pub const SOCKETS: usize = 1 + HTTP_SOCKETS;
/// The largest UDP payload without IP fragmentation (1500 - 20 - 8).
pub const UDP_PAYLOAD_MAX: usize = 1472;
/// The largest response (head and body).
const RESPONSE_MAX: usize = 2048;
// A response is queued whole into the empty transmit buffer of its connection.
const _: () = assert!(RESPONSE_MAX <= HTTP_TX);
const _: () = assert!(HTTP_RX <= crate::host::REQUEST_MAX);

/// The socket buffers (about 100 KiB, all zero at first, so a static of them lands
/// in `.bss` and costs the image nothing).
pub struct Buffers {
    http_rx: [[u8; HTTP_RX]; HTTP_SOCKETS],
    http_tx: [[u8; HTTP_TX]; HTTP_SOCKETS],
    udp_rx: [u8; UDP_BUFFER],
    udp_tx: [u8; UDP_BUFFER],
}

/// The UDP socket's queue entries, both directions. (Kept apart from [`Buffers`]:
/// an empty entry is not all zero bytes, and one such field would move the whole
/// static from `.bss` into the image's `.data`.)
pub type Queues = [udp::PacketMetadata; 2 * UDP_PACKETS];

/// Everything the sockets use.
pub struct Memory<'a> {
    buffers: &'a mut Buffers,
    queues: &'a mut Queues,
}

/// The application's memory: statics, handed out once.
static BUFFERS: spin::Mutex<Buffers> = spin::Mutex::new(Buffers::new());
static QUEUES: spin::Mutex<Queues> =
    spin::Mutex::new([udp::PacketMetadata::EMPTY; 2 * UDP_PACKETS]);

impl Buffers {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        Buffers {
            http_rx: [[0; HTTP_RX]; HTTP_SOCKETS],
            http_tx: [[0; HTTP_TX]; HTTP_SOCKETS],
            udp_rx: [0; UDP_BUFFER],
            udp_tx: [0; UDP_BUFFER],
        }
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers::new()
    }
}

impl<'a> Memory<'a> {
    /// Memory made of `buffers` and `queues` (tests box them).
    pub fn new(buffers: &'a mut Buffers, queues: &'a mut Queues) -> Self {
        Memory { buffers, queues }
    }
}

impl Memory<'static> {
    /// The static memory; `None` after the first call, so that no two servers share
    /// it. (A lock that is taken once and never released is a safe `&'static mut`.)
    pub fn take() -> Option<Self> {
        let buffers = BUFFERS.try_lock().map(spin::MutexGuard::leak)?;
        let queues = QUEUES.try_lock().map(spin::MutexGuard::leak)?;
        Some(Memory { buffers, queues })
    }
}

/// The echo server.
pub struct Server<'a, D: NetDevice + Counted> {
    host: Host<'a, D, HTTP_SOCKETS>,
    udp: SocketHandle,
    page: StatusPage<'a>,
}

/// The status page as the server's HTTP handler, and the UDP counters it shows.
struct StatusPage<'a> {
    name: &'a str,
    started: Instant,
    udp_echoed: u64,
    udp_dropped: u64,
}

impl<'a, D: NetDevice + Counted> Server<'a, D> {
    /// A server on `device` at [`ADDRESS`]/[`PREFIX_LEN`] with the buffers of
    /// `memory` and the socket table `slots`. `name` is shown on the status page,
    /// `now` is the current monotonic time (uptime starts here), `seed` seeds
    /// smoltcp's TCP initial sequence numbers.
    pub fn new(
        device: D,
        memory: Memory<'a>,
        slots: &'a mut [SocketStorage<'a>; SOCKETS],
        name: &'a str,
        now: Instant,
        seed: u64,
    ) -> Self {
        let Buffers {
            http_rx,
            http_tx,
            udp_rx,
            udp_tx,
        } = memory.buffers;
        let mut rx = http_rx.iter_mut();
        let mut tx = http_tx.iter_mut();
        let buffers = core::array::from_fn(|_| match (rx.next(), tx.next()) {
            (Some(r), Some(t)) => (&mut r[..], &mut t[..]),
            // Both arrays have HTTP_SOCKETS entries.
            _ => unreachable!(),
        });
        let mut host = Host::new(
            device,
            (ADDRESS, PREFIX_LEN, HTTP_PORT),
            buffers,
            &mut slots[..],
            now,
            seed,
        );
        let (udp_rx_meta, udp_tx_meta) = memory.queues.split_at_mut(UDP_PACKETS);
        let mut udp = udp::Socket::new(
            udp::PacketBuffer::new(udp_rx_meta, &mut udp_rx[..]),
            udp::PacketBuffer::new(udp_tx_meta, &mut udp_tx[..]),
        );
        // Binding a fresh socket to a non-zero port cannot fail.
        let _ = udp.bind(UDP_PORT);
        let udp = host.sockets().add(udp);
        Server {
            host,
            udp,
            page: StatusPage {
                name,
                started: now,
                udp_echoed: 0,
                udp_dropped: 0,
            },
        }
    }

    /// The device, e.g. to wait for it with [`Runtime::poll`](muen_subject::Runtime::poll).
    pub fn device(&mut self) -> &mut D {
        self.host.device()
    }

    /// The server's counters.
    pub fn stats(&self) -> ServerStats {
        let http = self.host.stats();
        ServerStats {
            udp_echoed: self.page.udp_echoed,
            udp_dropped: self.page.udp_dropped,
            http_requests: http.requests,
            http_aborted: http.aborted,
            tx_refused: self.host.tx_refused(),
        }
    }

    /// Does all work that is due at `now`: takes in every waiting frame, answers
    /// UDP and HTTP, sends what is queued. Frames that arrive during the call are
    /// left in the device for the next call.
    pub fn poll(&mut self, now: Instant) {
        self.host.ingress(now, &mut self.page);
        self.serve_udp();
        self.host.serve(now, &mut self.page);
        self.host.egress(now);
    }

    /// When [`poll`](Self::poll) must run next if no frame arrives before
    /// ([`Instant::MAX`]: only when a frame arrives): smoltcp's timers and the
    /// connection limit.
    pub fn poll_at(&mut self, now: Instant) -> Instant {
        self.host.poll_at(now)
    }

    /// Echoes every waiting datagram to its sender.
    fn serve_udp(&mut self) {
        let socket = self.host.sockets().get_mut::<udp::Socket>(self.udp);
        let mut datagram = [0u8; UDP_PAYLOAD_MAX];
        while socket.can_recv() {
            match socket.recv_slice(&mut datagram) {
                Ok((n, meta)) => match socket.send_slice(&datagram[..n], meta) {
                    Ok(()) => self.page.udp_echoed += 1,
                    Err(_) => self.page.udp_dropped += 1,
                },
                // Larger than an unfragmented datagram can be: not echoed.
                Err(_) => self.page.udp_dropped += 1,
            }
        }
    }
}

impl Handler for StatusPage<'_> {
    fn request(
        &mut self,
        _slot: usize,
        request: Result<Request<'_>, RequestError>,
        _body: &[u8],
        context: &Context,
        reply: &mut Reply<'_, '_>,
    ) {
        let page = Page {
            name: self.name,
            uptime: context.now - self.started,
            mac: context.mac,
            net: context.net,
            server: ServerStats {
                udp_echoed: self.udp_echoed,
                udp_dropped: self.udp_dropped,
                http_requests: context.http.requests + 1,
                http_aborted: context.http.aborted,
                tx_refused: context.tx_refused,
            },
        };
        let mut out = [0u8; RESPONSE_MAX];
        let len = respond(&mut out, request, &page);
        reply.send(&out[..len]);
    }
}

/// Writes the response to `request` into `out` and returns its length (0 if it does
/// not fit, which the sizes rule out).
fn respond(
    out: &mut [u8; RESPONSE_MAX],
    request: Result<http::Request<'_>, RequestError>,
    page: &Page<'_>,
) -> usize {
    let mut body = [0u8; RESPONSE_MAX / 2];
    let mut text = Cursor::new(&mut body);
    let (status, head_only) = match request {
        Ok(r) if r.method == Method::Post => {
            let _ = writeln!(text, "{}", Status::MethodNotAllowed.reason());
            (Status::MethodNotAllowed, false)
        }
        Ok(r) if r.path == "/" => {
            let _ = status::render(&mut text, page);
            (Status::Ok, r.method == Method::Head)
        }
        Ok(r) => {
            let _ = writeln!(text, "not found; the status page is /");
            (Status::NotFound, r.method == Method::Head)
        }
        Err(e) => {
            let _ = writeln!(text, "{}", e.status().reason());
            (e.status(), false)
        }
    };
    let mut cursor = Cursor::new(&mut out[..]);
    let content_type = "text/plain; charset=utf-8";
    match http::write_response(&mut cursor, status, content_type, text.written(), head_only) {
        Ok(()) => cursor.len(),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests;
