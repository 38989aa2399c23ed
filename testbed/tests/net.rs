//! The network bridge, end to end: frames from a TAP interface in a private network
//! namespace reach the test subject and its replies come back; a flooded subject
//! survives; pcap files are readable by tshark; TAP interfaces the testbed created are
//! gone afterwards. Every test makes its own namespace and removes it; no frame leaves
//! it. These tests need root; their names start with `netns_` so that
//! `scripts/test.sh` can skip them (visibly) when it does not run as root.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::netns::{frame, Netns, PacketSocket, HOST_MAC, SUBJECT_MAC};
use common::{example, require_root, show, stat, subject, temp};

/// A running testbed that is killed if the test fails before it ends.
struct Running(Option<Child>);

impl Running {
    fn wait(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts the echo subject in `ns`, bridged to `tap`.
fn start_echo(ns: &Netns, tap: &str, extra: &[&str], mode: &[&str]) -> Running {
    let child = ns
        .command(env!("CARGO_BIN_EXE_muen-testbed"))
        .args(["run", "--exec", subject()])
        .arg(example("echo"))
        .arg("--tap")
        .arg(format!("service0={tap}"))
        .args(["--timeout", "60", "--stats"])
        .args(extra)
        .arg("--")
        .args(mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Running(Some(child))
}

fn payload(f: &[u8]) -> &[u8] {
    let p = &f[14..];
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    &p[..end]
}

/// Sends `SEQ <i>` and expects it back with swapped addresses.
fn round_trip(sock: &PacketSocket, i: u32) {
    let text = format!("SEQ {i}");
    assert!(sock.send(&frame(SUBJECT_MAC, HOST_MAC, text.as_bytes())));
    loop {
        let reply = sock
            .recv(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no reply to frame {i}"));
        if payload(&reply) != text.as_bytes() {
            continue; // an echo of an earlier flood
        }
        assert_eq!(reply[..6], HOST_MAC, "destination of reply {i}");
        assert_eq!(reply[6..12], SUBJECT_MAC, "source of reply {i}");
        return;
    }
}

fn quit(sock: &PacketSocket) {
    assert!(sock.send(&frame(SUBJECT_MAC, HOST_MAC, b"QUIT")));
}

/// From a thread inside `ns`: `count` round trips through `ifname`, then `QUIT`.
fn round_trips_then_quit(ns: &Netns, ifname: &str, count: u32) {
    std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let sock = PacketSocket::open(ifname);
            for i in 0..count {
                round_trip(&sock, i);
            }
            quit(&sock);
        })
        .join()
        .unwrap();
    });
}

fn tshark_count(pcap: &std::path::Path, filter: &str) -> usize {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-Y", filter, "-T", "fields", "-e", "frame.number"])
        .output()
        .expect("running tshark");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn netns_frames_from_a_tap_reach_the_subject_and_replies_come_back() {
    require_root("netns_frames_from_a_tap_reach_the_subject_and_replies_come_back");
    let ns = Netns::new();
    let pcap = temp("echo.pcap");
    let pcap_arg = format!("service0={}", pcap.display());
    let run = start_echo(&ns, "tbecho0", &["--pcap", &pcap_arg], &["echo"]);
    assert!(
        ns.wait_for_carrier("tbecho0", Duration::from_secs(20)),
        "the TAP interface never came up"
    );
    round_trips_then_quit(&ns, "tbecho0", 200);
    let out = run.wait();
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        stat(&out.stderr, "from_subject"),
        Some(200),
        "{}",
        show(&out)
    );
    assert_eq!(stat(&out.stderr, "to_subject"), Some(201), "{}", show(&out));
    // The testbed created the interface, so it is gone with the testbed.
    assert!(
        !ns.has_link("tbecho0"),
        "the TAP interface outlived the testbed"
    );
    // 200 frames each way plus QUIT, all readable by tshark.
    assert_eq!(tshark_count(&pcap, ""), 401);
    assert_eq!(
        tshark_count(&pcap, "eth.type == 0x88b5 && eth.src == 02:00:00:00:00:01"),
        200
    );
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        log.contains("echo|echo: 201 frames, 0 overruns, 0 lost"),
        "{log}"
    );
}

