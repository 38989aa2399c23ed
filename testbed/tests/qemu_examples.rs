//! The example apps end to end in QEMU mode (`docs/qemu.md`): the same clients as in
//! `examples.rs`, talking to the real `x86_64-unknown-none` images.
//!
//! - `echo` in a private network namespace per test (`netns_` tests: root only; every
//!   packet stays in the namespace, which is removed afterwards): ping, a thousand UDP
//!   datagrams, `curl` and `ab` under TCG; ping under KVM. Without a network, idle: it
//!   halts between ticks.
//! - `blockstore` on an image file: the boot counter across boots, under TCG, and
//!   across a KVM and a TCG boot of the same image.
//!
//! `qemu_kvm` tests need a usable `/dev/kvm` and fail saying so without one;
//! `scripts/test.sh` skips them visibly there. The images are built (release) in the
//! target directory `tests/qemu.rs` uses.

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
use muen_testbed::qemu::accel;

const SUBJECT_IP: &str = "10.0.0.2";
const HOST_CIDR: &str = "10.0.0.1/24";

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu-target")
}

fn require_kvm(test: &str) {
    if let Err(why) = accel::kvm_usable(Path::new("/dev/kvm")) {
        panic!(
            "{test} needs a usable /dev/kvm ({why}); scripts/test.sh skips the qemu_kvm \
             tests with a visible line where there is none"
        );
    }
}

/// Builds `app` for Muen once per test binary, so that no time limit includes it.
fn build(app: &str) {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if built.iter().any(|a| a == app) {
        return;
    }
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "x86_64-unknown-none",
        ])
        .arg("--manifest-path")
        .arg(example(app).join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_NET_OFFLINE", "true")
        .status()
        .unwrap();
    assert!(status.success(), "building examples/{app} for Muen failed");
    built.push(app.to_string());
}

/// `muen-testbed run --qemu --release --accel ACCEL examples/APP ARGS`, in `ns` if
/// given.
fn run_command(ns: Option<&Netns>, accel: &str, app: &str, args: &[&str]) -> Command {
    build(app);
    let exe = env!("CARGO_BIN_EXE_muen-testbed");
    let mut c = match ns {
        Some(ns) => ns.command(exe),
        None => Command::new(exe),
    };
    c.env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_NET_OFFLINE", "true")
        .args(["run", "--qemu", "--release", "--accel", accel])
        .arg(example(app))
        .args(args);
    c
}

