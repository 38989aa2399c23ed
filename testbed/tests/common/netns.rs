//! Private network namespaces and raw Ethernet frames, so that every test packet stays
//! inside a namespace the test made (and removes).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The EtherType of test frames (IEEE 802 local experimental 1).
pub const ETHERTYPE: u16 = 0x88b5;
/// The MAC address the tests pretend the subject has.
pub const SUBJECT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The MAC address the tests send from.
pub const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace that exists as long as this value.
pub struct Netns {
    name: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    /// A new namespace with loopback up and IPv6 off (so that the kernel sends no
    /// neighbour discovery frames of its own on test interfaces).
    pub fn new() -> Netns {
        let name = format!(
            "mtb-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.exec(&[
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program` run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `args` inside the namespace; it must succeed.
    pub fn exec(&self, args: &[&str]) {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        ip(&full);
    }

    /// Whether interface `ifname` exists in the namespace.
    pub fn has_link(&self, ifname: &str) -> bool {
        Command::new("ip")
            .args(["-n", &self.name, "link", "show", ifname])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Waits up to `timeout` for interface `ifname`.
    pub fn wait_for_link(&self, ifname: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.has_link(ifname) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits up to `timeout` until interface `ifname` is up with carrier, which a TAP
    /// interface has once a program attached to it.
    pub fn wait_for_carrier(&self, ifname: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            let out = Command::new("ip")
                .args(["-n", &self.name, "link", "show", ifname])
                .output();
            if out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("LOWER_UP")) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Moves the calling thread into the namespace (only this thread).
    pub fn enter(&self) {
        let path = std::ffi::CString::new(format!("/var/run/netns/{}", self.name)).unwrap();
        // SAFETY: `path` is NUL-terminated.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        assert!(fd >= 0, "open {path:?}: {}", io::Error::last_os_error());
        // SAFETY: `fd` was just opened.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: setns on a namespace descriptor; affects only this thread.
        let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// An Ethernet frame of the tests' EtherType, padded to the 60-byte minimum.
pub fn frame(dst: [u8; 6], src: [u8; 6], payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.extend_from_slice(payload);
    f.resize(f.len().max(60), 0);
    f
}

/// A raw socket sending and receiving test frames on one interface of the namespace
/// the calling thread is in.
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl PacketSocket {
    /// Opens the socket on `ifname`.
    pub fn open(ifname: &str) -> PacketSocket {
        let proto = (ETHERTYPE).to_be() as i32;
        // SAFETY: plain socket call.
        let fd =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
        assert!(fd >= 0, "AF_PACKET socket: {}", io::Error::last_os_error());
        // SAFETY: just created.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let name = std::ffi::CString::new(ifname).unwrap();
        // SAFETY: NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
        assert!(ifindex > 0, "no interface {ifname}");
        let s = PacketSocket { fd, ifindex };
        let addr = s.address();
        // SAFETY: binds to a live `sockaddr_ll` of the given size.
        let rc = unsafe {
            libc::bind(
                s.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(rc, 0, "bind: {}", io::Error::last_os_error());
        // A large receive buffer: floods come back as floods.
        let size: libc::c_int = 8 << 20;
        // SAFETY: sets an int option from a live local.
        unsafe {
            libc::setsockopt(
                s.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                4,
            )
        };
        s
    }

    fn address(&self) -> libc::sockaddr_ll {
        // SAFETY: all-zero is a valid `sockaddr_ll`.
        let mut a: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        a.sll_family = libc::AF_PACKET as u16;
        a.sll_protocol = ETHERTYPE.to_be();
        a.sll_ifindex = self.ifindex;
        a.sll_halen = 6;
        a
    }

    /// Sends `frame`; `false` if the interface's queue is full.
    pub fn send(&self, frame: &[u8]) -> bool {
        let addr = self.address();
        // SAFETY: sends from a live slice to a live address.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        n == frame.len() as isize
    }

    /// The next frame that arrived on the interface (frames this host sent are
    /// skipped), waiting up to `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: polls one live pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(60_000) as i32) };
            if n <= 0 {
                return None;
            }
            let mut buf = vec![0u8; 2048];
            // SAFETY: all-zero is a valid `sockaddr_ll`.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: receives into live buffers of the given sizes.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                continue;
            }
            if from.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            buf.truncate(n as usize);
            return Some(buf);
        }
    }

    /// Receives until nothing arrives for `quiet`; returns the frames.
    pub fn drain(&self, quiet: Duration) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        while let Some(f) = self.recv(quiet) {
            frames.push(f);
        }
        frames
    }
}
