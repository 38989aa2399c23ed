//! The status page: who the subject is, how long it has run, and its counters.

use core::fmt::{self, Write};

use muen_subject::net::NetStats;
use muen_subject::Duration;

/// What the server itself counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// UDP datagrams echoed.
    pub udp_echoed: u64,
    /// UDP datagrams received but not echoed (transmit buffer full).
    pub udp_dropped: u64,
    /// HTTP requests answered (any status).
    pub http_requests: u64,
    /// HTTP connections closed without a complete request (or timed out).
    pub http_aborted: u64,
    /// Frames smoltcp built that the device refused.
    pub tx_refused: u64,
}

/// Everything the page shows.
#[derive(Clone, Copy, Debug)]
pub struct Page<'a> {
    /// The subject's name (from its sinfo page).
    pub name: &'a str,
    /// The time since the server started.
    pub uptime: Duration,
    /// The device's MAC address.
    pub mac: [u8; 6],
    /// The device's counters.
    pub net: NetStats,
    /// The server's counters.
    pub server: ServerStats,
}

/// Writes the page as `key: value` lines (`text/plain`), one counter a line, so that
/// people and scripts read it alike.
pub fn render(out: &mut impl Write, page: &Page<'_>) -> fmt::Result {
    let m = page.mac;
    let net = &page.net;
    let s = &page.server;
    writeln!(out, "subject: {}", page.name)?;
    writeln!(
        out,
        "uptime: {}.{:03} s",
        page.uptime.as_secs(),
        page.uptime.subsec_millis()
    )?;
    writeln!(out, "address: {}/{}", crate::ADDRESS, crate::PREFIX_LEN)?;
    writeln!(
        out,
        "mac: {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )?;
    let lines: [(&str, u64); 13] = [
        ("frames in", net.rx_frames),
        ("bytes in", net.rx_bytes),
        ("frames out", net.tx_frames),
        ("bytes out", net.tx_bytes),
        ("drops", net.rx_dropped),
        ("overruns", net.rx_overruns),
        ("frames lost", net.rx_lost),
        ("channel errors", net.rx_errors),
        ("tx refused", s.tx_refused),
        ("udp echoed", s.udp_echoed),
        ("udp dropped", s.udp_dropped),
        ("http requests", s.http_requests),
        ("http aborted", s.http_aborted),
    ];
    for (key, value) in lines {
        writeln!(out, "{key}: {value}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_subject_and_every_counter() {
        let page = Page {
            name: "echo",
            uptime: Duration::from_nanos(3_141_592_653),
            mac: [0x02, 0xab, 0, 1, 2, 0xff],
            net: NetStats {
                rx_frames: 10,
                rx_bytes: 1000,
                tx_frames: 9,
                tx_bytes: 900,
                rx_dropped: 1,
                rx_overruns: 2,
                rx_lost: 3,
                rx_errors: 4,
            },
            server: ServerStats {
                udp_echoed: 5,
                udp_dropped: 6,
                http_requests: 7,
                http_aborted: 8,
                tx_refused: 9,
            },
        };
        let mut text = String::new();
        render(&mut text, &page).unwrap();
        assert_eq!(
            text,
            "subject: echo\nuptime: 3.141 s\naddress: 10.0.0.2/24\nmac: 02:ab:00:01:02:ff\n\
             frames in: 10\nbytes in: 1000\nframes out: 9\nbytes out: 900\ndrops: 1\n\
             overruns: 2\nframes lost: 3\nchannel errors: 4\ntx refused: 9\n\
             udp echoed: 5\nudp dropped: 6\nhttp requests: 7\nhttp aborted: 8\n"
        );
    }
}
