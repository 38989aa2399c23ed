//! End-to-end tests of the hosted platform: real subject executables run by the real
//! testbed, through its command line (`muen-testbed run --exec PATH --policy FILE`,
//! `docs/testbed.md`): the testbed builds the world from the policy, hands the subject
//! the memory file and the control socket, plays the kernel and the peers, and prints
//! the subject's log on stdout as Muen's debug server does.
//!
//! Subjects: `idle-fixture` (this package's test subject, `CARGO_BIN_EXE_...`; what it
//! does depends on its name, which the policy sets) and `hello` (another package). The
//! testbed and `hello` are built here with `cargo build --message-format=json`, which
//! names the executables wherever the target directory is. The policies are written
//! here, one small component specification per world.
//!
//! Worlds the testbed never makes (no memory file, a memory map entry at a taken
//! address, a sinfo region the map leaves out) are made from the testbed's own world:
//! the subject the testbed starts is `/bin/sh`, which changes the memory map in the
//! memory file it was handed (`dd` to fd 3) or closes fd 3, and then `exec`s the
//! fixture, so the runtime meets the broken world in a run that is otherwise real.
//!
//! The `netns_` test needs root (a TAP interface in a private network namespace; see
//! `scripts/test.sh`).

#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use muen_abi::layout;
use muen_testbed_abi::hosted::{MemMap, MemMapEntry, MemMapHeader, MEMMAP_SIZE};
use zerocopy::IntoBytes;

#[path = "../../testbed/tests/common/netns.rs"]
#[allow(dead_code)] // the frame helpers and the namespace are used, not all of it
mod netns;

use netns::{frame, Netns, PacketSocket, HOST_MAC, SUBJECT_MAC};

/// The RAM of every test policy: 1 MiB.
const RAM_SIZE: u64 = 0x10_0000;

/// The executables this package does not build for its tests.
struct Built {
    testbed: PathBuf,
    hello: PathBuf,
}

/// Builds `muen-testbed` and the `hello` example for the host (once per test run).
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "-p", "muen-testbed", "--bin", "muen-testbed"])
            .args(["-p", "hello", "--bin", "hello"])
            .arg("--message-format=json-render-diagnostics")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "cargo build -p muen-testbed -p hello failed"
        );
        let messages: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let executable = |name: &str| {
            messages
                .iter()
                .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
                .find_map(|m| m["executable"].as_str().map(PathBuf::from))
                .unwrap_or_else(|| panic!("cargo named no `{name}` executable"))
        };
        Built {
            testbed: executable("muen-testbed"),
            hello: executable("hello"),
        }
    })
}

fn fixture() -> &'static str {
    env!("CARGO_BIN_EXE_idle-fixture")
}

