//! The example apps end to end, shared by `examples.rs` (hosted) and `qemu_examples.rs`
//! (QEMU): building them, a running testbed whose log is read as it comes, `echo` in a
//! private network namespace and the clients that talk to it, and `blockstore` images.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::netns::Netns;
use super::{example, temp};

/// The subject's address (examples/echo's documented static address).
pub const SUBJECT_IP: &str = "10.0.0.2";
/// The namespace's address on the TAP interface.
pub const HOST_CIDR: &str = "10.0.0.1/24";

/// Where a run takes the app's world from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// Its own specification (`run examples/APP`).
    App,
    /// Subject APP of a Muen system policy in format B (`run --system POLICY --subject
    /// APP examples/APP`), with mugensinfo's pages from this directory if given
    /// (`--sinfo`).
    System {
        /// Policy B.
        policy: &'a Path,
        /// mugensinfo's pages.
        sinfo: Option<&'a Path>,
    },
}

/// How an app is built and run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Hosted: a Linux process (debug build).
    Hosted,
    /// The real `x86_64-unknown-none` image (release build) in QEMU with this
    /// accelerator (`kvm` or `tcg`).
    Qemu(&'static str),
}

impl Mode {
    /// Where the apps are built: a target directory of their own, so that the cargo
    /// building them does not wait for the lock of the cargo running the tests.
    pub fn target_dir(self) -> PathBuf {
        let dir = match self {
            Mode::Hosted => "fixture-target",
            Mode::Qemu(_) => "qemu-target",
        };
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir)
    }

    /// The directory of the built images (QEMU mode: the release ELFs).
    pub fn images(self) -> PathBuf {
        match self {
            Mode::Hosted => self.target_dir().join("debug"),
            Mode::Qemu(_) => self.target_dir().join("x86_64-unknown-none/release"),
        }
    }

    /// Builds `app` once per test binary and mode (cargo's output goes to the test's
    /// stderr), so that no time limit of a test includes the build.
    pub fn build(self, app: &str) {
        static BUILT: Mutex<Vec<(String, bool)>> = Mutex::new(Vec::new());
        let key = (app.to_string(), self == Mode::Hosted);
        let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
        if built.contains(&key) {
            return;
        }
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--quiet"]);
        if self != Mode::Hosted {
            cargo.args(["--release", "--target", "x86_64-unknown-none"]);
        }
        let status = cargo
            .arg("--manifest-path")
            .arg(example(app).join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", self.target_dir())
            .env("CARGO_NET_OFFLINE", "true")
            .status()
            .unwrap();
        assert!(
            status.success(),
            "building examples/{app} ({self:?}) failed"
        );
        built.push(key);
    }

    /// `muen-testbed run [--qemu --release --accel ACCEL] examples/APP ARGS`, in `ns`
    /// if given.
    pub fn run_command(self, ns: Option<&Netns>, app: &str, args: &[&str]) -> Command {
        self.command(ns, app, Source::App, args)
    }

    /// `muen-testbed run [--qemu --release --accel ACCEL]`, the app's world from
    /// `source`, then `ARGS`; in `ns` if given.
    pub fn command(self, ns: Option<&Netns>, app: &str, source: Source, args: &[&str]) -> Command {
        self.build(app);
        let exe = env!("CARGO_BIN_EXE_muen-testbed");
        let mut c = match ns {
            Some(ns) => ns.command(exe),
            None => Command::new(exe),
        };
        c.env("CARGO_TARGET_DIR", self.target_dir())
            .env("CARGO_NET_OFFLINE", "true")
            .arg("run");
        if let Mode::Qemu(accel) = self {
            c.args(["--qemu", "--release", "--accel", accel]);
        }
        match source {
            Source::App => {
                c.arg(example(app));
            }
            Source::System { policy, sinfo } => {
                c.arg("--system")
                    .arg(policy)
                    .args(["--subject", app])
                    .arg(example(app));
                if let Some(dir) = sinfo {
                    c.arg("--sinfo").arg(dir);
                }
            }
        }
        c.args(args);
        c
    }
}

