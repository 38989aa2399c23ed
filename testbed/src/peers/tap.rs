//! A TAP interface: Ethernet frames between the testbed and the host's network stack.
//!
//! [`Tap::open`] attaches to the interface (`/dev/net/tun`, `IFF_TAP | IFF_NO_PI`),
//! creating it if it does not exist. An interface the testbed created is not
//! persistent: Linux removes it when the descriptor closes, on every exit path of the
//! testbed (including SIGKILL). The testbed sets such an interface up; addresses and
//! routes are the user's to configure. A persistent interface made beforehand (`ip
//! tuntap add`) is only attached to and stays.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use zerocopy::{FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::os::{cvt, cvt_size};

/// `ioctl` numbers from `<linux/sockios.h>` (not in every libc version).
const SIOCGIFFLAGS: libc::c_ulong = 0x8913;
const SIOCSIFFLAGS: libc::c_ulong = 0x8914;

/// `struct ifreq` with the `short` flags member of its union, as `TUNSETIFF` and
/// `SIOC[GS]IFFLAGS` use it.
#[derive(FromZeros, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _union_rest: [u8; 22],
}

const _: () = assert!(std::mem::size_of::<IfReq>() == 40);
const _: () = assert!(std::mem::offset_of!(IfReq, flags) == 16);

/// An open TAP interface.
#[derive(Debug)]
pub struct Tap {
    fd: OwnedFd,
    name: String,
    created: bool,
}

/// Checks an interface name: 1 to 15 bytes, none of them `/`, NUL or white space.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(format!(
            "interface name \"{name}\" must have 1 to {} bytes",
            libc::IFNAMSIZ - 1
        ));
    }
    if name
        .bytes()
        .any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace())
        || name == "."
        || name == ".."
    {
        return Err(format!("\"{name}\" is not a valid interface name"));
    }
    Ok(())
}

impl Tap {
    /// Attaches to TAP interface `name`, creating (and setting up) it if needed.
    pub fn open(name: &str) -> io::Result<Tap> {
        check_name(name).map_err(io::Error::other)?;
        let cname = CString::new(name).map_err(io::Error::other)?;
        // SAFETY: `cname` is a NUL-terminated string.
        let existed = unsafe { libc::if_nametoindex(cname.as_ptr()) } != 0;
        // SAFETY: the path is a NUL-terminated literal.
        let fd = cvt(unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        })
        .map_err(|e| io::Error::new(e.kind(), format!("/dev/net/tun: {e}")))?;
        // SAFETY: `open` just returned `fd`.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut req = ifreq(name);
        req.flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`; `req` is one (layout
        // checked above) and lives across the call.
        cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut req) }).map_err(
            |e| io::Error::new(e.kind(), format!("attaching to TAP interface {name}: {e}")),
        )?;
        let tap = Tap {
            fd,
            name: name.to_string(),
            created: !existed,
        };
        if tap.created {
            tap.set_up()?;
        }
        Ok(tap)
    }

    /// Uses `fd` in place of a TAP interface: any descriptor on which one `read` returns
    /// one frame and one `write` sends one (a `SOCK_SEQPACKET` socket, say). It is made
    /// non-blocking. Tests run the bridge this way without root or network namespaces.
    pub fn from_fd(fd: OwnedFd, name: &str) -> io::Result<Tap> {
        // SAFETY: plain fcntl calls on a descriptor we own.
        unsafe {
            let flags = cvt(libc::fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
            cvt(libc::fcntl(
                fd.as_raw_fd(),
                libc::F_SETFL,
                flags | libc::O_NONBLOCK,
            ))?;
        }
        Ok(Tap {
            fd,
            name: name.to_string(),
            created: false,
        })
    }

    fn set_up(&self) -> io::Result<()> {
        // SAFETY: plain socket call.
        let sock =
            cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: `socket` just returned it.
        let sock = unsafe { OwnedFd::from_raw_fd(sock) };
        let mut req = ifreq(&self.name);
        // SAFETY: SIOC[GS]IFFLAGS read and write a `struct ifreq` that lives across the
        // calls.
        unsafe {
            cvt(libc::ioctl(sock.as_raw_fd(), SIOCGIFFLAGS as _, &mut req))?;
            req.flags |= libc::IFF_UP as libc::c_short;
            cvt(libc::ioctl(sock.as_raw_fd(), SIOCSIFFLAGS as _, &mut req))?;
        }
        Ok(())
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the testbed created the interface (it disappears when the testbed ends).
    pub fn created(&self) -> bool {
        self.created
    }

    /// The descriptor, for polling.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Reads one frame into `buf`; `Ok(None)` when none is queued.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // SAFETY: reads into a live, exclusively borrowed buffer of its length.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match cvt_size(n) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes one frame (the host stack receives it).
    pub fn write(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: writes from a live slice.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
        cvt_size(n).map(|_| ())
    }
}

fn ifreq(name: &str) -> IfReq {
    let mut req = IfReq::new_zeroed();
    // `check_name` limited the name to IFNAMSIZ - 1 bytes, leaving the NUL.
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        assert!(check_name("tap0").is_ok());
        assert!(check_name("a23456789012345").is_ok());
        assert!(check_name("a234567890123456").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("..").is_err());
    }
}