/// A fresh path under cargo's temporary directory for integration tests (`name` with
/// a number no other call of this test run gets: the tests run in parallel).
fn temp(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("hosted-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!(
        "{}-{name}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Where a subject's wall clock comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Time {
    /// `libmutime`: the testbed publishes the time info page as Muen's time subject.
    Published,
    /// A `time_info` page of the component's own that nobody publishes (a time subject
    /// that has not published yet).
    Unpublished,
    /// No `time_info` page at all.
    Absent,
}

/// The component specification of subject `name`, written to a file: 1 MiB of RAM at
/// `layout::RAM_BASE`, the debug log, the `exit` and `timer` events and the `timer`
/// vector as Muen wires them; `net` adds device `net0` (two channels of 16 KiB,
/// `net0|out` with event 2, `net0|in` with vector 33).
fn policy(name: &str, net: bool, time: Time) -> PathBuf {
    let hex = |v: u64| {
        let digits = format!("{v:x}");
        format!("16#{digits}#")
    };
    let libmutime = match time {
        Time::Published => r#"  <library ref="libmutime"/>"#.to_string() + "\n",
        _ => String::new(),
    };
    let channels = if net {
        format!(
            "  <channels>\n   <reader logical=\"net0|in\" virtualAddress=\"{}\" size=\"16#4000#\" vector=\"33\"/>\n   <writer logical=\"net0|out\" virtualAddress=\"{}\" size=\"16#4000#\" event=\"2\"/>\n  </channels>\n",
            hex(layout::DEVICE_BASE.as_u64()),
            hex(layout::DEVICE_BASE.as_u64() + 0x1_0000),
        )
    } else {
        String::new()
    };
    let time_info = match time {
        Time::Unpublished => format!(
            "  <memory logical=\"time_info\" writable=\"false\" executable=\"false\" size=\"{}\" virtualAddress=\"{}\" type=\"subject\"/>\n",
            hex(layout::TIME_INFO.size),
            hex(layout::TIME_INFO.address.as_u64()),
        ),
        _ => String::new(),
    };
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<component name="{name}" profile="native">
 <depends>
  <library ref="libmudebuglog"/>
{libmutime} </depends>
 <requires>
  <vcpu>
   <registers>
    <gpr>
     <rip>{rip}</rip>
     <rsp>{rsp}</rsp>
    </gpr>
   </registers>
  </vcpu>
{channels}  <events>
   <source>
    <event id="0" logical="exit"/>
    <event id="1" logical="timer"/>
   </source>
   <target>
    <event logical="timer">
     <inject_interrupt vector="32"/>
    </event>
   </target>
  </events>
 </requires>
 <provides>
  <memory logical="ram" writable="true" executable="false" size="{ram_size}" virtualAddress="{ram}" type="subject"/>
{time_info} </provides>
</component>
"#,
        rip = hex(layout::ENTRY.as_u64()),
        rsp = hex(layout::stack_top(RAM_SIZE).as_u64()),
        ram_size = hex(RAM_SIZE),
        ram = hex(layout::RAM_BASE.as_u64()),
    );
    let path = temp(&format!("{name}.xml"));
    std::fs::write(&path, xml).unwrap();
    path
}

/// `muen-testbed run --exec EXE --policy POLICY --stats EXTRA -- ARGS`.
fn testbed(exe: &Path, policy: &Path, extra: &[&str], args: &[&str]) -> Command {
    let mut c = Command::new(&built().testbed);
    c.arg("run")
        .arg("--exec")
        .arg(exe)
        .arg("--policy")
        .arg(policy)
        .arg("--stats")
        .args(extra)
        .arg("--")
        .args(args);
    c
}

/// [`testbed`] with a timeout of 60 s, to its end.
fn run(exe: &Path, policy: &Path, args: &[&str]) -> Output {
    testbed(exe, policy, &["--timeout", "60"], args)
        .output()
        .unwrap()
}

/// stdout and stderr of `out`, for assertion messages.
fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The subject's log messages in the testbed's stdout (`[seconds] NAME|text`, with `%`
/// or `#` in place of `|` for the first message of an epoch or after a loss).
fn log(out: &Output, name: &str) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once("] ")?;
            let rest = rest.strip_prefix(name)?;
            let mut chars = rest.chars();
            match chars.next() {
                Some('|' | '%' | '#') => Some(chars.as_str().to_string()),
                _ => None,
            }
        })
        .collect()
}

/// A counter of the testbed's `--stats` lines on stderr (`key=value`).
fn stat(out: &Output, key: &str) -> Option<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("muen-testbed: stats:"))
        .flat_map(|l| l.split_whitespace())
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_string))
}

fn count(out: &Output, key: &str) -> u64 {
    stat(out, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no counter {key}: {}", show(out)))
}

/// What the subject itself wrote on stderr: every line that is not the testbed's.
fn subject_stderr(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("muen-testbed: "))
        .map(str::to_string)
        .collect()
}