/// A running testbed whose log lines arrive on a channel and whose stderr is
/// collected; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Running {
    child: Option<Child>,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Running {
    /// Spawns `command` with its stdout and stderr read by threads.
    pub fn start(mut command: Command) -> Running {
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
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Running {
            child: Some(child),
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// Waits for a log line containing `text`; if none comes in time, stops the
    /// testbed and fails with its log and its stderr.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) {
        self.wait_for_count(text, 1, timeout)
    }

    /// Waits until `count` log lines (since the start) contain `text`; if they do not
    /// come in time, stops the testbed and fails with its log and its stderr.
    pub fn wait_for_count(&mut self, text: &str, count: usize, timeout: Duration) {
        let end = Instant::now() + timeout;
        while self.seen.iter().filter(|l| l.contains(text)).count() < count {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => {
                    let log = self.seen.join("\n");
                    let (code, stderr) = self.terminate();
                    panic!(
                        "not {count} log lines with `{text}` within {timeout:?} (testbed \
                         ended with {code:?}); the log:\n{log}\n--- stderr\n{stderr}"
                    )
                }
            }
        }
    }

    /// The log lines read so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Sends the testbed signal `signo` (such as SIGUSR1, which resets the subject
    /// `--reset-on-sigusr1` names).
    pub fn signal(&self, signo: libc::c_int) {
        let child = self.child.as_ref().expect("the testbed runs");
        // `ip netns exec` execs the testbed, so this is the testbed's pid.
        // SAFETY: signals a child of this process that has not been waited for.
        let r = unsafe { libc::kill(child.id() as i32, signo) };
        assert_eq!(r, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Stops the testbed with SIGTERM (it stops the subject and exits 128 + 15);
    /// its exit status and its stderr.
    fn terminate(&mut self) -> (Option<i32>, String) {
        let Some(mut child) = self.child.take() else {
            return (None, String::new());
        };
        // `ip netns exec` execs the testbed, so this is the testbed's pid.
        // SAFETY: signals a child of this process that has not been waited for.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let code = child.wait().unwrap().code();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        (code, stderr)
    }

    /// Stops the testbed; it must have ended as SIGTERM ends it. Its stderr.
    pub fn stop_cleanly(mut self) -> String {
        let (code, stderr) = self.terminate();
        assert_eq!(code, Some(128 + libc::SIGTERM), "{stderr}");
        stderr
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            // SAFETY: as in `terminate`.
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
/// running on it in `mode` (with `extra` arguments), ready (its "listening" line
/// logged within `ready`).
pub fn echo_in_namespace(mode: Mode, extra: &[&str], ready: Duration) -> (Netns, Running) {
    echo_from(mode, Source::App, extra, ready)
}

/// [`echo_in_namespace`] with echo's world from `source`.
pub fn echo_from(mode: Mode, source: Source, extra: &[&str], ready: Duration) -> (Netns, Running) {
    let ns = Netns::new();
    ns.exec(&["ip", "tuntap", "add", "dev", "tap0", "mode", "tap"]);
    ns.exec(&["ip", "addr", "add", HOST_CIDR, "dev", "tap0"]);
    ns.exec(&["ip", "link", "set", "tap0", "up"]);
    let mut args = vec!["--tap", "service0=tap0", "--timeout", "300"];
    args.extend_from_slice(extra);
    let mut run = Running::start(mode.command(Some(&ns), "echo", source, &args));
    run.wait_for("listening on 10.0.0.2/24", ready);
    (ns, run)
}

/// A namespace with a persistent TAP interface `tap0` at 10.0.0.1/24 and the
/// guestbook running in `mode` as two subjects of the system `policy` (mugensinfo's
/// pages from `sinfo` if given): `web` with its `service0` on `tap0`, `vault` with its
/// disk `storage` on `image`, then `extra` arguments. Ready when web listens and vault
/// has opened its book (within `ready`).
pub fn guestbook_in_namespace(
    mode: Mode,
    (policy, sinfo): (&Path, Option<&Path>),
    image: &Path,
    extra: &[&str],
    ready: Duration,
) -> (Netns, Running) {
    mode.build("web");
    mode.build("vault");
    let ns = Netns::new();
    ns.exec(&["ip", "tuntap", "add", "dev", "tap0", "mode", "tap"]);
    ns.exec(&["ip", "addr", "add", HOST_CIDR, "dev", "tap0"]);
    ns.exec(&["ip", "link", "set", "tap0", "up"]);
    let mut c = ns.command(env!("CARGO_BIN_EXE_muen-testbed"));
    c.env("CARGO_TARGET_DIR", mode.target_dir())
        .env("CARGO_NET_OFFLINE", "true")
        .arg("run");
    if let Mode::Qemu(accel) = mode {
        c.args(["--qemu", "--release", "--accel", accel]);
    }
    c.arg("--system")
        .arg(policy)
        .args(["--subject", "web"])
        .arg(example("web"))
        .args(["--subject", "vault"])
        .arg(example("vault"));
    if let Some(dir) = sinfo {
        c.arg("--sinfo").arg(dir);
    }
    c.args(["--tap", "web/service0=tap0", "--disk"])
        .arg(format!("vault/storage={}", image.display()))
        .args(["--timeout", "300"])
        .args(extra);
    let mut run = Running::start(c);
    run.wait_for("guestbook at http://10.0.0.2/", ready);
    run.wait_for("INFO ready", ready);
    (ns, run)
}

/// The guestbook's test on one run: `web` (HTTP on a TAP in a private namespace) and
/// `vault` (the disk) as two subjects of the system, talking over the channel pair the
/// policy wires. An entry is posted with curl and read back (`GET /`, `GET
/// /entries/1`); then SIGUSR1 resets vault (`--reset-on-sigusr1 vault`, as a system's
/// controller would), vault opens its book again from the disk, and the entry is
/// still there; a second entry is appended after it.
pub fn guestbook_entries_survive_a_reset_of_vault(
    mode: Mode,
    source: (&Path, Option<&Path>),
    image: &str,
    ready: Duration,
) {
    let image = new_image(image);
    let start = Instant::now();
    let (ns, mut run) = guestbook_in_namespace(
        mode,
        source,
        &image,
        &["--reset-on-sigusr1", "vault", "--restarts", "1", "--stats"],
        ready,
    );
    let url = |path: &str| format!("http://{SUBJECT_IP}{path}");
    // An empty book.
    let front = http(&ns, &[&url("/")]);
    assert_eq!(
        (front.status, front.body.as_str()),
        (200, "guestbook: 0 entries\n")
    );
    let missing = http(&ns, &[&url("/entries/1")]);
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (404, "no such entry\n")
    );
    // A form that is no entry never reaches vault.
    let bad = http(&ns, &["-d", "name=ann", &url("/entries")]);
    assert_eq!(
        (bad.status, bad.body.as_str()),
        (400, "the form has no `text`\n")
    );
    // POST, then GET it back.
    let posted = http(
        &ns,
        &[
            "-d",
            "name=ann",
            "--data-urlencode",
            "text=hello, muen!",
            &url("/entries"),
        ],
    );
    assert_eq!((posted.status, posted.body.as_str()), (201, "entry 1\n"));
    assert_eq!(posted.location.as_deref(), Some("/entries/1"));
    let book = "guestbook: 1 entries\n\n#1 ann: hello, muen!\n";
    let front = http(&ns, &[&url("/")]);
    assert_eq!((front.status, front.body.as_str()), (200, book));
    let entry = http(&ns, &[&url("/entries/1")]);
    assert_eq!(
        (entry.status, entry.body.as_str()),
        (200, "#1 ann: hello, muen!\n")
    );
    // vault is reset; it opens the book from the disk again.
    let up = start.elapsed();
    run.signal(libc::SIGUSR1);
    let reset = Instant::now();
    run.wait_for("entries: 1 verified", ready);
    run.wait_for_count("INFO ready", 2, ready);
    let back = reset.elapsed();
    let front = http(&ns, &[&url("/")]);
    assert_eq!((front.status, front.body.as_str()), (200, book));
    let entry = http(&ns, &[&url("/entries/1")]);
    assert_eq!(
        (entry.status, entry.body.as_str()),
        (200, "#1 ann: hello, muen!\n")
    );
    let posted = http(
        &ns,
        &["-d", "name=bo", "-d", "text=second", &url("/entries")],
    );
    assert_eq!((posted.status, posted.body.as_str()), (201, "entry 2\n"));
    let front = http(&ns, &[&url("/")]);
    assert_eq!(
        (front.status, front.body.as_str()),
        (
            200,
            "guestbook: 2 entries\n\n#1 ann: hello, muen!\n#2 bo: second\n"
        )
    );
    // Two starts of vault, one of web, each in its own log.
    let lines = run.seen().to_vec();
    let vault = super::log_lines(lines.join("\n").as_bytes(), "vault");
    for (n, records) in [(1, 0), (2, 1)] {
        assert!(
            has(&vault, &format!("storage: boot count {n}")),
            "{lines:#?}"
        );
        assert!(
            has(&vault, &format!("entries: {records} verified")),
            "{lines:#?}"
        );
    }
    let web = super::log_lines(lines.join("\n").as_bytes(), "web");
    assert_eq!(
        web.iter()
            .filter(|l| l.ends_with("guestbook at http://10.0.0.2/"))
            .count(),
        1,
        "{lines:#?}"
    );
    let stderr = run.stop_cleanly();
    assert_eq!(
        super::stat(stderr.as_bytes(), "restarts"),
        Some(1),
        "{stderr}"
    );
    eprintln!(
        "guestbook ({mode:?}): the first requests served {:.2} s after the start; vault \
         ready again {:.2} s after SIGUSR1; {:.2} s in all",
        up.as_secs_f64(),
        back.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
}

/// An HTTP answer as curl received it.
#[derive(Debug)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The `Location` field, if any.
    pub location: Option<String>,
    /// The body.
    pub body: String,
}

/// `curl -sS -i --max-time 10 ARGS` in `ns`: the answer (curl must succeed and the
/// answer be one HTTP/1.1 response).
pub fn http(ns: &Netns, args: &[&str]) -> HttpAnswer {
    let out = ns
        .command("curl")
        .args(["-sS", "-i", "--max-time", "10"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {args:?}: {}", super::show(&out));
    let all = text(&out);
    let (head, body) = all
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("curl {args:?}: no head: {all:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("curl {args:?}: no HTTP/1.1 status line: {all:?}"));
    let location = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("location")
            .then(|| value.trim().to_string())
    });
    HttpAnswer {
        status,
        location,
        body: body.to_string(),
    }
}

/// `program args` in the namespace; its output.
pub fn in_ns(ns: &Netns, program: &str, args: &[&str]) -> Output {
    ns.command(program).args(args).output().unwrap()
}

/// A client's stdout.
pub fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of `key: value` in echo's status page.
pub fn counter(page: &str, key: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": ")?.parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` in the page:\n{page}"))
}

/// Echo's status page, fetched with curl within `timeout` seconds.
pub fn status_page(ns: &Netns, timeout: &str) -> String {
    let out = in_ns(
        ns,
        "curl",
        &["-sS", "--max-time", timeout, "http://10.0.0.2/"],
    );
    assert!(out.status.success(), "curl: {}", super::show(&out));
    text(&out)
}

/// Sends a thousand UDP datagrams of 1 to 1472 bytes (the largest unfragmented
/// payload), evenly spread, to echo's port 7 from a thread inside `ns`, one at a time,
/// and checks that each comes back intact from the subject. The smallest and largest
/// size sent.
pub fn udp_echo_a_thousand_datagrams(ns: &Netns) -> (usize, usize) {
    let server: SocketAddr = format!("{SUBJECT_IP}:7").parse().unwrap();
    // A thread that entered the namespace: its sockets live there.
    std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let socket = UdpSocket::bind("10.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 2048];
            let mut sizes = (usize::MAX, 0);
            for i in 0..1000usize {
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
                sizes = (sizes.0.min(size), sizes.1.max(size));
            }
            sizes
        })
        .join()
        .unwrap()
    })
}

/// A blank 1 MiB disk image under the tests' temporary directory.
pub fn new_image(name: &str) -> PathBuf {
    let image = temp(name);
    let f = std::fs::File::create(&image).unwrap();
    f.set_len(1 << 20).unwrap();
    image
}

/// One boot of `blockstore` on `image` in `mode`: its exit code, log lines and output.
pub fn boot(mode: Mode, image: &Path, timeout: &str) -> (Option<i32>, Vec<String>, Output) {
    let disk = format!("storage={}", image.display());
    let out = mode
        .run_command(None, "blockstore", &["--disk", &disk, "--timeout", timeout])
        .output()
        .unwrap();
    let lines = super::log_lines(&out.stdout, "blockstore");
    (out.status.code(), lines, out)
}

/// Whether a log line ends with `text`.
pub fn has(lines: &[String], text: &str) -> bool {
    lines.iter().any(|l| l.ends_with(text))
}
