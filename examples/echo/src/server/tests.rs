//! The server against hand-made frames and a smoltcp client on a simulated wire, in
//! simulated time.

use super::*;
use crate::host::CONNECTION_LIMIT;
use crate::testing::{counter, leak, Net, Polled, Wire, CLIENT_IP, CLIENT_MAC, SERVER_MAC};
use muen_subject::Duration;
use smoltcp::iface::SocketStorage;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::tcp;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpEndpoint, IpProtocol, Ipv4Packet, Ipv4Repr,
};

impl Polled for Server<'static, Wire> {
    fn poll(&mut self, now: Instant) {
        Server::poll(self, now)
    }
}

/// A server on one end of a new wire, and the other end.
fn server(now: Instant) -> (Server<'static, Wire>, Wire) {
    let (wire, client) = Wire::pair();
    let memory = Memory::new(
        leak(Buffers::new()),
        leak([udp::PacketMetadata::EMPTY; 2 * UDP_PACKETS]),
    );
    let slots = leak([SocketStorage::EMPTY; SOCKETS]);
    let s = Server::new(wire, memory, slots, "test", now, 42);
    (s, client)
}

fn net() -> Net<Server<'static, Wire>> {
    let (server, client) = server(Instant::ZERO);
    Net::new(server, client)
}

fn frame(dst: [u8; 6], ethertype: EthernetProtocol, payload_len: usize) -> Vec<u8> {
    let eth = EthernetRepr {
        src_addr: EthernetAddress(CLIENT_MAC),
        dst_addr: EthernetAddress(dst),
        ethertype,
    };
    let mut f = vec![0u8; eth.buffer_len() + payload_len];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    f
}

#[test]
fn answers_arp_and_ping() {
    let (mut s, client) = server(Instant::ZERO);
    let (to, from) = (client.tx, client.rx);
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress(CLIENT_MAC),
        source_protocol_addr: CLIENT_IP,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: ADDRESS,
    };
    let mut f = frame([0xff; 6], EthernetProtocol::Arp, arp.buffer_len());
    arp.emit(&mut ArpPacket::new_unchecked(&mut f[14..]));
    to.borrow_mut().push_back(f);
    s.poll(Instant::from_nanos(1_000_000));
    let reply = from.borrow_mut().pop_front().expect("an ARP reply");
    let reply = EthernetFrame::new_checked(&reply[..]).unwrap();
    assert_eq!(reply.dst_addr(), EthernetAddress(CLIENT_MAC));
    let arp = ArpRepr::parse(&ArpPacket::new_checked(reply.payload()).unwrap()).unwrap();
    assert!(matches!(
        arp,
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr,
            source_protocol_addr,
            ..
        } if source_hardware_addr == EthernetAddress(SERVER_MAC) && source_protocol_addr == ADDRESS
    ));

    // ICMP echo request, 56 bytes of data, as ping sends it.
    let data: Vec<u8> = (0..56).collect();
    let icmp = Icmpv4Repr::EchoRequest {
        ident: 0x1234,
        seq_no: 7,
        data: &data,
    };
    let ip = Ipv4Repr {
        src_addr: CLIENT_IP,
        dst_addr: ADDRESS,
        next_header: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: 64,
    };
    let mut f = frame(
        SERVER_MAC,
        EthernetProtocol::Ipv4,
        ip.buffer_len() + icmp.buffer_len(),
    );
    let caps = ChecksumCapabilities::default();
    let mut packet = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.emit(&mut packet, &caps);
    icmp.emit(
        &mut Icmpv4Packet::new_unchecked(packet.payload_mut()),
        &caps,
    );
    to.borrow_mut().push_back(f);
    s.poll(Instant::from_nanos(2_000_000));
    let reply = from.borrow_mut().pop_front().expect("an echo reply");
    let eth = EthernetFrame::new_checked(&reply[..]).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert_eq!(ip.dst_addr(), CLIENT_IP);
    let icmp = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(ip.payload()).unwrap(), &caps).unwrap();
    assert_eq!(
        icmp,
        Icmpv4Repr::EchoReply {
            ident: 0x1234,
            seq_no: 7,
            data: &data
        }
    );
    assert!(from.borrow().is_empty());
}

#[test]
fn echoes_udp_datagrams_of_every_size_to_their_sender() {
    let mut net = net();
    let rx = udp::PacketBuffer::new(
        &mut leak([udp::PacketMetadata::EMPTY; 4])[..],
        &mut leak([0u8; 4096])[..],
    );
    let tx = udp::PacketBuffer::new(
        &mut leak([udp::PacketMetadata::EMPTY; 4])[..],
        &mut leak([0u8; 4096])[..],
    );
    let mut socket = udp::Socket::new(rx, tx);
    socket.bind(4000).unwrap();
    let h = net.sockets.add(socket);
    let server = IpEndpoint::new(ADDRESS.into(), UDP_PORT);
    for size in (1..=UDP_PAYLOAD_MAX).step_by(97).chain([UDP_PAYLOAD_MAX]) {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + size) as u8).collect();
        net.sockets
            .get_mut::<udp::Socket>(h)
            .send_slice(&data, server)
            .unwrap();
        let mut back = Vec::new();
        net.until(100, |n| {
            let s = n.sockets.get_mut::<udp::Socket>(h);
            match s.recv() {
                Ok((d, meta)) => {
                    assert_eq!(meta.endpoint, server);
                    back = d.to_vec();
                    true
                }
                Err(_) => false,
            }
        });
        assert_eq!(back, data, "size {size}");
    }
    assert_eq!(net.server.stats().udp_echoed, 17);
    assert_eq!(net.server.stats().udp_dropped, 0);
}

