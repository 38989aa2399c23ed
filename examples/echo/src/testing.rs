//! Test support (feature `testing`, and `echo`'s own tests): a [`Host`](crate::host::Host)
//! based server and a smoltcp client on a simulated wire, in simulated time.
//!
//! [`Net`] holds the server (anything [`Polled`]), a client at [`CLIENT_IP`] and the
//! wire between them; [`Net::step`] lets one millisecond pass, in which both sides
//! poll. `examples/web` tests its guestbook with it too.

use std::boxed::Box;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::format;
use std::rc::Rc;
use std::string::String;
use std::vec::Vec;

use muen_subject::device::{NetDevice, NetError, NetInfo, Pollable, FRAME_MAX, MTU};
use muen_subject::net::NetStats;
use muen_subject::smoltcp::Adapter;
use muen_subject::{Duration, Instant};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};

use crate::host::{smoltcp_instant, Counted};

/// The server's MAC address on the wire.
pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// The client's MAC address.
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The client's address (the server is [`crate::ADDRESS`]).
pub const CLIENT_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);

/// The frames travelling one way.
pub type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// One end of a wire: frames in, frames out, counted.
pub struct Wire {
    mac: [u8; 6],
    /// Frames to this end.
    pub rx: Queue,
    /// Frames from this end.
    pub tx: Queue,
    stats: NetStats,
}

impl Wire {
    /// The two ends of a new wire: the server's (with [`SERVER_MAC`]) and the
    /// client's.
    pub fn pair() -> (Wire, Wire) {
        let (a, b) = (Queue::default(), Queue::default());
        let server = Wire {
            mac: SERVER_MAC,
            rx: a.clone(),
            tx: b.clone(),
            stats: NetStats::default(),
        };
        let client = Wire {
            mac: CLIENT_MAC,
            rx: b,
            tx: a,
            stats: NetStats::default(),
        };
        (server, client)
    }
}

impl Pollable for Wire {
    fn has_data(&self) -> bool {
        !self.rx.borrow().is_empty()
    }
}

impl NetDevice for Wire {
    fn info(&self) -> NetInfo {
        NetInfo {
            mac: self.mac,
            mtu: MTU,
        }
    }
    fn receive(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        let f = self.rx.borrow_mut().pop_front().ok_or(NetError::Again)?;
        buf[..f.len()].copy_from_slice(&f);
        self.stats.rx_frames += 1;
        self.stats.rx_bytes += f.len() as u64;
        Ok(f.len())
    }
    fn transmit(&mut self, frame: &[u8]) -> Result<(), NetError> {
        if frame.len() > FRAME_MAX {
            return Err(NetError::FrameTooLarge { len: frame.len() });
        }
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += frame.len() as u64;
        self.tx.borrow_mut().push_back(frame.to_vec());
        Ok(())
    }
}

impl Counted for Wire {
    fn stats(&self) -> NetStats {
        self.stats
    }
}

/// `t` on the heap, for ever (servers borrow their buffers for `'static`).
pub fn leak<T>(t: T) -> &'static mut T {
    Box::leak(Box::new(t))
}

/// A server that the simulated time drives.
pub trait Polled {
    /// Does what is due at `now`.
    fn poll(&mut self, now: Instant);
}

/// The server and a smoltcp client at [`CLIENT_IP`] on one wire, in simulated time.
pub struct Net<S: Polled> {
    /// The server.
    pub server: S,
    client: Interface,
    device: Adapter<Wire>,
    /// The client's sockets.
    pub sockets: SocketSet<'static>,
    /// The simulated time.
    pub now: Instant,
}

impl<S: Polled> Net<S> {
    /// `server` and a client on `client`, the other end of the server's wire, at
    /// time 0.
    pub fn new(server: S, client: Wire) -> Net<S> {
        let mut device = Adapter::new(client);
        let mut iface = Interface::new(
            Config::new(HardwareAddress::Ethernet(EthernetAddress(CLIENT_MAC))),
            &mut device,
            SmolInstant::ZERO,
        );
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(CLIENT_IP.into(), 24));
        });
        let sockets = SocketSet::new(&mut leak([SocketStorage::EMPTY; 40])[..]);
        Net {
            server,
            client: iface,
            device,
            sockets,
            now: Instant::ZERO,
        }
    }

    /// One millisecond: both sides poll.
    pub fn step(&mut self) {
        self.now = self.now + Duration::from_millis(1);
        self.server.poll(self.now);
        let now = smoltcp_instant(self.now);
        self.client.poll(now, &mut self.device, &mut self.sockets);
    }

    /// Steps until `done` (at most `limit` steps).
    ///
    /// # Panics
    ///
    /// If it is not done by then.
    pub fn until(&mut self, limit: u32, mut done: impl FnMut(&mut Self) -> bool) {
        for _ in 0..limit {
            if done(self) {
                return;
            }
            self.step();
        }
        panic!("not done after {limit} ms");
    }

    /// A new client TCP socket with 4 KiB buffers.
    pub fn tcp(&mut self) -> SocketHandle {
        let rx = &mut leak([0u8; 4096])[..];
        let tx = &mut leak([0u8; 8192])[..];
        self.sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(rx),
            tcp::SocketBuffer::new(tx),
        ))
    }

    /// Connects socket `h` from `port` to the server's `server_port`.
    pub fn connect(&mut self, h: SocketHandle, port: u16, server_port: u16) {
        let cx = self.client.context();
        self.sockets
            .get_mut::<tcp::Socket>(h)
            .connect(cx, (crate::ADDRESS, server_port), port)
            .expect("a fresh socket connects");
    }

    /// Sends `request` on a new connection from `port` to port 80 and returns the
    /// whole response (waiting at most `limit` ms for it).
    pub fn http_within(&mut self, port: u16, request: &[u8], limit: u32) -> String {
        let h = self.tcp();
        self.connect(h, port, crate::HTTP_PORT);
        self.until(100, |n| n.sockets.get::<tcp::Socket>(h).may_send());
        let sent = self
            .sockets
            .get_mut::<tcp::Socket>(h)
            .send_slice(request)
            .expect("the request fits");
        assert_eq!(sent, request.len());
        let mut response = Vec::new();
        self.until(limit, |n| {
            let s = n.sockets.get_mut::<tcp::Socket>(h);
            let _ = s.recv(|b| {
                response.extend_from_slice(b);
                (b.len(), ())
            });
            !s.may_recv()
        });
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        s.close();
        self.until(100, |n| !n.sockets.get::<tcp::Socket>(h).is_active());
        self.sockets.remove(h);
        String::from_utf8(response).expect("a text response")
    }

    /// [`Net::http_within`] with 1 s.
    pub fn http(&mut self, port: u16, request: &[u8]) -> String {
        self.http_within(port, request, 1000)
    }
}

/// The value of `key: value` in `page`.
///
/// # Panics
///
/// If the page has no such line.
pub fn counter(page: &str, key: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": ")?.parse().ok())
        .unwrap_or_else(|| panic!("{}", format!("no `{key}` in {page}")))
}
