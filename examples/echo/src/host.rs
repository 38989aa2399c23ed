//! An IPv4 host on a network device that serves HTTP: one smoltcp interface, a socket
//! set, and a pool of listening HTTP sockets whose requests a [`Handler`] answers, at
//! once or later. `echo`'s [`Server`](crate::Server) is this host with a UDP socket
//! and the status page; `examples/web` is this host with the guestbook, which answers
//! once `vault` has.
//!
//! Every buffer is given by the caller (no heap).

use muen_subject::device::NetDevice;
use muen_subject::net::{MuenNet, NetStats};
use muen_subject::smoltcp::Adapter;
use muen_subject::{Duration, Instant, Sys};
use smoltcp::iface::{
    Config, Interface, PollIngressSingleResult, SocketHandle, SocketSet, SocketStorage,
};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Address};

use crate::http::{self, Request, RequestError};

/// The longest a connection may hold an HTTP socket, from the first segment to the
/// end: a client that sends nothing, never closes its side, or waits for an answer
/// that does not come, does not keep a socket from the next one for longer.
pub const CONNECTION_LIMIT: Duration = Duration::from_secs(10);

/// The largest receive buffer of an HTTP socket: the longest request (head and body)
/// a host reads.
pub const REQUEST_MAX: usize = 4096;

/// A device that counts its traffic, for status pages.
pub trait Counted {
    /// The device's counters.
    fn stats(&self) -> NetStats;
}

impl<S: Sys + ?Sized> Counted for MuenNet<'_, S> {
    fn stats(&self) -> NetStats {
        MuenNet::stats(self)
    }
}

/// What a host counts of its HTTP connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Requests answered (any status).
    pub requests: u64,
    /// Connections that ended without an answer (the client gave up, sent no whole
    /// request, or the time limit passed).
    pub aborted: u64,
}

/// What a handler may show of its host.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    /// The current time.
    pub now: Instant,
    /// The device's MAC address.
    pub mac: [u8; 6],
    /// The device's counters.
    pub net: NetStats,
    /// Frames smoltcp built that the device refused.
    pub tx_refused: u64,
    /// The host's HTTP counters (before this answer).
    pub http: HttpStats,
}

/// The answer to one connection's request.
pub struct Reply<'r, 's> {
    socket: &'r mut tcp::Socket<'s>,
    sent: bool,
}

impl Reply<'_, '_> {
    /// Sends `response` (head and body) and closes the connection after it. The whole
    /// response must fit the socket's transmit buffer (nothing was sent on the
    /// connection before); otherwise nothing is sent, the connection is reset, and
    /// this returns `false`. Later calls do nothing.
    pub fn send(&mut self, response: &[u8]) -> bool {
        if self.sent {
            return false;
        }
        self.sent = true;
        let fits = !response.is_empty()
            && self.socket.send_capacity() - self.socket.send_queue() >= response.len();
        if fits && self.socket.send_slice(response) == Ok(response.len()) {
            // What the client still sends is read and dropped.
            let _ = self.socket.recv(|b| (b.len(), ()));
            self.socket.close();
            true
        } else {
            self.socket.abort();
            false
        }
    }
}

/// What a service does with requests.
pub trait Handler {
    /// A request arrived on HTTP connection `slot` (0 to the pool's size), whole: its
    /// head, and `body` (as long as its `Content-Length` says); or it is malformed
    /// (`Err`, with its status). Answer with `reply` now, or return without one and
    /// answer later in [`Handler::pending`].
    fn request(
        &mut self,
        slot: usize,
        request: Result<Request<'_>, RequestError>,
        body: &[u8],
        context: &Context,
        reply: &mut Reply<'_, '_>,
    );

    /// Connection `slot` still waits for its answer (asked every round): answer now
    /// with `reply`, or not yet.
    fn pending(&mut self, _slot: usize, _context: &Context, _reply: &mut Reply<'_, '_>) {}

    /// Connection `slot` ended (the client left, or the time limit passed) before it
    /// was answered: forget its request.
    fn abandoned(&mut self, _slot: usize) {}
}

/// An HTTP socket's connection, as the host tracks it.
#[derive(Clone, Copy, Default)]
struct Connection {
    /// When the connection's first segment was seen.
    since: Option<Instant>,
    /// Whether the request was handed to the handler and is not answered yet.
    pending: bool,
    /// Whether the response was queued (the socket is closing).
    answered: bool,
}

