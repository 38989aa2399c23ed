//! The server: one smoltcp interface on a [`NetDevice`], a UDP echo socket and a set
//! of HTTP sockets, with every buffer given by the caller (no heap).

use core::fmt::Write as _;

use muen_subject::device::NetDevice;
use muen_subject::net::{MuenNet, NetStats};
use muen_subject::smoltcp::Adapter;
use muen_subject::{Duration, Instant, Sys};
use smoltcp::iface::{
    Config, Interface, PollIngressSingleResult, SocketHandle, SocketSet, SocketStorage,
};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use crate::http::{self, Cursor, Method, RequestError, Status};
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
/// The longest a connection may hold an HTTP socket, from the first segment to the
/// end: a client that sends nothing, or never closes its side, does not keep a
/// socket from the next one for longer.
pub const CONNECTION_LIMIT: Duration = Duration::from_secs(10);
/// The largest UDP payload without IP fragmentation (1500 - 20 - 8).
pub const UDP_PAYLOAD_MAX: usize = 1472;
/// The largest response (head and body).
const RESPONSE_MAX: usize = 2048;
// A response is queued whole into the empty transmit buffer of its connection.
const _: () = assert!(RESPONSE_MAX <= HTTP_TX);

/// A device that counts its traffic, for the status page.
pub trait Counted {
    /// The device's counters.
    fn stats(&self) -> NetStats;
}

impl<S: Sys + ?Sized> Counted for MuenNet<'_, S> {
    fn stats(&self) -> NetStats {
        MuenNet::stats(self)
    }
}

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

/// An HTTP socket's connection, as the server tracks it.
#[derive(Clone, Copy, Default)]
struct Connection {
    /// When the connection's first segment was seen.
    since: Option<Instant>,
    /// Whether the response was queued (the socket is closing).
    answered: bool,
}

/// The echo server.
pub struct Server<'a, D: NetDevice + Counted> {
    iface: Interface,
    device: Adapter<D>,
    sockets: SocketSet<'a>,
    udp: SocketHandle,
    http: [SocketHandle; HTTP_SOCKETS],
    connections: [Connection; HTTP_SOCKETS],
    name: &'a str,
    started: Instant,
    stats: ServerStats,
}