/// Runs `/bin/sh -c SCRIPT sh ARGS` as the subject of `policy`.
fn run_shell(policy: &Path, script: &str, args: &[&str]) -> Output {
    let mut all = vec!["-c", script, "sh"];
    all.extend_from_slice(args);
    run(Path::new("/bin/sh"), policy, &all)
}

/// The memory map the testbed writes for `policy` (the first `MEMMAP_SIZE` bytes of the
/// memory file, copied out by a shell run as the subject).
fn memory_map(policy: &Path) -> Vec<u8> {
    let file = temp("map.bin");
    let out = run_shell(
        policy,
        r#"dd if=/proc/self/fd/3 of="$1" bs="$2" count=1 status=none"#,
        &[file.to_str().unwrap(), &MEMMAP_SIZE.to_string()],
    );
    assert!(out.status.success(), "{}", show(&out));
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(bytes.len() as u64, MEMMAP_SIZE);
    bytes
}

/// The header and entries of a memory map.
fn parse_map(bytes: &[u8]) -> (MemMapHeader, Vec<MemMapEntry>) {
    let map = MemMap::parse(bytes).expect("the testbed writes a valid map");
    (*map.header(), map.entries().to_vec())
}

/// The fixture run by the testbed with `policy`, after a shell replaced the memory map
/// in the memory file by `header` and `entries`.
fn run_with_map(policy: &Path, header: MemMapHeader, entries: &[MemMapEntry]) -> Output {
    let mut bytes = header.as_bytes().to_vec();
    for e in entries {
        bytes.extend_from_slice(e.as_bytes());
    }
    let file = temp("patched-map.bin");
    std::fs::write(&file, bytes).unwrap();
    run_shell(
        policy,
        r#"dd if="$1" of=/proc/self/fd/3 conv=notrunc status=none && exec "$2""#,
        &[file.to_str().unwrap(), fixture()],
    )
}

fn index_of(entries: &[MemMapEntry], address: u64) -> usize {
    entries
        .iter()
        .position(|e| e.address.get() == address)
        .unwrap_or_else(|| panic!("no memory map entry at {address:#x}"))
}

#[test]
fn hello_greets_with_its_name_both_clocks_and_exits_0() {
    let out = run(
        &built().hello,
        &policy("hello", false, Time::Published),
        &[],
    );
    assert!(out.status.success(), "{}", show(&out));
    let log = log(&out, "hello");
    assert_eq!(log[0], "INFO hello from hello", "{}", show(&out));
    assert!(log[1].starts_with("INFO monotonic "), "{log:?}");
    // The wall clock the testbed published is the host's.
    let seconds: u64 = log[2]
        .strip_prefix("INFO wall clock ")
        .and_then(|t| t.split_once('.'))
        .and_then(|(s, _)| s.parse().ok())
        .unwrap_or_else(|| panic!("{log:?}"));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(seconds) < 60, "{seconds} s, host {now} s");
    assert!(
        log.iter()
            .any(|l| l.starts_with("INFO memory debuglog 0xffff00000 0x20000 subject_channel")),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l == "INFO vector timer 32"), "{log:?}");
    assert_eq!(log.last().unwrap(), "INFO exit 0");
    assert_eq!(count(&out, "events"), 1, "only the exit event");
    assert_eq!(stat(&out, "exit_event").as_deref(), Some("true"));
    assert!(subject_stderr(&out).is_empty(), "{}", show(&out));
}

#[test]
fn hello_reports_an_unpublished_wall_clock() {
    let out = run(
        &built().hello,
        &policy("hello", false, Time::Unpublished),
        &[],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        log(&out, "hello")[2],
        "INFO wall clock not published: time not published",
        "{}",
        show(&out)
    );
}

#[test]
fn hello_without_libmutime_has_no_wall_clock() {
    let out = run(&built().hello, &policy("hello", false, Time::Absent), &[]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        log(&out, "hello")[2],
        "INFO wall clock not published: no time_info region",
        "{}",
        show(&out)
    );
}