/// A running testbed whose log lines arrive on a channel; stopped (SIGTERM, then
/// SIGKILL) when dropped.
struct Running {
    child: Option<Child>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(mut command: Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child: Some(child),
            lines,
            seen: Vec::new(),
        }
    }

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

    /// Stops the testbed with SIGTERM; it stops QEMU and exits 128 + 15.
    fn stop(mut self) -> Option<i32> {
        let mut child = self.child.take().unwrap();
        // SAFETY: signals a child of this process (`ip netns exec` execs the testbed).
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap().code()
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
/// running on it in QEMU, ready (its "listening" line logged).
fn echo_in_namespace(accel: &str) -> (Netns, Running) {
    let ns = Netns::new();
    ns.exec(&["ip", "tuntap", "add", "dev", "tap0", "mode", "tap"]);
    ns.exec(&["ip", "addr", "add", HOST_CIDR, "dev", "tap0"]);
    ns.exec(&["ip", "link", "set", "tap0", "up"]);
    let mut run = Running::start(run_command(
        Some(&ns),
        accel,
        "echo",
        &["--tap", "service0=tap0", "--timeout", "300"],
    ));
    run.wait_for("listening on 10.0.0.2/24", Duration::from_secs(120));
    (ns, run)
}

fn in_ns(ns: &Netns, program: &str, args: &[&str]) -> Output {
    ns.command(program).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn counter(page: &str, key: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": ")?.parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` in the page:\n{page}"))
}

fn status_page(ns: &Netns) -> String {
    let out = in_ns(ns, "curl", &["-sS", "--max-time", "20", "http://10.0.0.2/"]);
    assert!(out.status.success(), "curl: {}", show(&out));
    text(&out)
}

fn echo_answers_twenty_pings(accel: &str) {
    let (ns, run) = echo_in_namespace(accel);
    let out = in_ns(
        &ns,
        "ping",
        &["-c", "20", "-i", "0.05", "-W", "5", SUBJECT_IP],
    );
    assert!(
        text(&out).contains("20 packets transmitted, 20 received"),
        "{}",
        show(&out)
    );
    assert_eq!(run.stop(), Some(128 + libc::SIGTERM));
}

#[test]
fn netns_qemu_tcg_echo_answers_twenty_pings() {
    require_root("netns_qemu_tcg_echo_answers_twenty_pings");
    echo_answers_twenty_pings("tcg");
}

#[test]
fn netns_qemu_kvm_echo_answers_twenty_pings() {
    require_root("netns_qemu_kvm_echo_answers_twenty_pings");
    require_kvm("netns_qemu_kvm_echo_answers_twenty_pings");
    echo_answers_twenty_pings("kvm");
}

#[test]
fn netns_qemu_tcg_echo_returns_a_thousand_udp_datagrams_intact() {
    require_root("netns_qemu_tcg_echo_returns_a_thousand_udp_datagrams_intact");
    let (ns, run) = echo_in_namespace("tcg");
    let server: SocketAddr = format!("{SUBJECT_IP}:7").parse().unwrap();
    let intact = std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let socket = UdpSocket::bind("10.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 2048];
            let mut intact = 0;
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
            }
            intact
        })
        .join()
        .unwrap()
    });
    assert_eq!(intact, 1000);
    let page = status_page(&ns);
    assert_eq!(counter(&page, "udp echoed"), 1000, "{page}");
    assert_eq!(counter(&page, "udp dropped"), 0, "{page}");
    assert_eq!(run.stop(), Some(128 + libc::SIGTERM));
}

#[test]
fn netns_qemu_tcg_echo_serves_its_status_page_to_curl_and_ab() {
    require_root("netns_qemu_tcg_echo_serves_its_status_page_to_curl_and_ab");
    let (ns, run) = echo_in_namespace("tcg");
    let page = status_page(&ns);
    assert!(page.starts_with("subject: echo\n"), "{page}");
    assert!(page.contains("address: 10.0.0.2/24\n"), "{page}");
    assert_eq!(counter(&page, "http requests"), 1, "{page}");
    for key in ["drops", "overruns", "frames lost", "channel errors"] {
        assert_eq!(counter(&page, key), 0, "{key}: {page}");
    }
    let out = in_ns(
        &ns,
        "ab",
        &["-q", "-l", "-n", "500", "-c", "8", "http://10.0.0.2/"],
    );
    let report = text(&out);
    assert!(out.status.success(), "{}", show(&out));
    assert!(report.contains("Complete requests:      500"), "{report}");
    assert!(report.contains("Failed requests:        0"), "{report}");
    assert_eq!(counter(&status_page(&ns), "http requests"), 502);
    assert_eq!(run.stop(), Some(128 + libc::SIGTERM));
}

#[test]
fn qemu_tcg_an_idle_echo_sleeps_instead_of_spinning() {
    // No traffic for four seconds: the guest halts between its ticks. A spinning guest
    // would keep QEMU at a whole CPU (100 %).
    let out = run_command(None, "tcg", "echo", &["--timeout", "4", "--stats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(124), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let cpu: f64 = stderr
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("subject_cpu_pct=")?.parse().ok())
        .unwrap_or_else(|| panic!("no subject_cpu_pct in {stderr}"));
    assert!(
        cpu < 50.0,
        "QEMU used {cpu} % CPU for an idle guest:\n{stderr}"
    );
}

/// One boot of `blockstore` on `image` with `accel`: its exit code and log lines.
fn boot(accel: &str, image: &Path) -> (Option<i32>, Vec<String>, Output) {
    let disk = format!("storage={}", image.display());
    let out = run_command(
        None,
        accel,
        "blockstore",
        &["--disk", &disk, "--timeout", "120"],
    )
    .output()
    .unwrap();
    let lines = log_lines(&out.stdout, "blockstore");
    (out.status.code(), lines, out)
}

fn has(lines: &[String], text: &str) -> bool {
    lines.iter().any(|l| l.ends_with(text))
}

fn new_image(name: &str) -> PathBuf {
    let image = temp(name);
    let f = std::fs::File::create(&image).unwrap();
    f.set_len(1 << 20).unwrap();
    image
}

fn boots_in_turn(accels: &[&str], image: &Path) {
    for (n, accel) in accels.iter().enumerate() {
        let n = n + 1;
        let (code, lines, out) = boot(accel, image);
        assert_eq!(code, Some(0), "boot {n} ({accel}): {}", show(&out));
        assert!(has(&lines, &format!("boot count: {n}")), "{lines:#?}");
        assert!(
            has(&lines, &format!("records: {} verified", n - 1)),
            "{lines:#?}"
        );
        assert!(has(&lines, &format!("appended record {n}")), "{lines:#?}");
    }
    let bytes = std::fs::read(image).unwrap();
    assert_eq!(&bytes[..8], b"MUENBLKS");
}

#[test]
fn qemu_tcg_blockstore_counts_three_boots_and_verifies_every_record() {
    boots_in_turn(&["tcg", "tcg", "tcg"], &new_image("qemu-three-boots.img"));
}

#[test]
fn qemu_kvm_blockstore_counts_boots_under_kvm_and_tcg_alike() {
    require_kvm("qemu_kvm_blockstore_counts_boots_under_kvm_and_tcg_alike");
    boots_in_turn(&["kvm", "tcg"], &new_image("qemu-kvm-boots.img"));
}