#[test]
fn serves_the_status_page_on_sequential_and_concurrent_connections() {
    let mut net = net();
    for i in 0..40u16 {
        let r = net.http(10_000 + i, b"GET / HTTP/1.0\r\n\r\n");
        let (head, body) = r.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{head}"
        );
        assert!(body.starts_with("subject: test\n"), "{body}");
        assert_eq!(counter(body, "http requests"), u64::from(i) + 1);
        assert!(counter(body, "frames in") > 0 && counter(body, "bytes out") > 0);
    }
    // HTTP_SOCKETS clients at once: every one is accepted and answered.
    let handles: Vec<_> = (0..HTTP_SOCKETS as u16)
        .map(|i| {
            let h = net.tcp();
            net.connect(h, 20_000 + i, HTTP_PORT);
            h
        })
        .collect();
    net.until(200, |n| {
        handles
            .iter()
            .all(|&h| n.sockets.get::<tcp::Socket>(h).may_send())
    });
    for &h in &handles {
        let s = net.sockets.get_mut::<tcp::Socket>(h);
        s.send_slice(b"GET / HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n")
            .unwrap();
    }
    let mut answers = vec![Vec::new(); handles.len()];
    net.until(1000, |n| {
        for (i, &h) in handles.iter().enumerate() {
            let s = n.sockets.get_mut::<tcp::Socket>(h);
            let _ = s.recv(|b| {
                answers[i].extend_from_slice(b);
                (b.len(), ())
            });
        }
        handles
            .iter()
            .all(|&h| !n.sockets.get::<tcp::Socket>(h).may_recv())
    });
    for a in &answers {
        assert!(String::from_utf8_lossy(a).starts_with("HTTP/1.1 200 OK\r\n"));
    }
    assert_eq!(net.server.stats().http_requests, 40 + HTTP_SOCKETS as u64);
}

#[test]
fn errors_get_their_status() {
    let mut net = net();
    let r = net.http(10_000, b"GET /missing HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
    let r = net.http(10_001, b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{r}");
    assert!(r.contains("Allow: GET, HEAD\r\n"), "{r}");
    let r = net.http(10_002, b"HEAD / HTTP/1.0\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\n"),
        "{r}"
    );
    let r = net.http(10_003, b"hello\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{r}");
    // A head that never ends within the receive buffer.
    let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(HTTP_RX));
    let r = net.http(10_004, long.as_bytes());
    assert!(
        r.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{r}"
    );
    // An incomplete head waits for the rest.
    let h = net.tcp();
    net.connect(h, 10_005, HTTP_PORT);
    net.until(100, |n| n.sockets.get::<tcp::Socket>(h).may_send());
    let s = net.sockets.get_mut::<tcp::Socket>(h);
    s.send_slice(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    for _ in 0..100 {
        net.step();
    }
    let s = net.sockets.get_mut::<tcp::Socket>(h);
    assert!(!s.can_recv() && s.may_recv(), "answered an incomplete head");
    s.send_slice(b"\r\n").unwrap();
    net.until(100, |n| n.sockets.get::<tcp::Socket>(h).can_recv());
    let mut head = [0u8; 15];
    let s = net.sockets.get_mut::<tcp::Socket>(h);
    s.recv_slice(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 OK");
}

#[test]
fn idle_connections_are_dropped_at_the_limit_and_their_sockets_reused() {
    let mut net = net();
    // Every HTTP socket taken by a client that sends nothing.
    let idle: Vec<_> = (0..HTTP_SOCKETS as u16)
        .map(|i| {
            let h = net.tcp();
            net.connect(h, 30_000 + i, HTTP_PORT);
            h
        })
        .collect();
    net.until(200, |n| {
        idle.iter()
            .all(|&h| n.sockets.get::<tcp::Socket>(h).may_send())
    });
    // The server sees the handshakes' last ACKs.
    net.step();
    // The server wants to wake up at the limit, not before.
    let due = net.server.poll_at(net.now);
    assert!(
        due > net.now + (CONNECTION_LIMIT - Duration::from_secs(1)),
        "{due}"
    );
    assert!(due <= net.now + CONNECTION_LIMIT);
    // One more client finds no listening socket and is refused.
    let extra = net.tcp();
    net.connect(extra, 31_000, HTTP_PORT);
    net.until(100, |n| !n.sockets.get::<tcp::Socket>(extra).is_open());
    // After the limit the idle ones are aborted and the sockets listen again.
    net.until(11_000, |n| {
        idle.iter()
            .all(|&h| !n.sockets.get::<tcp::Socket>(h).is_open())
    });
    for h in idle.into_iter().chain([extra]) {
        net.sockets.remove(h);
    }
    let r = net.http(32_000, b"GET / HTTP/1.0\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200 OK"), "{r}");
    let body = r.split_once("\r\n\r\n").unwrap().1;
    assert_eq!(counter(body, "http aborted"), HTTP_SOCKETS as u64);
}