#[test]
fn a_missing_memory_file_gives_status_125_and_one_line() {
    // The shell closes fd 3 (the memory file) and starts the fixture with fd 4 alone.
    let out = run_shell(
        &policy("x", false, Time::Absent),
        r#"exec "$1" 3<&-"#,
        &[fixture()],
    );
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    let stderr = subject_stderr(&out);
    assert_eq!(stderr.len(), 1, "{}", show(&out));
    assert!(
        stderr[0].starts_with("muen-subject: fd 3 (the memory file) is not open"),
        "{}",
        show(&out)
    );
    assert!(log(&out, "x").is_empty(), "main never ran: {}", show(&out));
}

#[test]
fn a_taken_address_gives_status_125() {
    let policy = policy("x", false, Time::Absent);
    let (header, mut entries) = parse_map(&memory_map(&policy));
    // Point the RAM entry at the sinfo page's address: whichever of the two the
    // runtime maps second finds the address taken.
    let ram = index_of(&entries, layout::RAM_BASE.as_u64());
    let sinfo = index_of(&entries, layout::SINFO.address.as_u64());
    entries[ram].address = layout::SINFO.address.as_u64().into();
    let out = run_with_map(&policy, header, &entries);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    let stderr = subject_stderr(&out).concat();
    assert!(
        stderr.contains(&format!("memory map entry {}: cannot map", ram.max(sinfo))),
        "{}",
        show(&out)
    );
    assert!(stderr.contains("EEXIST"), "{}", show(&out));
    assert!(log(&out, "x").is_empty(), "main never ran: {}", show(&out));
}

#[test]
fn a_region_the_map_leaves_out_gives_status_125() {
    let policy = policy("x", false, Time::Absent);
    let (mut header, mut entries) = parse_map(&memory_map(&policy));
    // Leave `ram` out of the map: the sinfo page names a region nobody mapped.
    entries.remove(index_of(&entries, layout::RAM_BASE.as_u64()));
    header.count = (entries.len() as u32).into();
    let out = run_with_map(&policy, header, &entries);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    assert_eq!(
        subject_stderr(&out),
        [format!(
            "muen-subject: sinfo region `ram`: {RAM_SIZE:#x} bytes at {:#x} are not mapped \
             writable by the memory map",
            layout::RAM_BASE.as_u64()
        )],
        "{}",
        show(&out)
    );
}

#[test]
fn a_panic_is_logged_and_exits_101() {
    let out = run(
        Path::new(fixture()),
        &policy("panic", false, Time::Absent),
        &[],
    );
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));
    let log = log(&out, "panic");
    let text = log.concat();
    assert!(
        text.contains("ERROR panic at subject/tests/fixture/idle.rs:"),
        "{text}"
    );
    assert!(text.contains("on purpose"), "{text}");
    assert_eq!(log.last().unwrap(), "INFO exit 101", "{text}");
    assert_eq!(stat(&out, "exit_event").as_deref(), Some("true"));
}