#[test]
fn netns_a_flooded_subject_survives_counts_overruns_and_keeps_answering() {
    require_root("netns_a_flooded_subject_survives_counts_overruns_and_keeps_answering");
    let ns = Netns::new();
    // The subject spends 100 us on every frame: at most 10000 frames/s.
    let run = start_echo(&ns, "tbflood0", &[], &["echo", "100"]);
    assert!(ns.wait_for_carrier("tbflood0", Duration::from_secs(20)));
    let (overruns, lost) = std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let sock = PacketSocket::open("tbflood0");
            round_trip(&sock, 0);
            let mut sent = 0;
            for i in 0..50_000u32 {
                if sock.send(&frame(
                    SUBJECT_MAC,
                    HOST_MAC,
                    format!("FLOOD {i}").as_bytes(),
                )) {
                    sent += 1;
                }
            }
            assert!(sent > 5_000, "only {sent} flood frames went out");
            let echoed = sock.drain(Duration::from_millis(700)).len();
            assert!(echoed < sent, "all {sent} frames came back: no flood");
            assert!(sock.send(&frame(SUBJECT_MAC, HOST_MAC, b"STATS")));
            let stats = loop {
                let f = sock.recv(Duration::from_secs(10)).expect("no STATS reply");
                if payload(&f).starts_with(b"STATS") {
                    break String::from_utf8_lossy(payload(&f)).to_string();
                }
            };
            let field = |k: &str| -> u64 {
                stats
                    .split_whitespace()
                    .find_map(|kv| kv.strip_prefix(k))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{k} in {stats}"))
            };
            // Still answering after the flood.
            for i in 1..=20 {
                round_trip(&sock, i);
            }
            quit(&sock);
            (field("overruns="), field("lost="))
        })
        .join()
        .unwrap()
    });
    assert!(overruns > 0 && lost > 0, "overruns {overruns}, lost {lost}");
    let out = run.wait();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stat(&out.stderr, "to_subject").unwrap() > 5_000,
        "{}",
        show(&out)
    );
}

#[test]
fn netns_an_existing_tap_is_used_and_left_in_place() {
    require_root("netns_an_existing_tap_is_used_and_left_in_place");
    let ns = Netns::new();
    ns.exec(&["ip", "tuntap", "add", "dev", "tbkeep0", "mode", "tap"]);
    ns.exec(&["ip", "link", "set", "tbkeep0", "up"]);
    let run = start_echo(&ns, "tbkeep0", &[], &["echo"]);
    assert!(ns.wait_for_carrier("tbkeep0", Duration::from_secs(20)));
    round_trips_then_quit(&ns, "tbkeep0", 5);
    let out = run.wait();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        ns.has_link("tbkeep0"),
        "the testbed removed an interface it did not create"
    );
}

#[test]
fn netns_a_killed_testbed_leaves_no_subject_and_no_tap() {
    require_root("netns_a_killed_testbed_leaves_no_subject_and_no_tap");
    let ns = Netns::new();
    let mut run = start_echo(&ns, "tbkill0", &[], &["echo"]);
    assert!(ns.wait_for_carrier("tbkill0", Duration::from_secs(20)));
    let child = run.0.take().unwrap();
    // `ip netns exec` execs the testbed, so this is the testbed's pid.
    let pid = child.id() as i32;
    let subject_pid = (0..100)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            let children =
                std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
            children.split_whitespace().next()?.parse::<i32>().ok()
        })
        .expect("the subject never started");
    // SAFETY: signals a process of our own.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = child.wait_with_output();
    let gone = (0..250).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        !std::path::Path::new(&format!("/proc/{subject_pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{subject_pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    });
    assert!(gone, "the subject outlived a killed testbed");
    assert!(
        (0..250).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            !ns.has_link("tbkill0")
        }),
        "the TAP interface outlived a killed testbed"
    );
}
