//! The guestbook on echo's simulated wire, with vault in memory at the other end of
//! an in-memory channel pair, in simulated time.

use super::*;
use crate::{Buffers, ADDRESS, HTTP_PORT, HTTP_SOCKETS, PREFIX_LEN};
use echo::host::Host;
use echo::testing::{leak, Net, Polled, Wire};
use muen_device_compliance::reference::MemBlock;
use muen_subject::device::Pollable;
use smoltcp::iface::SocketStorage;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use vault::{Book, Vault, ANSWER_MAX};
use zerocopy::IntoBytes;

type Queue<T> = Rc<RefCell<VecDeque<T>>>;

/// web's end of `requests`.
struct ToVault(Queue<RequestElement>);

impl Sender<RequestElement> for ToVault {
    fn send(&mut self, element: &RequestElement) {
        self.0.borrow_mut().push_back(*element);
    }
}

/// web's end of `responses`.
struct FromVault(Queue<ResponseElement>);

impl Pollable for FromVault {
    fn has_data(&self) -> bool {
        !self.0.borrow().is_empty()
    }
}

impl Receiver<ResponseElement> for FromVault {
    fn receive(&mut self) -> Result<ResponseElement, ChannelError> {
        self.0.borrow_mut().pop_front().ok_or(ChannelError::Again)
    }
}

/// Who answers web's requests.
enum Peer {
    /// vault, on an in-memory disk.
    Vault(Vault<MemBlock>),
    /// Nobody (vault is down).
    Nobody,
    /// The test, by hand.
    Test,
}

/// web (its host and guestbook) and whoever plays vault.
struct Web {
    host: Host<'static, Wire, HTTP_SOCKETS>,
    book: Guestbook<ToVault, FromVault, HTTP_SOCKETS>,
    to_vault: Queue<RequestElement>,
    from_vault: Queue<ResponseElement>,
    peer: Peer,
}

impl Polled for Web {
    fn poll(&mut self, now: Instant) {
        if let Peer::Vault(v) = &mut self.peer {
            let mut out = [ResponseElement::new_zeroed(); ANSWER_MAX];
            while let Some(request) = self.to_vault.borrow_mut().pop_front() {
                let answer = v.answer(&request, &mut out);
                self.from_vault
                    .borrow_mut()
                    .extend(&out[..answer.responses]);
            }
        }
        self.book.collect();
        self.host.poll(now, &mut self.book);
    }
}

fn vault_on(disk: MemBlock) -> Vault<MemBlock> {
    Vault::new(Book::open(disk).unwrap().0)
}

fn web(peer: Peer) -> Net<Web> {
    let (wire, client) = Wire::pair();
    let buffers = leak(Buffers::new());
    let slots = leak([SocketStorage::EMPTY; HTTP_SOCKETS]);
    let host = Host::new(
        wire,
        (ADDRESS, PREFIX_LEN, HTTP_PORT),
        buffers.pairs(),
        &mut slots[..],
        Instant::ZERO,
        7,
    );
    let (to_vault, from_vault) = (Queue::default(), Queue::default());
    let book = Guestbook::new(
        ToVault(to_vault.clone()),
        FromVault(from_vault.clone()),
        1 << 40,
    );
    Net::new(
        Web {
            host,
            book,
            to_vault,
            from_vault,
            peer,
        },
        client,
    )
}