#[test]
fn the_timed_event_wakes_a_sleeping_subject_at_its_deadline() {
    // The fixture sleeps with `poll` until 50 ms from its start and exits 0 only if it
    // woke at or after the deadline with nothing else ready.
    let out = run(
        Path::new(fixture()),
        &policy("idle-timer", false, Time::Absent),
        &[],
    );
    assert!(out.status.success(), "{}", show(&out));
    let late: u64 = log(&out, "idle-timer")
        .iter()
        .find_map(|l| {
            l.strip_prefix("INFO woke ")?
                .strip_suffix(" ns after the deadline")
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wake-up line: {}", show(&out)));
    assert!(late < 2_000_000_000, "woke {late} ns late");
    // It armed its timed event with the `timer` event, halted once, and the testbed's
    // kernel fired the event at the deadline, which injected the `timer` vector.
    assert_eq!(count(&out, "timed_events"), 1, "{}", show(&out));
    assert_eq!(count(&out, "halts"), 1, "{}", show(&out));
    assert_eq!(count(&out, "vectors"), 1, "{}", show(&out));
    assert_eq!(count(&out, "events"), 1, "only the exit event");
    let wall: f64 = stat(&out, "wall_s").unwrap().parse().unwrap();
    assert!(wall >= 0.05, "the run took {wall} s, less than the sleep");
}

#[test]
fn a_subject_waiting_for_frames_halts_instead_of_spinning() {
    // No TAP interface: no frame ever comes, so the fixture waits in `poll` until the
    // testbed stops it.
    let out = testbed(
        Path::new(fixture()),
        &policy("idle-vector", true, Time::Absent),
        &["--timeout", "1"],
        &[],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(124), "{}", show(&out));
    assert!(
        !log(&out, "idle-vector")
            .iter()
            .any(|l| l.starts_with("INFO received")),
        "{}",
        show(&out)
    );
    assert_eq!(count(&out, "halts"), 1, "{}", show(&out));
    let cpu: f64 = stat(&out, "subject_cpu_s").unwrap().parse().unwrap();
    assert!(cpu < 0.5, "the subject used {cpu} s of CPU in 1 s");
}

/// Fails unless the test runs as root (network namespaces and TAP interfaces need it).
fn require_root(test: &str) {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "{test} needs root (a network namespace and a TAP interface); run it as root, or \
         run scripts/test.sh, which skips it visibly when not root"
    );
}

/// A running testbed, stopped if the test fails before it ended.
struct Running(Option<std::process::Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn netns_a_halted_subject_is_woken_by_a_vector() {
    require_root("netns_a_halted_subject_is_woken_by_a_vector");
    let ns = Netns::new();
    let mut running = Running(Some(
        ns.command(built().testbed.to_str().unwrap())
            .arg("run")
            .arg("--exec")
            .arg(fixture())
            .arg("--policy")
            .arg(policy("idle-vector", true, Time::Absent))
            .args(["--tap", "net0=tbidle0", "--timeout", "60", "--stats"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let child = running.0.as_mut().unwrap();
    // The log as it comes, and the testbed's stderr when it ends.
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            all.push(line.clone());
            let _ = tx.send(line);
        }
        all
    });
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    // Once the fixture found no frame, it halts in `poll` with no deadline.
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("receive: no frame waiting")),
        "the fixture never waited"
    );
    assert!(
        ns.wait_for_carrier("tbidle0", Duration::from_secs(20)),
        "the TAP interface never came up"
    );
    let sent = frame(SUBJECT_MAC, HOST_MAC, b"frame from the peer");
    let echoed = std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let sock = PacketSocket::open("tbidle0");
            assert!(sock.send(&sent));
            sock.recv(Duration::from_secs(20))
        })
        .join()
        .unwrap()
    });
    let status = running.0.take().unwrap().wait().unwrap();
    let out = Output {
        status,
        stdout: reader.join().unwrap().join("\n").into_bytes(),
        stderr: errors.join().unwrap(),
    };
    assert!(out.status.success(), "{}", show(&out));
    // The bridge wrote the frame into net0|in and injected the vector; the fixture
    // woke, received it and echoed it, with the net0|out event.
    assert_eq!(echoed.as_deref(), Some(&sent[..]), "{}", show(&out));
    let log = log(&out, "idle-vector");
    assert!(
        log.contains(&format!("INFO received {} bytes", sent.len())),
        "{log:?}"
    );
    assert!(count(&out, "halts") >= 1, "it halted instead of spinning");
    assert_eq!(count(&out, "to_subject"), 1, "{}", show(&out));
    assert_eq!(count(&out, "from_subject"), 1, "{}", show(&out));
    assert_eq!(
        count(&out, "events"),
        2,
        "net0|out and exit: {}",
        show(&out)
    );
    assert_eq!(stat(&out, "exit_event").as_deref(), Some("true"));
}