/// `now` as smoltcp's instant.
pub fn smoltcp_instant(now: Instant) -> SmolInstant {
    // u64 nanoseconds / 1000 always fits i64 microseconds.
    SmolInstant::from_micros((now.as_nanos() / 1000) as i64)
}

/// An IPv4 host with `N` HTTP sockets listening on one port.
pub struct Host<'a, D: NetDevice + Counted, const N: usize> {
    iface: Interface,
    device: Adapter<D>,
    sockets: SocketSet<'a>,
    port: u16,
    http: [SocketHandle; N],
    connections: [Connection; N],
    stats: HttpStats,
}

impl<'a, D: NetDevice + Counted, const N: usize> Host<'a, D, N> {
    /// A host on `device` at `address`/`prefix_len` whose `N` HTTP sockets listen on
    /// `port`, each with one receive and one transmit buffer of `buffers` (a receive
    /// buffer holds the longest request and is at most [`REQUEST_MAX`] bytes, a
    /// transmit buffer the longest response), in the socket table `slots` (at least
    /// `N` entries; the rest is for the caller's sockets, [`Host::sockets`]). `now` is
    /// the current time, `seed` seeds TCP's initial sequence numbers.
    ///
    /// # Panics
    ///
    /// If `slots` has fewer than `N` entries or a receive buffer is larger than
    /// [`REQUEST_MAX`] (the caller's sizes are wrong).
    pub fn new(
        device: D,
        (address, prefix_len, port): (Ipv4Address, u8, u16),
        buffers: [(&'a mut [u8], &'a mut [u8]); N],
        slots: &'a mut [SocketStorage<'a>],
        now: Instant,
        seed: u64,
    ) -> Self {
        assert!(slots.len() >= N, "a socket slot per HTTP socket");
        let mac = device.info().mac;
        let mut device = Adapter::new(device);
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        config.random_seed = seed;
        let mut iface = Interface::new(config, &mut device, smoltcp_instant(now));
        iface.update_ip_addrs(|addrs| {
            // The interface holds up to two addresses; this is the first.
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(address), prefix_len));
        });
        let mut sockets = SocketSet::new(slots);
        let http = buffers.map(|(rx, tx)| {
            assert!(rx.len() <= REQUEST_MAX, "receive buffer above REQUEST_MAX");
            let mut socket =
                tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
            // ACK at once: a response goes out in the same round anyway, and the ACK
            // of the client's FIN must be out before the socket is reused (`recycle`).
            socket.set_ack_delay(None);
            sockets.add(socket)
        });
        let mut host = Host {
            iface,
            device,
            sockets,
            port,
            http,
            connections: [Connection::default(); N],
            stats: HttpStats::default(),
        };
        host.recycle(smoltcp_instant(now), &mut NoHandler); // every HTTP socket listens
        host
    }

    /// The socket set, for the caller's own sockets.
    pub fn sockets(&mut self) -> &mut SocketSet<'a> {
        &mut self.sockets
    }

    /// The device, e.g. to wait for it with [`Runtime::poll`](muen_subject::Runtime::poll).
    pub fn device(&mut self) -> &mut D {
        self.device.device()
    }

    /// The HTTP counters.
    pub fn stats(&self) -> HttpStats {
        self.stats
    }

    /// Frames smoltcp built that the device refused.
    pub fn tx_refused(&self) -> u64 {
        self.device.tx_refused
    }

    /// What a handler sees of the host at `now`.
    pub fn context(&mut self, now: Instant) -> Context {
        Context {
            now,
            mac: self.device.device().info().mac,
            net: self.device.device().stats(),
            tx_refused: self.device.tx_refused,
            http: self.stats,
        }
    }

    /// Takes in every waiting frame, one by one, so that a socket whose connection
    /// just ended listens again before the next frame (which may be a new client's
    /// SYN). Frames that arrive during the call are left in the device.
    pub fn ingress(&mut self, now: Instant, handler: &mut impl Handler) {
        let now = smoltcp_instant(now);
        while !matches!(
            self.iface
                .poll_ingress_single(now, &mut self.device, &mut self.sockets),
            PollIngressSingleResult::None
        ) {
            self.recycle(now, handler);
        }
        self.recycle(now, handler);
    }

    /// Sends what the sockets queued. (Egress only: a frame that arrived meanwhile
    /// stays in the device, where the caller's idle loop sees it, instead of being
    /// taken in after the sockets were served and then slept over.)
    pub fn egress(&mut self, now: Instant) {
        self.iface
            .poll_egress(smoltcp_instant(now), &mut self.device, &mut self.sockets);
    }

    /// Everything due at `now`: [`Host::ingress`], [`Host::serve`], [`Host::egress`].
    pub fn poll(&mut self, now: Instant, handler: &mut impl Handler) {
        self.ingress(now, handler);
        self.serve(now, handler);
        self.egress(now);
    }

    /// When [`Host::poll`] must run next if no frame arrives before
    /// ([`Instant::MAX`]: only when a frame arrives): smoltcp's timers and the
    /// connections' time limit.
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

    /// Puts every HTTP socket whose connection is over back into LISTEN.
    ///
    /// Over means TIME-WAIT after our close (the client has its answer; holding the
    /// socket for TIME-WAIT's 10 s would starve new clients), or CLOSED after an
    /// abort. Whatever such a socket still has to send (the ACK of the client's FIN,
    /// an abort's reset) goes out first; then `listen` resets it without sending
    /// anything.
    fn recycle(&mut self, now: SmolInstant, handler: &mut impl Handler) {
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
        for (slot, (handle, conn)) in self.http.iter().zip(&mut self.connections).enumerate() {
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
                self.stats.aborted += 1;
            }
            if conn.pending {
                handler.abandoned(slot);
            }
            *conn = Connection::default();
            // Cannot fail: the socket is not open and the port is not 0.
            let _ = socket.listen(self.port);
        }
    }

    /// Hands complete requests to `handler`, asks it about those waiting for their
    /// answer, closes what is done or over its time.
    pub fn serve(&mut self, now: Instant, handler: &mut impl Handler) {
        let mut context = self.context(now);
        for slot in 0..N {
            let socket = self.sockets.get_mut::<tcp::Socket>(self.http[slot]);
            let conn = &mut self.connections[slot];
            if socket.state() == tcp::State::Listen {
                continue;
            }
            let since = *conn.since.get_or_insert(now);
            if now - since >= CONNECTION_LIMIT {
                socket.abort(); // listened on again next round (`recycle`)
                continue;
            }
            if conn.answered {
                // Whatever the client still sends is read and dropped, so that its
                // window stays open until it closes.
                let _ = socket.recv(|b| (b.len(), ()));
                continue;
            }
            let mut reply = Reply {
                socket,
                sent: false,
            };
            if conn.pending {
                handler.pending(slot, &context, &mut reply);
            } else {
                let mut data = [0u8; REQUEST_MAX];
                let capacity = reply.socket.recv_capacity().min(REQUEST_MAX);
                let n = reply.socket.peek_slice(&mut data[..capacity]).unwrap_or(0);
                let closed = reply.socket.state() == tcp::State::CloseWait;
                let request = match http::parse(&data[..n]) {
                    Ok(Some(r)) if r.head_len + r.body_len > capacity => {
                        Err(RequestError::BodyTooLarge)
                    }
                    Ok(Some(r)) if r.head_len + r.body_len <= n => Ok(r),
                    Err(e) => Err(e),
                    Ok(None) if n == capacity => Err(RequestError::HeadTooLarge),
                    // Not whole yet: wait for the rest, unless the client closed its
                    // side without sending it.
                    Ok(_) if !closed => continue,
                    Ok(_) => {
                        reply.socket.close();
                        conn.answered = true;
                        self.stats.aborted += 1;
                        continue;
                    }
                };
                let body = match &request {
                    Ok(r) => &data[r.head_len..r.head_len + r.body_len],
                    Err(_) => &[],
                };
                conn.pending = true;
                handler.request(slot, request, body, &context, &mut reply);
            }
            if reply.sent {
                conn.pending = false;
                conn.answered = true;
                self.stats.requests += 1;
                context.http = self.stats;
            }
        }
    }
}

/// The handler of the first `recycle`, when nothing can be pending.
struct NoHandler;

impl Handler for NoHandler {
    fn request(
        &mut self,
        _: usize,
        _: Result<Request<'_>, RequestError>,
        _: &[u8],
        _: &Context,
        _: &mut Reply<'_, '_>,
    ) {
    }
}
