//! The example apps end to end, as a user runs them: `muen-testbed run examples/APP`
//! builds the app with cargo, generates its policy and runs it; real clients talk to
//! it.
//!
//! - `echo` in a private network namespace per test, bridged to a TAP interface with
//!   10.0.0.1/24: `ping`, a UDP client (std's `UdpSocket` on a thread that entered the
//!   namespace), `curl` and `ab`. Every packet stays inside the namespace, which is
//!   removed afterwards. These tests need root; their names start with `netns_` so
//!   that `scripts/test.sh` can skip them (visibly) when it does not run as root.
//! - `blockstore` on an image file: three boots, then damaged images.
//!
//! The apps are built in a target directory of their own (as in `app.rs`), so that
//! the cargo building them does not wait for the lock of the cargo running this test.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::netns::Netns;
use common::{example, log_lines, require_root, show, temp};

/// The subject's address (examples/echo's documented static address).
const SUBJECT_IP: &str = "10.0.0.2";
/// The namespace's address on the TAP interface.
const HOST_CIDR: &str = "10.0.0.1/24";

/// Where the example apps are built.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-target")
}

/// Builds `app` once per test binary (cargo's output goes to the test's stderr), so
/// that a test's time limits do not include the first build.
fn build(app: &str) {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if built.iter().any(|a| a == app) {
        return;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--manifest-path"])
        .arg(example(app).join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_NET_OFFLINE", "true")
        .status()
        .unwrap();
    assert!(status.success(), "building examples/{app} failed");
    built.push(app.to_string());
}

/// `muen-testbed run examples/APP ARGS`, in `ns` if given.
fn run_command(ns: Option<&Netns>, app: &str, args: &[&str]) -> Command {
    build(app);
    let exe = env!("CARGO_BIN_EXE_muen-testbed");
    let mut c = match ns {
        Some(ns) => ns.command(exe),
        None => Command::new(exe),
    };
    c.env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_NET_OFFLINE", "true")
        .arg("run")
        .arg(example(app))
        .args(args);
    c
}

/// A running testbed whose log lines arrive on a channel and whose stderr is
/// collected; stopped (SIGTERM, then SIGKILL) when dropped.
struct Running {
    child: Option<Child>,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    fn start(mut command: Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        Running {
            child: Some(child),
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// Waits for a log line containing `text`.
    fn wait_for(&mut self, text: &str, timeout: Duration) {
        let end = Instant::now() + timeout;
        while !self.seen.iter().any(|l| l.contains(text)) {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "no log line with `{text}` within {timeout:?}; the log:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Stops the testbed with SIGTERM (it stops the subject and exits 128 + 15);
    /// returns its exit status and its stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().unwrap();
        // `ip netns exec` execs the testbed, so this is the testbed's pid.
        // SAFETY: signals a child of this process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let code = child.wait().unwrap().code();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        (code, stderr)
    }

    /// Stops the testbed; it must have ended as SIGTERM ends it.
    fn stop_cleanly(self) -> String {
        let (code, stderr) = self.stop();
        assert_eq!(code, Some(128 + libc::SIGTERM), "{stderr}");
        stderr
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            // SAFETY: as in `stop`.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let end = Instant::now() + Duration::from_secs(5);
            while Instant::now() < end {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A namespace with a persistent TAP interface `tap0` at 10.0.0.1/24 and `echo`
/// running on it (`--stats`), ready (its "listening" line logged).
fn echo_in_namespace() -> (Netns, Running) {
    let ns = Netns::new();
    ns.exec(&["ip", "tuntap", "add", "dev", "tap0", "mode", "tap"]);
    ns.exec(&["ip", "addr", "add", HOST_CIDR, "dev", "tap0"]);
    ns.exec(&["ip", "link", "set", "tap0", "up"]);
    let mut run = Running::start(run_command(
        Some(&ns),
        "echo",
        &["--tap", "service0=tap0", "--timeout", "300", "--stats"],
    ));
    run.wait_for("listening on 10.0.0.2/24", Duration::from_secs(60));
    (ns, run)
}

/// `program args` in the namespace; its output.
fn in_ns(ns: &Netns, program: &str, args: &[&str]) -> Output {
    ns.command(program).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of `key: value` in the status page.
fn counter(page: &str, key: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": ")?.parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` in the page:\n{page}"))
}

fn status_page(ns: &Netns) -> String {
    let out = in_ns(ns, "curl", &["-sS", "--max-time", "10", "http://10.0.0.2/"]);
    assert!(out.status.success(), "curl: {}", show(&out));
    text(&out)
}

#[test]
fn netns_echo_answers_twenty_pings() {
    require_root("netns_echo_answers_twenty_pings");
    let (ns, run) = echo_in_namespace();
    let out = in_ns(
        &ns,
        "ping",
        &["-c", "20", "-i", "0.05", "-W", "2", SUBJECT_IP],
    );
    let report = text(&out);
    assert!(
        report.contains("20 packets transmitted, 20 received"),
        "{}",
        show(&out)
    );
    assert!(out.status.success());
    run.stop_cleanly();
}

/// The `key=value` of `key` in the testbed's `--stats` lines.
fn stat(stderr: &str, key: &str) -> f64 {
    stderr
        .lines()
        .filter(|l| l.starts_with("muen-testbed: stats:"))
        .flat_map(|l| l.split_whitespace())
        .find_map(|kv| kv.strip_prefix(&format!("{key}="))?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in the stats:\n{stderr}"))
}

#[test]
fn netns_an_idle_echo_sleeps_instead_of_spinning() {
    require_root("netns_an_idle_echo_sleeps_instead_of_spinning");
    let (ns, run) = echo_in_namespace();
    // One exchange, then nothing for three seconds.
    let out = in_ns(&ns, "ping", &["-c", "1", "-W", "2", SUBJECT_IP]);
    assert!(out.status.success(), "{}", show(&out));
    std::thread::sleep(Duration::from_secs(3));
    let stderr = run.stop_cleanly();
    // A spinning subject would use a whole CPU (100 %); a sleeping one wakes at most
    // once a second while nothing happens.
    let cpu = stat(&stderr, "subject_cpu_pct");
    assert!(cpu < 5.0, "the idle subject used {cpu} % CPU:\n{stderr}");
    assert!(stat(&stderr, "halts") >= 3.0, "{stderr}");
}

#[test]
fn netns_echo_returns_a_thousand_udp_datagrams_intact() {
    require_root("netns_echo_returns_a_thousand_udp_datagrams_intact");
    let (ns, run) = echo_in_namespace();
    let server: SocketAddr = format!("{SUBJECT_IP}:7").parse().unwrap();
    // A thread that entered the namespace: its sockets live there.
    let (intact, sizes) = std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let socket = UdpSocket::bind("10.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 2048];
            let mut intact = 0;
            let mut sizes = (usize::MAX, 0);
            for i in 0..1000usize {
                // Sizes 1 to 1472 (the largest unfragmented payload), evenly spread.
                let size = 1 + i * 1471 / 999;
                let data: Vec<u8> = (0..size)
                    .map(|j| (j as u32).wrapping_mul(2654435761).wrapping_add(i as u32) as u8)
                    .collect();
                socket.send_to(&data, server).unwrap();
                let (n, from) = socket
                    .recv_from(&mut buf)
                    .unwrap_or_else(|e| panic!("datagram {i} ({size} bytes): {e}"));
                assert_eq!(from, server, "datagram {i}");
                assert_eq!(&buf[..n], &data[..], "datagram {i} ({size} bytes)");
                intact += 1;
                sizes = (sizes.0.min(size), sizes.1.max(size));
            }
            (intact, sizes)
        })
        .join()
        .unwrap()
    });
    assert_eq!(intact, 1000);
    assert_eq!(sizes, (1, 1472));
    let page = status_page(&ns);
    assert_eq!(counter(&page, "udp echoed"), 1000, "{page}");
    assert_eq!(counter(&page, "udp dropped"), 0, "{page}");
    run.stop_cleanly();
}

#[test]
fn netns_echo_serves_its_status_page_to_curl_and_ab() {
    require_root("netns_echo_serves_its_status_page_to_curl_and_ab");
    let (ns, run) = echo_in_namespace();
    let page = status_page(&ns);
    assert!(page.starts_with("subject: echo\n"), "{page}");
    assert!(page.contains("address: 10.0.0.2/24\n"), "{page}");
    assert!(page.contains("uptime: "), "{page}");
    // ARP, the handshake and the request came in; the answers went out.
    assert!(counter(&page, "frames in") >= 3, "{page}");
    assert!(counter(&page, "bytes in") > 0, "{page}");
    assert!(counter(&page, "frames out") >= 2, "{page}");
    assert!(counter(&page, "bytes out") > 0, "{page}");
    for key in ["drops", "overruns", "frames lost", "channel errors"] {
        assert_eq!(counter(&page, key), 0, "{key}: {page}");
    }
    assert_eq!(counter(&page, "http requests"), 1, "{page}");

    // Many connections, 8 at a time (`-l`: the page's length changes as it counts).
    let out = in_ns(
        &ns,
        "ab",
        &["-q", "-l", "-n", "500", "-c", "8", "http://10.0.0.2/"],
    );
    let report = text(&out);
    assert!(out.status.success(), "{}", show(&out));
    assert!(report.contains("Complete requests:      500"), "{report}");
    assert!(report.contains("Failed requests:        0"), "{report}");

    let page = status_page(&ns);
    assert_eq!(counter(&page, "http requests"), 502, "{page}");
    assert!(counter(&page, "frames in") > 2000, "{page}");

    // Other paths and methods.
    let out = in_ns(
        &ns,
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
            "http://10.0.0.2/nope",
        ],
    );
    assert_eq!(text(&out), "404");
    let out = in_ns(
        &ns,
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
            "-X",
            "DELETE",
            "http://10.0.0.2/",
        ],
    );
    assert_eq!(text(&out), "405");
    run.stop_cleanly();
}

/// One boot of `blockstore` on `image`: its exit code and log lines.
fn boot(image: &Path) -> (Option<i32>, Vec<String>, Output) {
    let disk = format!("storage={}", image.display());
    let out = run_command(None, "blockstore", &["--disk", &disk, "--timeout", "60"])
        .output()
        .unwrap();
    let lines = log_lines(&out.stdout, "blockstore");
    (out.status.code(), lines, out)
}

fn has(lines: &[String], text: &str) -> bool {
    lines.iter().any(|l| l.ends_with(text))
}

/// Byte offset of record slot `slot` in the image (docs: slot i is sector 2 + i).
fn slot_offset(slot: u64) -> u64 {
    (2 + slot) * 512
}

fn flip(image: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x40;
    f.write_all_at(&b, offset).unwrap();
}

fn new_image(name: &str) -> PathBuf {
    let image = temp(name);
    let f = std::fs::File::create(&image).unwrap();
    f.set_len(1 << 20).unwrap();
    image
}

#[test]
fn blockstore_counts_three_boots_and_verifies_every_record() {
    let image = new_image("three-boots.img");
    for n in 1..=3 {
        let (code, lines, out) = boot(&image);
        assert_eq!(code, Some(0), "boot {n}: {}", show(&out));
        assert!(
            has(&lines, &format!("boot count: {n}")),
            "boot {n}: {lines:#?}"
        );
        assert!(
            has(&lines, &format!("records: {} verified", n - 1)),
            "boot {n}: {lines:#?}"
        );
        assert!(has(&lines, "tail: clean"), "boot {n}: {lines:#?}");
        assert!(has(&lines, &format!("appended record {n}")), "{lines:#?}");
        if n == 1 {
            assert!(
                has(&lines, "blank disk: formatted, 2046 slots"),
                "{lines:#?}"
            );
        }
    }
    // The format as documented: the superblock magic, and record 3 in slot 2.
    let bytes = std::fs::read(&image).unwrap();
    assert_eq!(&bytes[..8], b"MUENBLKS");
    let slot2 = slot_offset(2) as usize;
    assert_eq!(&bytes[slot2..slot2 + 4], b"MREC");
    assert_eq!(bytes[slot2 + 8], 3, "sequence number 3");
}

#[test]
fn blockstore_reports_a_corrupted_tail_and_writes_after_the_last_valid_record() {
    let image = new_image("corrupted-tail.img");
    for _ in 0..3 {
        assert_eq!(boot(&image).0, Some(0));
    }
    // One bit of record 3's payload (slot 2) flips.
    flip(&image, slot_offset(2) + 30);
    let before = std::fs::read(&image).unwrap();
    let (code, lines, out) = boot(&image);
    assert_eq!(code, Some(0), "{}", show(&out));
    assert!(has(&lines, "records: 2 verified"), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("tail: slot 2 invalid: crc ")),
        "{lines:#?}"
    );
    assert!(has(&lines, "boot count: 4"), "{lines:#?}");
    assert!(has(&lines, "appended record 3"), "{lines:#?}");
    // Records 1 and 2 are untouched; slot 2 now holds boot 4's record.
    let after = std::fs::read(&image).unwrap();
    let (s0, s2) = (slot_offset(0) as usize, slot_offset(2) as usize);
    assert_eq!(before[s0..s2], after[s0..s2]);
    assert_eq!(after[s2 + 16], 4, "record 3 was written by boot 4");
    let (code, lines, _) = boot(&image);
    assert_eq!(code, Some(0));
    assert!(has(&lines, "records: 3 verified"), "{lines:#?}");
    assert!(has(&lines, "tail: clean"), "{lines:#?}");
    assert!(has(&lines, "boot count: 5"), "{lines:#?}");
}

#[test]
fn blockstore_leaves_a_log_with_a_hole_and_a_foreign_disk_alone() {
    // Record 1 of 3 damaged: records 2 and 3 are valid but beyond the tail.
    let image = new_image("hole.img");
    for _ in 0..3 {
        assert_eq!(boot(&image).0, Some(0));
    }
    flip(&image, slot_offset(0) + 1);
    let log = std::fs::read(&image).unwrap()[slot_offset(0) as usize..].to_vec();
    let (code, lines, out) = boot(&image);
    assert_eq!(code, Some(2), "{}", show(&out));
    assert!(has(&lines, "records: 0 verified"), "{lines:#?}");
    assert!(has(&lines, "2 valid records after the tail"), "{lines:#?}");
    assert!(
        has(&lines, "hole in the log: no record appended"),
        "{lines:#?}"
    );
    assert!(has(&lines, "boot count: 4"), "{lines:#?}");
    let after = std::fs::read(&image).unwrap();
    assert_eq!(
        after[slot_offset(0) as usize..],
        log[..],
        "the log was written"
    );

    // Not a blockstore disk: reported, and not written at all.
    let image = new_image("foreign.img");
    std::fs::write(&image, [0x7fu8, b'E', b'L', b'F'].repeat(256 * 1024)).unwrap();
    let before = std::fs::read(&image).unwrap();
    let (code, lines, out) = boot(&image);
    assert_eq!(code, Some(1), "{}", show(&out));
    assert!(
        lines.iter().any(|l| l.contains("not a blockstore disk")),
        "{lines:#?}"
    );
    assert_eq!(std::fs::read(&image).unwrap(), before);
}