fn post(name: &str, text: &str) -> Vec<u8> {
    let body = format!("name={name}&text={text}");
    format!(
        "POST /entries HTTP/1.1\r\nHost: 10.0.0.2\r\nContent-Type: \
         application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn split(response: &str) -> (&str, &str) {
    response.split_once("\r\n\r\n").expect("head and body")
}

#[test]
fn entries_are_posted_then_listed_and_read() {
    let mut net = web(Peer::Vault(vault_on(MemBlock::new(64, 512))));
    let r = net.http(10_000, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(split(&r).1, "guestbook: 0 entries\n", "{r}");
    for (i, (name, text)) in [("ann", "hello+there"), ("B%C3%A9a", "caf%C3%A9%21")]
        .into_iter()
        .enumerate()
    {
        let r = net.http(10_001 + i as u16, &post(name, text));
        let (head, body) = split(&r);
        assert!(head.starts_with("HTTP/1.1 201 Created\r\n"), "{r}");
        assert!(
            head.contains(&format!("Location: /entries/{}\r\n", i + 1)),
            "{r}"
        );
        assert!(head.contains("Server: muen-web\r\n"), "{r}");
        assert_eq!(body, format!("entry {}\n", i + 1));
    }
    let r = net.http(10_010, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, body) = split(&r);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert_eq!(
        body,
        "guestbook: 2 entries\n\n#1 ann: hello there\n#2 Béa: café!\n"
    );
    let r = net.http(10_011, b"GET /entries/2 HTTP/1.0\r\n\r\n");
    assert_eq!(split(&r).1, "#2 Béa: café!\n");
    let r = net.http(10_012, b"GET /entries/3 HTTP/1.0\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
    let r = net.http(10_013, b"HEAD / HTTP/1.0\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\n"),
        "{r}"
    );
    assert!(r.contains("Content-Length: 58\r\n"), "{r}");
    let s = net.server.book.stats();
    assert_eq!((s.asked, s.answered, s.timeouts, s.stray), (7, 7, 0, 0));
}

#[test]
fn the_front_page_shows_the_newest_entries() {
    let mut net = web(Peer::Vault(vault_on(MemBlock::new(64, 512))));
    for i in 1..=12u16 {
        let r = net.http(10_000 + i, &post(&format!("n{i}"), "t"));
        assert!(r.starts_with("HTTP/1.1 201"), "{r}");
    }
    let r = net.http(11_000, b"GET / HTTP/1.0\r\n\r\n");
    let body = split(&r).1;
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "guestbook: 12 entries");
    assert_eq!(lines[2], "#3 n3: t");
    assert_eq!(lines.last(), Some(&"#12 n12: t"));
    assert_eq!(lines.len(), 2 + SHOWN as usize);
}

#[test]
fn bad_forms_and_routes_never_reach_vault() {
    let mut net = web(Peer::Vault(vault_on(MemBlock::new(64, 512))));
    for (request, status) in [
        (post("ann", ""), "400 Bad Request"),
        (post("a%0Ab", "x"), "400 Bad Request"),
        (post(&"n".repeat(40), "x"), "400 Bad Request"),
        (
            b"POST /entries HTTP/1.1\r\nContent-Length: 4\r\n\r\nname".to_vec(),
            "400 Bad Request",
        ),
        (b"GET /entries/0 HTTP/1.0\r\n\r\n".to_vec(), "404 Not Found"),
        (b"GET /entries/x HTTP/1.0\r\n\r\n".to_vec(), "404 Not Found"),
        (b"GET /other HTTP/1.0\r\n\r\n".to_vec(), "404 Not Found"),
        (
            b"POST / HTTP/1.0\r\n\r\n".to_vec(),
            "405 Method Not Allowed",
        ),
        (
            b"POST /entries/1 HTTP/1.0\r\n\r\n".to_vec(),
            "405 Method Not Allowed",
        ),
        (b"nonsense\r\n\r\n".to_vec(), "400 Bad Request"),
        (
            b"POST /entries HTTP/1.1\r\nContent-Length: 9000\r\n\r\n".to_vec(),
            "413 Content Too Large",
        ),
    ] {
        let r = net.http(10_000, &request);
        assert!(
            r.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{}: {r}",
            String::from_utf8_lossy(&request)
        );
    }
    let r = net.http(10_100, b"POST / HTTP/1.0\r\n\r\n");
    assert!(r.contains("Allow: GET, HEAD, POST\r\n"), "{r}");
    let r = net.http(10_101, &post("ann", "x%0Ay"));
    assert_eq!(split(&r).1, "text has a control character\n");
    assert_eq!(net.server.book.stats().asked, 0);
}

#[test]
fn vault_that_does_not_answer_is_a_timeout_and_vault_back_is_served() {
    let mut net = web(Peer::Nobody);
    let start = net.now;
    let r = net.http_within(10_000, &post("ann", "anyone?"), 3000);
    assert!(r.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"), "{r}");
    let waited = net.now - start;
    assert!(
        waited >= VAULT_TIMEOUT && waited < VAULT_TIMEOUT + Duration::from_millis(200),
        "{waited:?}"
    );
    assert_eq!(net.server.book.stats().timeouts, 1);
    assert_eq!(net.server.book.next_deadline(), Instant::MAX);
    // vault comes back (the request it missed is not carried out: its tag is
    // answered late, and nobody waits for it any more).
    let mut v = vault_on(MemBlock::new(64, 512));
    let missed = net.server.to_vault.borrow_mut().pop_front().unwrap();
    let mut out = [ResponseElement::new_zeroed(); ANSWER_MAX];
    let a = v.answer(&missed, &mut out);
    net.server
        .from_vault
        .borrow_mut()
        .extend(&out[..a.responses]);
    net.server.peer = Peer::Vault(v);
    let r = net.http(10_001, &post("ben", "now"));
    assert!(r.starts_with("HTTP/1.1 201 Created\r\n"), "{r}");
    assert_eq!(net.server.book.stats().stray, 1);
}

#[test]
fn vaults_refusals_and_garbage_get_their_status() {
    let mut net = web(Peer::Test);
    // Answers the next request with `response` (or raw bytes).
    type Respond = Box<dyn Fn(u64) -> ResponseElement>;
    let cases: [(Respond, &str); 5] = [
        (
            Box::new(|tag| Response::Refused(Refusal::Full).encode(tag)),
            "507 Insufficient Storage",
        ),
        (
            Box::new(|tag| Response::Refused(Refusal::Storage).encode(tag)),
            "503 Service Unavailable",
        ),
        (
            Box::new(|tag| Response::Refused(Refusal::Malformed).encode(tag)),
            "500 Internal Server Error",
        ),
        (
            Box::new(|tag| {
                let mut e = Response::Appended {
                    sequence: 1,
                    total: 1,
                }
                .encode(tag);
                e.as_mut_bytes()[300] = 1; // a byte where none may be
                e
            }),
            "502 Bad Gateway",
        ),
        // An answer of the wrong kind: an entry for an append.
        (
            Box::new(|tag| {
                Response::Entry {
                    sequence: 1,
                    total: 1,
                    last: true,
                    entry: Entry::new("x", "y").unwrap(),
                }
                .encode(tag)
            }),
            "502 Bad Gateway",
        ),
    ];
    for (i, (respond, status)) in cases.into_iter().enumerate() {
        let h = net.tcp();
        net.connect(h, 20_000 + i as u16, HTTP_PORT);
        net.until(100, |n| {
            n.sockets.get::<smoltcp::socket::tcp::Socket>(h).may_send()
        });
        net.sockets
            .get_mut::<smoltcp::socket::tcp::Socket>(h)
            .send_slice(&post("ann", "x"))
            .unwrap();
        net.until(100, |n| !n.server.to_vault.borrow().is_empty());
        let request = net.server.to_vault.borrow_mut().pop_front().unwrap();
        assert!(matches!(request.decode(), Ok(VaultRequest::Append(_))));
        // A stray answer first (another tag), then the real one.
        net.server
            .from_vault
            .borrow_mut()
            .push_back(Response::Refused(Refusal::Full).encode(request.tag() ^ 1));
        net.server
            .from_vault
            .borrow_mut()
            .push_back(respond(request.tag()));
        let mut response = Vec::new();
        net.until(500, |n| {
            let s = n.sockets.get_mut::<smoltcp::socket::tcp::Socket>(h);
            let _ = s.recv(|b| {
                response.extend_from_slice(b);
                (b.len(), ())
            });
            !s.may_recv()
        });
        let r = String::from_utf8(response).unwrap();
        assert!(
            r.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "case {i}: {r}"
        );
        net.sockets
            .get_mut::<smoltcp::socket::tcp::Socket>(h)
            .abort();
    }
    let s = net.server.book.stats();
    assert_eq!((s.stray, s.garbled), (5, 2));
}

#[test]
fn many_clients_wait_for_vault_at_once() {
    let mut net = web(Peer::Vault(vault_on(MemBlock::new(64, 512))));
    let r = net.http(9_999, &post("first", "entry"));
    assert!(r.starts_with("HTTP/1.1 201"), "{r}");
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
            .all(|&h| n.sockets.get::<smoltcp::socket::tcp::Socket>(h).may_send())
    });
    for (i, &h) in handles.iter().enumerate() {
        let request = if i % 2 == 0 {
            post(&format!("c{i}"), "x")
        } else {
            b"GET /entries/1 HTTP/1.0\r\n\r\n".to_vec()
        };
        net.sockets
            .get_mut::<smoltcp::socket::tcp::Socket>(h)
            .send_slice(&request)
            .unwrap();
    }
    let mut answers = vec![Vec::new(); handles.len()];
    net.until(1000, |n| {
        for (i, &h) in handles.iter().enumerate() {
            let s = n.sockets.get_mut::<smoltcp::socket::tcp::Socket>(h);
            let _ = s.recv(|b| {
                answers[i].extend_from_slice(b);
                (b.len(), ())
            });
        }
        handles
            .iter()
            .all(|&h| !n.sockets.get::<smoltcp::socket::tcp::Socket>(h).may_recv())
    });
    for (i, a) in answers.iter().enumerate() {
        let a = String::from_utf8_lossy(a);
        if i % 2 == 0 {
            assert!(a.starts_with("HTTP/1.1 201 Created\r\n"), "{a}");
        } else {
            assert!(a.ends_with("\r\n\r\n#1 first: entry\n"), "{a}");
        }
    }
    for &h in &handles {
        net.sockets
            .get_mut::<smoltcp::socket::tcp::Socket>(h)
            .close();
    }
    net.until(200, |n| {
        handles
            .iter()
            .all(|&h| !n.sockets.get::<smoltcp::socket::tcp::Socket>(h).is_active())
    });
    let r = net.http(30_000, b"GET / HTTP/1.0\r\n\r\n");
    assert!(split(&r).1.starts_with("guestbook: 5 entries\n"), "{r}");
}