/// `now` as smoltcp's instant.
fn smoltcp_instant(now: Instant) -> SmolInstant {
    // u64 nanoseconds / 1000 always fits i64 microseconds.
    SmolInstant::from_micros((now.as_nanos() / 1000) as i64)
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
        let mac = device.info().mac;
        let mut device = Adapter::new(device);
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        config.random_seed = seed;
        let mut iface = Interface::new(config, &mut device, smoltcp_instant(now));
        iface.update_ip_addrs(|addrs| {
            // The interface holds up to two addresses; this is the first.
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(ADDRESS), PREFIX_LEN));
        });

        let mut sockets = SocketSet::new(&mut slots[..]);
        let Buffers {
            http_rx,
            http_tx,
            udp_rx,
            udp_tx,
        } = memory.buffers;
        let (udp_rx_meta, udp_tx_meta) = memory.queues.split_at_mut(UDP_PACKETS);
        let mut udp = udp::Socket::new(
            udp::PacketBuffer::new(udp_rx_meta, &mut udp_rx[..]),
            udp::PacketBuffer::new(udp_tx_meta, &mut udp_tx[..]),
        );
        // Binding a fresh socket to a non-zero port cannot fail.
        let _ = udp.bind(UDP_PORT);
        let udp = sockets.add(udp);
        let mut http = [SocketHandle::default(); HTTP_SOCKETS];
        for (handle, (rx, tx)) in http.iter_mut().zip(http_rx.iter_mut().zip(http_tx)) {
            let mut socket = tcp::Socket::new(
                tcp::SocketBuffer::new(&mut rx[..]),
                tcp::SocketBuffer::new(&mut tx[..]),
            );
            // ACK at once: a response goes out in the same round anyway, and the ACK
            // of the client's FIN must be out before the socket is reused (`recycle`).
            socket.set_ack_delay(None);
            *handle = sockets.add(socket);
        }
        let mut server = Server {
            iface,
            device,
            sockets,
            udp,
            http,
            connections: [Connection::default(); HTTP_SOCKETS],
            name,
            started: now,
            stats: ServerStats::default(),
        };
        server.recycle(smoltcp_instant(now)); // puts every HTTP socket into LISTEN
        server
    }

    /// The device, e.g. to wait for it with [`Runtime::poll`](muen_subject::Runtime::poll).
    pub fn device(&mut self) -> &mut D {
        self.device.device()
    }

    /// The server's counters.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            tx_refused: self.device.tx_refused,
            ..self.stats
        }
    }

    /// Does all work that is due at `now`: takes in every waiting frame, answers
    /// UDP and HTTP, sends what is queued. Frames that arrive during the call are
    /// left in the device for the next call.
    pub fn poll(&mut self, now: Instant) {
        let at = now;
        let now = smoltcp_instant(now);
        // Frame by frame, so that a socket whose connection just ended listens again
        // before the next frame, which may be a new client's SYN.
        while !matches!(
            self.iface
                .poll_ingress_single(now, &mut self.device, &mut self.sockets),
            PollIngressSingleResult::None
        ) {
            self.recycle(now);
        }
        self.recycle(now);
        self.serve_udp();
        self.serve_http(at);
        // Egress only: a frame that arrived meanwhile stays in the device, where the
        // caller's idle loop sees it, instead of being taken in after the sockets
        // were served and then slept over.
        self.iface
            .poll_egress(now, &mut self.device, &mut self.sockets);
    }

    /// When [`poll`](Self::poll) must run next if no frame arrives before
    /// ([`Instant::MAX`]: only when a frame arrives): smoltcp's timers and the
    /// connection limit.
    pub fn poll_at(&mut self, now: Instant) -> Instant {
        let smoltcp = self
            .iface
            .poll_delay(smoltcp_instant(now), &self.sockets)
            .map_or(Instant::MAX, |d| {
                now + Duration::from_micros(d.total_micros())
            });
        let connections = self
            .connections
            .iter()
            .filter_map(|c| c.since)
            .map(|s| s + CONNECTION_LIMIT)
            .min()
            .unwrap_or(Instant::MAX);
        smoltcp.min(connections)
    }

    /// Echoes every waiting datagram to its sender.
    fn serve_udp(&mut self) {
        let socket = self.sockets.get_mut::<udp::Socket>(self.udp);
        let mut datagram = [0u8; UDP_PAYLOAD_MAX];
        while socket.can_recv() {
            match socket.recv_slice(&mut datagram) {
                Ok((n, meta)) => match socket.send_slice(&datagram[..n], meta) {
                    Ok(()) => self.stats.udp_echoed += 1,
                    Err(_) => self.stats.udp_dropped += 1,
                },
                // Larger than an unfragmented datagram can be: not echoed.
                Err(_) => self.stats.udp_dropped += 1,
            }
        }
    }

    /// Puts every HTTP socket whose connection is over back into LISTEN.
    ///
    /// Over means TIME-WAIT after our close (the client has its answer; holding the
    /// socket for TIME-WAIT's 10 s would starve new clients), or CLOSED after an
    /// abort. Whatever such a socket still has to send (the ACK of the client's FIN,
    /// an abort's reset) goes out first; then `listen` resets it without sending
    /// anything.
    fn recycle(&mut self, now: SmolInstant) {
        let over = |s: &tcp::Socket| matches!(s.state(), tcp::State::TimeWait | tcp::State::Closed);
        if !self
            .http
            .iter()
            .any(|&h| over(self.sockets.get::<tcp::Socket>(h)))
        {
            return;
        }
        self.iface
            .poll_egress(now, &mut self.device, &mut self.sockets);
        for (handle, conn) in self.http.iter().zip(&mut self.connections) {
            let socket = self.sockets.get_mut::<tcp::Socket>(*handle);
            // A socket still holding its peer's address has a reset to send: smoltcp
            // forgets the peer once it is out.
            let done = match socket.state() {
                tcp::State::TimeWait => true,
                tcp::State::Closed => socket.remote_endpoint().is_none(),
                _ => false,
            };
            if !done {
                continue;
            }
            if conn.since.is_some() && !conn.answered {
                self.stats.http_aborted += 1;
            }
            *conn = Connection::default();
            // Cannot fail: the socket is not open and the port is not 0.
            let _ = socket.listen(HTTP_PORT);
        }
    }

    /// Answers complete requests, closes what is done or over its time.
    fn serve_http(&mut self, now: Instant) {
        for i in 0..HTTP_SOCKETS {
            let socket = self.sockets.get_mut::<tcp::Socket>(self.http[i]);
            let conn = &mut self.connections[i];
            if socket.state() == tcp::State::Listen {
                continue;
            }
            let since = *conn.since.get_or_insert(now);
            if now - since >= CONNECTION_LIMIT {
                socket.abort(); // listened on again next round
                continue;
            }
            if conn.answered {
                // Whatever the client still sends is read and dropped, so that its
                // window stays open until it closes.
                let _ = socket.recv(|b| (b.len(), ()));
                continue;
            }
            let mut head = [0u8; HTTP_RX];
            let n = socket.peek_slice(&mut head).unwrap_or(0);
            let request = match http::parse(&head[..n]) {
                Ok(Some(request)) => Ok(request),
                Err(e) => Err(e),
                Ok(None) if n == HTTP_RX => Err(RequestError::HeadTooLarge),
                Ok(None) if socket.state() != tcp::State::CloseWait => continue, // not yet
                Ok(None) => {
                    // The client closed its side without a complete request.
                    socket.close();
                    conn.answered = true;
                    self.stats.http_aborted += 1;
                    continue;
                }
            };
            let page = Page {
                name: self.name,
                uptime: now - self.started,
                mac: self.device.device().info().mac,
                net: self.device.device().stats(),
                server: ServerStats {
                    tx_refused: self.device.tx_refused,
                    http_requests: self.stats.http_requests + 1,
                    ..self.stats
                },
            };
            let mut out = [0u8; RESPONSE_MAX];
            let len = respond(&mut out, request, &page);
            // The socket's buffer is empty (nothing was sent on this connection yet)
            // and larger than any response, so the whole response is queued.
            let sent = socket.send_slice(&out[..len]).unwrap_or(0);
            if len > 0 && sent == len {
                let _ = socket.recv(|b| (b.len(), ()));
                socket.close();
            } else {
                socket.abort();
            }
            conn.answered = true;
            self.stats.http_requests += 1;
        }
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
