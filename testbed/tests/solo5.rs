//! Unmodified Solo5 unikernels on the testbed (`docs/solo5.md`): Solo5's own test
//! programs, built for Muen by `scripts/solo5-build.sh` from the pinned tree beside the
//! repository, run in QEMU mode and judged by what Solo5's `tests/tests.bats` expects of
//! them on hvt.
//!
//! `netns_solo5_qemu_tcg_acceptance_table` runs every test program tests.bats names
//! (the network ones in a private network namespace, so it needs root) and prints a
//! table with each result; a program either passes as tests.bats expects, or the test
//! asserts exactly how and why Solo5's Muen bindings (or Muen itself) make it differ.
//! `scripts/test.sh` runs it with `--nocapture`. The other tests need no root; the
//! `qemu_kvm_` one needs a usable `/dev/kvm` and fails saying so without one; the
//! `muens_tool_chain` one runs Muen's tools (`../shared/muen`), and `scripts/test.sh`
//! runs it with theirs.

mod common;
#[path = "../../policy-gen/tests/common/solo5.rs"]
mod solo5;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::muen_kit::{self, Kit};
use common::netns::Netns;
use common::{log_lines, require_kvm, require_root, show, testbed};
use muen_sinfo::{ResourceData, SubjectInfo, Version};
use solo5::{muen_image, solo5_tests, Image, MFT1};

/// Where the testbed builds its boot stage: the target directory of the QEMU tests,
/// not the one the cargo running these tests holds locked.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu-target")
}

/// What a run of a unikernel gave.
struct Run {
    /// The testbed's exit status.
    status: Option<i32>,
    /// The unikernel's console lines (the log text after the subject's name).
    lines: Vec<String>,
    /// The testbed's stderr.
    stderr: String,
    /// The whole output, for messages.
    shown: String,
    /// Wall time of the testbed.
    time: Duration,
}

impl Run {
    fn has(&self, text: &str) -> bool {
        self.lines.iter().any(|l| l.contains(text))
    }

    /// How many console lines contain `text`.
    fn count(&self, text: &str) -> usize {
        self.lines.iter().filter(|l| l.contains(text)).count()
    }
}

/// The testbed command for the unikernel `image` with `accel`, in `ns` if given.
fn command(
    ns: Option<&Netns>,
    image: &Path,
    accel: &str,
    extra: &[&str],
    args: &[&str],
) -> Command {
    let exe = env!("CARGO_BIN_EXE_muen-testbed");
    let mut c = match ns {
        Some(ns) => ns.command(exe),
        None => Command::new(exe),
    };
    c.env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_NET_OFFLINE", "true")
        .args(["run", "--qemu", "--accel", accel, "--stats"])
        .args(extra)
        .arg(image);
    if !extra.contains(&"--timeout") {
        c.args(["--timeout", "150"]);
    }
    if !args.is_empty() {
        c.arg("--").args(args);
    }
    c
}

/// The subject name the testbed gives `image` (its file name without `.muen`).
fn subject_name(image: &Path) -> String {
    policy_gen::solo5::default_name(image)
}

fn finish(image: &Path, out: std::process::Output, time: Duration) -> Run {
    Run {
        status: out.status.code(),
        lines: log_lines(&out.stdout, &subject_name(image)),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        shown: show(&out),
        time,
    }
}

/// Runs `image` with `accel` and the command line `args`.
fn run(image: &Path, accel: &str, extra: &[&str], args: &[&str]) -> Run {
    let started = Instant::now();
    let out = command(None, image, accel, extra, args).output().unwrap();
    finish(image, out, started.elapsed())
}

/// The boot stage, built before any run is timed (cargo's output goes to stderr).
fn build_boot_stage() {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--release",
            "--offline",
            "-p",
            "muen-qemu-boot",
        ])
        .args(["--target", "x86_64-unknown-none"])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir())
        .status()
        .unwrap();
    assert!(status.success(), "building the boot stage failed");
}

/// `test_hello` as `muen-testbed run --qemu test_hello.muen -- Hello_Solo5`: Solo5's
/// banner, the greeting, the command line from ARGS, SUCCESS, status 0. Without ARGS
/// the command line is empty and test_hello does not print SUCCESS (by its design);
/// with `--policy` from `policy-gen --bootparams`, the policy's command line counts.
fn hello_runs(accel: &str) -> Run {
    let hello = muen_image("hello");
    let r = run(&hello, accel, &[], &["Hello_Solo5"]);
    assert_eq!(r.status, Some(0), "{}", r.shown);
    for line in [
        "|      ___|",
        "Solo5: Bindings version v0.12.1",
        "Solo5: Clock source: Muen PV clock",
        "Hello, World",
        "Command line is: 'Hello_Solo5'",
        "SUCCESS",
        "Solo5: solo5_exit(0) called",
    ] {
        assert!(r.has(line), "no `{line}` in {}", r.shown);
    }
    // Solo5's memory map: RAM from the end of the image (0x20d000) up to the boot
    // info's mem_size (the default 512 MiB of RAM).
    assert!(
        r.has("heap >= 0x20d000 < stack < 0x2020d000"),
        "{}",
        r.shown
    );
    r
}

#[test]
fn qemu_tcg_solo5_hello_prints_its_banner_and_command_line() {
    build_boot_stage();
    hello_runs("tcg");
    let hello = muen_image("hello");
    let r = run(&hello, "tcg", &[], &[]);
    assert_eq!(r.status, Some(0), "{}", r.shown);
    assert!(
        r.has("Command line is: ''") && !r.has("SUCCESS"),
        "{}",
        r.shown
    );
    // Several ARGS are one command line, joined by spaces.
    let r = run(&hello, "tcg", &[], &["a", "b c"]);
    assert!(r.has("Command line is: 'a b c'"), "{}", r.shown);
    // A policy from policy-gen: its bootparams are the command line.
    let dir = common::temp("solo5-hello-policy");
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("hello.xml");
    let image = policy_gen::solo5::load(&hello).unwrap();
    let options = policy_gen::solo5::Solo5Options {
        bootparams: "Hello_Solo5".into(),
        ram: 8 << 20,
        ..Default::default()
    };
    let spec = policy_gen::solo5::component_spec(&image, &hello, &options).unwrap();
    std::fs::write(
        &policy,
        policy_gen::document(&spec, muen_spec::Generation::V2026_01),
    )
    .unwrap();
    let r = run(&hello, "tcg", &["--policy", policy.to_str().unwrap()], &[]);
    assert_eq!(r.status, Some(0), "{}", r.shown);
    assert!(
        r.has("Command line is: 'Hello_Solo5'") && r.has("SUCCESS"),
        "{}",
        r.shown
    );
    assert!(r.has("heap >= 0x20d000 < stack < 0xa0d000"), "{}", r.shown);
}

#[test]
fn qemu_kvm_solo5_hello_and_a_crash_report() {
    require_kvm("qemu_kvm_solo5_hello_and_a_crash_report");
    build_boot_stage();
    let r = hello_runs("kvm");
    assert!(r.stderr.contains("qemu_accel=kvm"), "{}", r.stderr);
    let r = run(&muen_image("exception"), "kvm", &[], &[]);
    assert_eq!(r.status, Some(255), "{}", r.shown);
    assert!(
        r.has("Solo5: trap: cr2=0x400000000") && r.has("Solo5: ABORT"),
        "{}",
        r.shown
    );
}

#[test]
fn solo5_unikernels_are_refused_in_hosted_mode_and_when_broken() {
    let hello = muen_image("hello");
    let out = testbed().arg("run").arg(&hello).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a Solo5 unikernel (a static ELF linked with Solo5's Muen bindings) cannot run in hosted mode")
            && err.contains("muen-testbed run --qemu"),
        "{err}"
    );
    // A broken manifest is named before QEMU starts.
    let mut image = Image::real("mft_maxdevices");
    image.set_u32(MFT1, solo5::MANIFEST_ENTRY_COUNT, 65);
    let path = common::temp("too_many.muen");
    image.write(&path);
    let out = testbed()
        .args(["run", "--qemu"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("too many entries: 65, at most 64"),
        "{}",
        show(&out)
    );
    // --disk: Solo5's Muen bindings have no block devices.
    let out = testbed()
        .args(["run", "--qemu", "--disk", "storage0=/dev/null"])
        .arg(muen_image("mft_maxdevices"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("its BLOCK_BASIC device; Solo5's Muen bindings have no block devices"),
        "{}",
        show(&out)
    );
    // A command line that does not fit the boot info page.
    let long = "x".repeat(5000);
    let out = testbed()
        .args(["run", "--qemu"])
        .arg(&hello)
        .args(["--", &long])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bootparams: 5000 bytes"));
}

/// An image that declares Solo5 ABI muen version 3 (Solo5 v0.11.0 to v0.12.0) gets a
/// subject info page of format 4, as Muen tools of its time write. Made here by
/// changing the ABI note of a v0.12.1 image, whose code reads format 5: it then finds
/// no `debuglog` (the magic differs), prints nothing and faults on its first console
/// line until the timeout, exactly what it would do on such a Muen system.
#[test]
fn qemu_tcg_solo5_abi_3_gets_sinfo_format_4() {
    build_boot_stage();
    let mut image = Image::real("hello");
    image.set_u32(solo5::ABI1, solo5::ABI_VERSION, 3);
    let path = common::temp("abi3.muen");
    image.write(&path);
    let r = run(&path, "tcg", &["--timeout", "4"], &["Hello_Solo5"]);
    assert_eq!(r.status, Some(124), "{}", r.shown);
    assert!(r.lines.is_empty(), "{}", r.shown);
    assert!(r.stderr.contains("log_messages=0"), "{}", r.stderr);
}

/// The testbed's boot info and (format 4) sinfo page for a unikernel are those of
/// Muen's own tools: `pipeline.sh` (2026-04) on the same specification writes the boot
/// info with `mugensolo5` and the page with `mugensinfo`.
#[test]
fn muens_tool_chain_gives_solo5_the_testbeds_boot_info_and_sinfo() {
    let kit = Kit::beside(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    let path = muen_image("net_2if");
    let image = policy_gen::solo5::load(&path).unwrap();
    let options = policy_gen::solo5::Solo5Options {
        bootparams: "limit --x=1".into(),
        ..Default::default()
    };
    let spec = policy_gen::solo5::component_spec(&image, &path, &options).unwrap();
    let dir = common::temp("solo5-pipeline");
    std::fs::create_dir_all(&dir).unwrap();
    let xml = dir.join("spec.xml");
    std::fs::write(
        &xml,
        policy_gen::document(&spec, muen_spec::Generation::V2026_04),
    )
    .unwrap();
    let outcome = kit.run(&muen_kit::Run {
        generation: "2026-04",
        out: dir.join("out"),
        additions: None,
        files: None,
        specs: vec![xml],
    });
    outcome.print();
    outcome.assert_passed();
    let out_dir = outcome.out.clone();

    let view = muen_spec::expand(&spec).unwrap();
    let (_, ours) = muen_testbed::qemu::solo5::boot_info(&view, "limit --x=1").unwrap();
    let muens = std::fs::read(out_dir.join("solo5/test_net_2if_bi")).unwrap();
    assert_eq!(ours, muens, "boot info: testbed vs mugensolo5");

    // The page the testbed gives an ABI 3 image (format 4) names what mugensinfo's
    // names, in the same order, with the same addresses, sizes and rights.
    let tsc = muen_testbed::clock::TscRate::from_khz(2_000_000).unwrap();
    let ours = muen_testbed::sinfo::page(&view, tsc, Version::V4).unwrap();
    let muens = std::fs::read(out_dir.join("sinfo/test_net_2if_sinfo")).unwrap();
    let resources = |bytes: &[u8]| -> Vec<String> {
        let info = SubjectInfo::new_checked(bytes).unwrap();
        assert_eq!(info.version(), Version::V4);
        info.resources()
            .map(|r| match r.data {
                ResourceData::Memory(m) => format!(
                    "memory {} {:#x} {:#x} w={} x={} {:?}",
                    r.name,
                    m.address,
                    m.size,
                    m.writable(),
                    m.executable(),
                    m.kind
                ),
                ResourceData::Event(n) => format!("event {} {n}", r.name),
                ResourceData::Vector(n) => format!("vector {} {n}", r.name),
                other => format!("{} {other:?}", r.name),
            })
            .collect()
    };
    assert_eq!(resources(&ours), resources(&muens));
}

// ---------------------------------------------------------------------------------
// The acceptance table: every program with Solo5's C bindings (Solo5's own images) and
// with solo5-muen (the same test objects relinked with this project's solo5_muen.o).

/// The Muen bindings a column of the table runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bindings {
    /// Solo5's own `solo5_muen.o`: the images Solo5's build made.
    C,
    /// This project's `solo5-muen`: Solo5's test objects relinked with it.
    Rust,
}

/// `solo5_muen.o` built by `scripts/solo5-muen-build.sh` (with `features`) into `name`
/// under the test's temporary directory, in a target directory of its own (the one of
/// `cargo test` is locked while the tests run); or the object `$<variable>` names, if
/// set (scripts/test.sh builds both objects first).
fn build_object(variable: &str, features: &[&str], name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(variable) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{variable} names {}, which does not exist",
            path.display()
        );
        return path;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/solo5-muen-build.sh");
    let object = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("solo5-muen/{name}"));
    let out = Command::new("bash")
        .arg(&script)
        .args(features)
        .arg(&object)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success() && object.is_file(),
        "{} failed: {}",
        script.display(),
        show(&out)
    );
    object
}

/// `solo5_muen.o` (Solo5 ABI 4, sinfo format 5): `$SOLO5_MUEN_OBJECT` or built once per
/// test binary.
fn solo5_muen_object() -> &'static Path {
    static OBJECT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    OBJECT.get_or_init(|| build_object("SOLO5_MUEN_OBJECT", &[], "solo5_muen.o"))
}

/// Solo5's test program `test_<name>` linked with solo5-muen instead of Solo5's C
/// bindings: Solo5's link of a `.muen` image (its linker script, `-static -z
/// max-page-size=0x1000`, no build id) with `solo5_muen.o` in place of Solo5's object.
fn relinked(name: &str) -> PathBuf {
    relinked_with(name, solo5_muen_object(), "images")
}

/// `test_<name>` linked with `object` into directory `dir` of the test's temporary
/// directory.
fn relinked_with(name: &str, object: &Path, dir: &str) -> PathBuf {
    let tests = solo5_tests();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("solo5-muen")
        .join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let image = dir.join(format!("test_{name}.muen"));
    let test = tests.join(format!("test_{name}"));
    let out = Command::new("ld")
        .args([
            "--build-id=none",
            "-static",
            "-z",
            "max-page-size=0x1000",
            "-T",
        ])
        .arg(tests.join("../bindings/solo5_muen.lds"))
        .arg(object)
        .arg(test.join(format!("test_{name}.o")))
        .arg(test.join("manifest.o"))
        .arg("-o")
        .arg(&image)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ld: {e}"));
    assert!(
        out.status.success(),
        "linking {}: {}",
        image.display(),
        show(&out)
    );
    image
}

/// The image of `test` for `bindings`.
fn image_for(test: &str, bindings: Bindings) -> PathBuf {
    match bindings {
        Bindings::C => muen_image(test),
        Bindings::Rust => relinked(test),
    }
}

/// How a program's result compares with tests.bats.
enum Verdict {
    /// As tests.bats expects on hvt.
    Passes,
    /// Differs, for this reason; the run showed exactly this.
    Differs(&'static str),
}

/// One cell of the table: a program with one kind of bindings.
struct Row {
    test: &'static str,
    /// What tests.bats expects on hvt.
    bats: &'static str,
    /// What happened here.
    seen: String,
    time: Option<Duration>,
    verdict: Verdict,
    /// Problems: what was expected and did not happen.
    problems: Vec<String>,
}

impl Row {
    fn new(test: &'static str, bats: &'static str, verdict: Verdict) -> Row {
        Row {
            test,
            bats,
            seen: String::new(),
            time: None,
            verdict,
            problems: Vec::new(),
        }
    }

    /// Records `run`'s status and markers and checks the status and `lines`.
    fn check(mut self, run: &Run, status: i32, lines: &[&str]) -> Row {
        let markers: Vec<&str> = ["SUCCESS", "FAILURE", "ABORT"]
            .into_iter()
            .filter(|m| run.has(m))
            .collect();
        self.seen = format!(
            "status {}{}",
            run.status.map_or("none".into(), |s| s.to_string()),
            if markers.is_empty() {
                String::new()
            } else {
                format!(", {}", markers.join(", "))
            }
        );
        self.time = Some(run.time);
        if run.status != Some(status) {
            self.problems
                .push(format!("status {:?}, expected {status}", run.status));
        }
        for line in lines {
            if !run.has(line) {
                self.problems.push(format!("no `{line}`"));
            }
        }
        if !self.problems.is_empty() {
            self.problems.push(run.shown.clone());
        }
        self
    }

    /// [`Row::check`] keeping the problems found before.
    fn check_more(mut self, run: &Run, status: i32, lines: &[&str]) -> Row {
        let before = std::mem::take(&mut self.problems);
        let mut checked = self.check(run, status, lines);
        checked.problems.splice(0..0, before);
        checked
    }

    fn expect(&mut self, ok: bool, problem: impl Into<String>) {
        if !ok {
            self.problems.push(problem.into());
        }
    }

    /// The cell's text.
    fn result(&self) -> String {
        let result = match (&self.verdict, self.problems.is_empty()) {
            (_, false) => "UNEXPECTED",
            (Verdict::Passes, true) => "pass",
            (Verdict::Differs(_), true) => "differs",
        };
        let time = self
            .time
            .map_or(String::new(), |t| format!(", {:.1} s", t.as_secs_f64()));
        format!("{result}: {}{time}", self.seen)
    }
}

/// A program that tests.bats expects to succeed: status 0 and `SUCCESS`.
fn success(accel: &str, test: &'static str, bindings: Bindings, args: &[&str]) -> Row {
    let r = run(&image_for(test, bindings), accel, &[], args);
    Row::new(test, "status 0, SUCCESS", Verdict::Passes).check(&r, 0, &["SUCCESS"])
}

/// test_fpu under KVM: where KVM runs the guest's SSE code it passes like under TCG.
/// This host's software-assisted KVM instead stops at the program's first SSE
/// arithmetic (`mulps xmm1, xmm1`, a register operation) with an instruction emulation
/// failure, which QEMU reports as a KVM internal error and the testbed as its exit
/// status. The row accepts either and says which it saw.
fn fpu_under_kvm(accel: &str, b: Bindings) -> Row {
    let bats = "status 0, SUCCESS";
    let r = run(&image_for("fpu", b), accel, &[], &[]);
    if r.status == Some(0) {
        return Row::new("fpu", bats, Verdict::Passes).check(&r, 0, &["SUCCESS"]);
    }
    let mut row = Row::new(
        "fpu",
        bats,
        Verdict::Differs(
            "this host's software-assisted KVM stops at test_fpu's first SSE arithmetic \
             (mulps) with an instruction emulation failure (QEMU: `KVM internal error. \
             Suberror: 1`); the TCG table runs it: SUCCESS",
        ),
    );
    row.seen = format!(
        "status {}, KVM emulation failure",
        r.status.map_or("none".into(), |s| s.to_string())
    );
    row.time = Some(r.time);
    row.expect(
        r.stderr.contains("KVM internal error. Suberror: 1")
            && r.stderr.contains("emulation failure")
            && r.has("**** Solo5 standalone test_fpu ****")
            && !r.has("SUCCESS"),
        r.shown.clone(),
    );
    row
}

/// A program that tests.bats expects to abort: status 255 and `ABORT`, here with the
/// crash report `trap` (if given) of Solo5's trap handler.
fn abort(
    accel: &str,
    test: &'static str,
    bindings: Bindings,
    bats: &'static str,
    verdict: Verdict,
    trap: &[&str],
) -> Row {
    let r = run(&image_for(test, bindings), accel, &[], &[]);
    let mut lines = vec!["ABORT"];
    lines.extend_from_slice(trap);
    Row::new(test, bats, verdict).check(&r, 255, &lines)
}

/// A network program in a namespace: TAP `tap10N` per device `serviceN`, host
/// 10.N.0.1/24, the unikernel 10.N.0.2, `count` flood pings to each at once, then
/// status 0 and SUCCESS (`test_net* limit` stops after its count of echo replies).
fn network(
    accel: &str,
    test: &'static str,
    bindings: Bindings,
    bats: &'static str,
    devices: usize,
    count: u32,
) -> Row {
    let ns = Netns::new();
    let image = image_for(test, bindings);
    let extra: Vec<String> = (0..devices)
        .map(|i| format!("--tap=service{i}=tap10{i}"))
        .collect();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let started = Instant::now();
    let mut child = command(Some(&ns), &image, accel, &extra, &["limit"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The unikernel says when it serves (after the testbed made the TAP interfaces).
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("Serving ping on") {
                let _ = tx.send(());
            }
            all.extend_from_slice(line.as_bytes());
            all.push(b'\n');
        }
        all
    });
    let mut row = Row::new(test, bats, Verdict::Passes);
    for _ in 0..devices {
        row.expect(
            rx.recv_timeout(Duration::from_secs(60)).is_ok(),
            "the unikernel did not say `Serving ping on`",
        );
    }
    for i in 0..devices {
        let tap = format!("tap10{i}");
        row.expect(
            ns.has_link(&tap),
            format!("no interface {tap} in the namespace"),
        );
    }
    if !row.problems.is_empty() {
        // No interfaces to ping: show what the testbed said.
        let _ = child.kill();
        let status = child.wait().unwrap();
        let stdout = reader.join().unwrap();
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        let out = std::process::Output {
            status,
            stdout,
            stderr: stderr.into_bytes(),
        };
        row.problems.push(show(&out));
        row.seen = "did not serve".into();
        return row;
    }
    let pings: Vec<_> = (0..devices)
        .map(|i| {
            let tap = format!("tap10{i}");
            ns.exec(&["ip", "addr", "add", &format!("10.{i}.0.1/24"), "dev", &tap]);
            ns.exec(&["ip", "link", "set", &tap, "up"]);
            ns.command("ping")
                .args(["-fq", "-c", &count.to_string(), "-w", "120"])
                .arg(format!("10.{i}.0.2"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut summaries = Vec::new();
    for ping in pings {
        let out = ping.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        row.expect(
            text.contains(&format!("{count} packets transmitted, {count} received")),
            format!("ping: {}", show(&out)),
        );
        summaries.push(
            text.lines()
                .find(|l| l.starts_with("rtt"))
                .unwrap_or_default()
                .to_string(),
        );
    }
    let status = child.wait().unwrap();
    let stdout = reader.join().unwrap();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    let out = std::process::Output {
        status,
        stdout,
        stderr: stderr.into_bytes(),
    };
    let r = finish(&image, out, started.elapsed());
    let mut row = row.check_more(&r, 0, &["SUCCESS"]);
    row.seen = format!(
        "{}; {count} flood pings{} answered",
        row.seen,
        if devices > 1 { " on each" } else { "" }
    );
    for s in summaries {
        eprintln!("{test} ({bindings:?}): ping {s}");
    }
    row
}

/// The rows of every program with `bindings`, in table order.
fn acceptance_rows(accel: &str, bindings: Bindings, with_network: bool) -> Vec<Row> {
    use Bindings::{Rust, C};
    let tests = solo5_tests();
    let mut rows = Vec::new();
    let b = bindings;

    let hello_bats = "status 0, SUCCESS (command line `Hello_Solo5`)";
    let hello_lines = ["Hello, World", "Command line is: 'Hello_Solo5'", "SUCCESS"];
    match b {
        C => {
            let r = hello_runs(accel);
            rows.push(Row::new("hello", hello_bats, Verdict::Passes).check(&r, 0, &hello_lines));
        }
        Rust => {
            let r = run(&relinked("hello"), accel, &[], &["Hello_Solo5"]);
            let mut lines = vec!["Solo5: Bindings version solo5-muen"];
            lines.extend(hello_lines);
            rows.push(Row::new("hello", hello_bats, Verdict::Passes).check(&r, 0, &lines));
        }
    }
    for test in ["globals", "fpu", "tls", "time"] {
        if test == "fpu" && accel == "kvm" {
            rows.push(fpu_under_kvm(accel, b));
        } else {
            rows.push(success(accel, test, b, &[]));
        }
    }
    rows.push(abort(
        accel,
        "ssp",
        b,
        "status 255, ABORT",
        Verdict::Passes,
        &["Solo5: ABORT: Stack corruption detected"],
    ));
    // FS base 0: `mov %fs:0x28` reads page 0, which nothing maps.
    rows.push(abort(
        accel,
        "notls",
        b,
        "status 255, ABORT",
        Verdict::Passes,
        &["Solo5: trap: type=#PF ec=0x0", "Solo5: trap: cr2=0x28"],
    ));

    // --solo5:quiet: Solo5's Muen console logs its channel before the command line is
    // parsed, so one `Solo5:` line is always there (on Muen also `Solo5: Halted` at the
    // end, which the testbed's exit patch skips). solo5-muen reads the command line
    // first and prints nothing but errors with --solo5:quiet.
    let quiet_bats = "status 0, SUCCESS, no `Solo5:` line (command line `--solo5:quiet`)";
    let r = run(&image_for("quiet", b), accel, &[], &["--solo5:quiet"]);
    let row = match b {
        C => {
            let mut row = Row::new(
                "quiet",
                quiet_bats,
                Verdict::Differs(
                    "Solo5's Muen console prints `Solo5: Console: Muen Channel @ ...` before \
                     it reads --solo5:quiet (bindings/muen/start.c: console_init before \
                     cmdline_parse)",
                ),
            )
            .check(
                &r,
                0,
                &["SUCCESS", "Solo5: Console: Muen Channel @ 0xffff00000"],
            );
            row.expect(
                r.count("Solo5:") == 1,
                format!("not exactly one `Solo5:` line: {:?}", r.lines),
            );
            row.seen = format!("{}, one `Solo5:` line", row.seen);
            row
        }
        Rust => {
            let mut row = Row::new("quiet", quiet_bats, Verdict::Passes).check(&r, 0, &["SUCCESS"]);
            row.expect(
                r.count("Solo5:") == 0,
                format!("`Solo5:` lines: {:?}", r.lines),
            );
            row.seen = format!("{}, no `Solo5:` line", row.seen);
            row
        }
    };
    rows.push(row);

    // There is no test_abort in Solo5's tree.
    let mut row = Row::new(
        "abort",
        "(no such test)",
        Verdict::Differs("Solo5's tests/ has no test_abort"),
    );
    row.seen = "not in the tree".into();
    row.expect(
        !tests.join("test_abort").exists(),
        "tests/test_abort exists after all: add it to this table",
    );
    rows.push(row);

    rows.push(abort(
        accel,
        "exception",
        b,
        "status 255, ABORT",
        Verdict::Passes,
        &[
            "Solo5: trap: type=#PF ec=0x2",
            "Solo5: trap: cr2=0x400000000",
            match b {
                C => "Solo5: ABORT: cpu_x86_64.c:182: Fatal trap",
                Rust => "Solo5: ABORT: Fatal trap",
            },
        ],
    ));
    rows.push(abort(
        accel,
        "zeropage",
        b,
        "status 255, ABORT",
        Verdict::Passes,
        &["Solo5: trap: type=#PF ec=0x2", "Solo5: trap: cr2=0x8"],
    ));
    // Memory protection: the testbed maps each segment with its ELF rights in the
    // subject's own page tables (CR0.WP, EFER.NXE), as Muen does from the policy; a
    // violation is a page fault inside the unikernel, which Solo5 reports and aborts.
    // hvt instead catches it in the host (EPT) and the tender exits with status 1.
    rows.push(abort(
        accel,
        "xnow",
        b,
        "Linux, OpenBSD: status 1, `host/guest translation fault` (hvt's tender)",
        Verdict::Differs(
            "the write to .text faults in the unikernel's own page tables (#PF ec=0x3), \
             as on Muen: Solo5's crash report and ABORT, status 255",
        ),
        &["Solo5: trap: type=#PF ec=0x3"],
    ));
    rows.push(abort(
        accel,
        "wnox",
        b,
        "OpenBSD only: status 1, `host/guest translation fault`",
        Verdict::Differs(
            "the jump into .data faults in the unikernel's page tables (NX, #PF \
             ec=0x11), as on Muen: ABORT, status 255",
        ),
        &["Solo5: trap: type=#PF ec=0x11"],
    ));
    let r = run(&image_for("rnox", b), accel, &[], &[]);
    rows.push(
        Row::new(
            "rnox",
            "OpenBSD only: status 1, `host/guest translation fault`",
            Verdict::Differs(
                "test_rnox puts code in .rodata, so the linker makes that segment R+X; \
                 its region is executable (from the segment's flags, as solo5-gencspec.py \
                 does on Muen): the call runs, FAILURE, status 1, no fault",
            ),
        )
        .check(&r, 1, &["FAILURE"]),
    );

    if with_network {
        rows.push(network(
            accel,
            "net",
            b,
            "root: status 0, SUCCESS after 100000 flood pings (`limit`)",
            1,
            100_000,
        ));
        rows.push(network(
            accel,
            "net_2if",
            b,
            "root: status 0, SUCCESS after 50000 flood pings on each interface",
            2,
            50_000,
        ));
    }

    let blk_bats = "status 0, SUCCESS (with --block:storage=IMAGE)";
    let row = match b {
        C => {
            // test_blk: Solo5 builds no test_blk.muen. Linked here from Solo5's own
            // object with its Muen bindings, it shows what they answer:
            // solo5_block_acquire fails (SOLO5_R_EUNSPEC, bindings/muen/muen-block.c).
            let mut row = Row::new(
                "blk",
                blk_bats,
                Verdict::Differs(
                    "not built for muen (tests/test_blk/GNUmakefile: CONFIG_MUEN empty); \
                     Solo5's Muen bindings answer every solo5_block_* with \
                     SOLO5_R_EUNSPEC: linked here from test_blk.o, it cannot acquire \
                     `storage` and exits 99",
                ),
            );
            row.expect(
                !tests.join("test_blk/test_blk.muen").exists(),
                "Solo5 builds test_blk.muen after all",
            );
            let r = run(&link_test_blk(), accel, &[], &[]);
            let mut row = row.check_more(&r, 99, &["Could not acquire 'storage' block device"]);
            row.seen = format!("not built; linked: {}", row.seen);
            row
        }
        Rust => {
            // As tests.bats: a disk image of 1 MiB (its test writes every tenth block
            // and checks the edges).
            let disk = common::temp("solo5-muen-storage.img");
            std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
            let arg = format!("--disk=storage={}", disk.display());
            let r = run(&relinked("blk"), accel, &[&arg], &[]);
            let mut row = Row::new("blk", blk_bats, Verdict::Passes).check(
                &r,
                0,
                &[
                    "Solo5: Application acquired 'storage' as block device",
                    "SUCCESS",
                ],
            );
            row.seen = format!("linked from test_blk.o, --disk: {}", row.seen);
            row
        }
    };
    rows.push(row);

    let mft_bats = "status 0, SUCCESS (63 --block: devices)";
    let row = match b {
        C => {
            let r = run(&muen_image("mft_maxdevices"), accel, &[], &[]);
            Row::new(
                "mft_maxdevices",
                mft_bats,
                Verdict::Differs(
                    "its 64-entry manifest is valid, but solo5_block_acquire(\"storage0\") \
                     answers SOLO5_R_EUNSPEC on Muen: FAILURE, status 1",
                ),
            )
            .check(&r, 1, &["FAILURE"])
        }
        Rust => mft_maxdevices_solo5_muen(accel, mft_bats),
    };
    rows.push(row);

    // test_too_many_entries: an elftool test (its manifest has 64 devices); no image,
    // so the bindings play no part.
    let elftool = tests.join("../elftool/solo5-elftool");
    let out = Command::new(&elftool)
        .args(["gen-manifest"])
        .arg(tests.join("test_too_many_entries/manifest.json"))
        .arg(common::temp("too_many_entries.c"))
        .output()
        .unwrap();
    let mut row = Row::new(
        "too_many_entries",
        "solo5-elftool gen-manifest: status 1, `too many entries, maximum 63`",
        Verdict::Passes,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    row.seen = format!(
        "elftool status {}{}",
        out.status.code().unwrap_or(-1),
        if stderr.contains("too many entries, maximum 63") {
            ", `too many entries, maximum 63`"
        } else {
            ""
        }
    );
    row.expect(
        out.status.code() == Some(1) && stderr.contains("too many entries, maximum 63"),
        show(&out),
    );
    rows.push(row);
    rows
}

/// test_mft_maxdevices linked with solo5-muen. Its manifest declares 63 block devices;
/// a subject has 62 channel event ids (2..=63), one per muenblock request channel, so
/// `policy-gen --elf` refuses to give all of them channels. The program acquires only
/// `storage0` and `storage62`: with a policy that gives those two their channels (the
/// spec `policy-gen` makes for the image with only those devices), the 64-entry
/// manifest passes validation, handle 63 works, and the program succeeds.
fn mft_maxdevices_solo5_muen(accel: &str, bats: &'static str) -> Row {
    let image = relinked("mft_maxdevices");
    let mut row = Row::new(
        "mft_maxdevices",
        bats,
        Verdict::Differs(
            "63 muenblock devices need 63 request events, a subject has 62 (policy-gen \
             refuses); with channels for the two devices it acquires (storage0, \
             storage62) it validates its 64-entry manifest and succeeds",
        ),
    );
    let mut unikernel = policy_gen::solo5::load(&image).unwrap();
    row.expect(
        unikernel.bindings == policy_gen::solo5::Bindings::MuenSubject,
        format!(
            "{}: not recognised as linked with solo5-muen",
            image.display()
        ),
    );
    let all = policy_gen::solo5::component_spec(&unikernel, &image, &Default::default());
    row.expect(
        matches!(
            all,
            Err(policy_gen::solo5::Solo5Problem::TooManyChannels { .. })
        ),
        format!("policy-gen gave all 63 block devices channels: {all:?}"),
    );
    unikernel
        .devices
        .retain(|d| d.name == "storage0" || d.name == "storage62");
    let options = policy_gen::solo5::Solo5Options {
        buffer_size: 0x1_0000,
        ..Default::default()
    };
    let spec = policy_gen::solo5::component_spec(&unikernel, &image, &options).unwrap();
    let policy = common::temp("mft_maxdevices.xml");
    std::fs::write(
        &policy,
        policy_gen::document(&spec, muen_spec::Generation::default()),
    )
    .unwrap();
    let disks: Vec<String> = ["storage0", "storage62"]
        .iter()
        .map(|d| {
            let disk = common::temp(&format!("{d}.img"));
            std::fs::write(&disk, vec![0u8; 4096]).unwrap();
            format!("--disk={d}={}", disk.display())
        })
        .collect();
    let mut extra = vec!["--policy", policy.to_str().unwrap()];
    extra.extend(disks.iter().map(String::as_str));
    let r = run(&image, accel, &extra, &[]);
    let mut row = row.check_more(&r, 0, &["SUCCESS"]);
    row.seen = format!("storage0 and storage62 with channels: {}", row.seen);
    row
}

/// A policy for the relinked `test_<name>` whose specification lacks every device of
/// its manifest (as a hand-written or stale policy might).
fn policy_without_devices(name: &str) -> (PathBuf, PathBuf) {
    let image = relinked(name);
    let mut unikernel = policy_gen::solo5::load(&image).unwrap();
    assert_eq!(
        unikernel.bindings,
        policy_gen::solo5::Bindings::MuenSubject,
        "{} is linked with solo5-muen",
        image.display()
    );
    unikernel.devices.clear();
    let spec = policy_gen::solo5::component_spec(&unikernel, &image, &Default::default()).unwrap();
    let policy = common::temp(&format!("{name}-without-devices.xml"));
    std::fs::write(
        &policy,
        policy_gen::document(&spec, muen_spec::Generation::default()),
    )
    .unwrap();
    (image, policy)
}

/// Bad input that solo5-muen survives where Solo5's C bindings would not check: a
/// device of the manifest whose channels the subject info page lacks. Acquiring it is
/// SOLO5_R_EUNSPEC with a line naming the device, and the program ends as it decides;
/// nothing faults.
#[test]
fn qemu_tcg_solo5_muen_devices_missing_from_the_policy() {
    build_boot_stage();
    let (net, policy) = policy_without_devices("net");
    let r = run(&net, "tcg", &["--policy", policy.to_str().unwrap()], &[]);
    assert_eq!(r.status, Some(1), "{}", r.shown);
    assert!(
        r.has("Solo5: Net: 'service0': not acquired: ")
            && r.has("service0|in")
            && r.has("Could not acquire 'service0' network"),
        "{}",
        r.shown
    );
    assert!(!r.has("trap"), "{}", r.shown);
    let (blk, policy) = policy_without_devices("blk");
    let r = run(&blk, "tcg", &["--policy", policy.to_str().unwrap()], &[]);
    assert_eq!(r.status, Some(99), "{}", r.shown);
    assert!(
        r.has("Solo5: Block: 'storage': not acquired: ")
            && r.has("Could not acquire 'storage' block device"),
        "{}",
        r.shown
    );
}

/// solo5-muen built for the older pair, Solo5 ABI 3 with sinfo format 4 (feature
/// `abi3`): its ABI note says version 3, the testbed writes a format-4 page for it, and
/// test_hello runs.
#[test]
fn qemu_tcg_solo5_muen_abi3_runs_on_sinfo_format_4() {
    build_boot_stage();
    let object = build_object(
        "SOLO5_MUEN_ABI3_OBJECT",
        &["--features", "abi3"],
        "abi3/solo5_muen.o",
    );
    let hello = relinked_with("hello", &object, "abi3");
    let unikernel = policy_gen::solo5::load(&hello).unwrap();
    assert_eq!(unikernel.abi.version, 3);
    assert_eq!(unikernel.sinfo_version(), Version::V4);
    let r = run(&hello, "tcg", &[], &["Hello_Solo5"]);
    assert_eq!(r.status, Some(0), "{}", r.shown);
    assert!(
        r.has("Solo5 ABI muen version 3, sinfo format 4)") && r.has("SUCCESS"),
        "{}",
        r.shown
    );
}

#[test]
fn netns_solo5_qemu_tcg_acceptance_table() {
    require_root("netns_solo5_qemu_tcg_acceptance_table");
    build_boot_stage();
    acceptance_table("tcg", true);
}

/// The same table under KVM, without the two network programs (they need root and a
/// namespace; the TCG table has them): CI runs it where /dev/kvm is usable.
#[test]
fn qemu_kvm_solo5_acceptance_table() {
    require_kvm("qemu_kvm_solo5_acceptance_table");
    build_boot_stage();
    acceptance_table("kvm", false);
}

/// Runs every program with both bindings under `accel` (the network ones only if
/// `with_network`), prints the table and the reasons, and fails on any result that
/// is not the one its row expects.
fn acceptance_table(accel: &'static str, with_network: bool) {
    let c = acceptance_rows(accel, Bindings::C, with_network);
    let rust = acceptance_rows(accel, Bindings::Rust, with_network);

    // The table: one row per program, one column per kind of bindings.
    let header = [
        "test",
        "tests.bats expects (hvt)",
        "Solo5's C bindings",
        "solo5-muen",
    ]
    .map(String::from);
    let cells: Vec<[String; 4]> = c
        .iter()
        .zip(&rust)
        .map(|(c, r)| {
            assert_eq!(c.test, r.test, "the two columns list the programs alike");
            [
                c.test.to_string(),
                c.bats.to_string(),
                c.result(),
                r.result(),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            cells
                .iter()
                .chain([&header])
                .map(|c| c[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String; 4]| {
        let cols: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!(" {c:<w$} "))
            .collect();
        format!("|{}|", cols.join("|"))
    };
    println!();
    println!(
        "Solo5's test programs on the testbed (QEMU, {}), judged by tests/tests.bats, \
         with Solo5's C bindings and with solo5-muen{}:",
        accel.to_uppercase(),
        if with_network {
            ""
        } else {
            " (net and net_2if: in the TCG table, which runs them in a namespace)"
        }
    );
    println!("{}", line(&header));
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w + 2)).collect();
    println!("|{}|", rule.join("|"));
    for c in &cells {
        println!("{}", line(c));
    }
    let mut failed = Vec::new();
    let mut notes = Vec::new();
    for (column, rows) in [("Solo5's C bindings", &c), ("solo5-muen", &rust)] {
        for row in rows {
            if let Verdict::Differs(why) = row.verdict {
                notes.push(format!("{} ({column}): {why}", row.test));
            }
            if !row.problems.is_empty() {
                failed.push(format!(
                    "{} ({column}):\n{}",
                    row.test,
                    row.problems.join("\n")
                ));
            }
        }
    }
    println!("\nWhy the others differ on Muen:");
    for n in notes {
        println!("- {n}");
    }
    // Every program that passes with Solo5's C bindings passes with solo5-muen.
    for (c, r) in c.iter().zip(&rust) {
        if matches!(c.verdict, Verdict::Passes) && c.problems.is_empty() {
            assert!(
                matches!(r.verdict, Verdict::Passes),
                "{} passes with Solo5's C bindings, not with solo5-muen",
                c.test
            );
        }
    }
    assert!(
        failed.is_empty(),
        "unexpected results:\n{}",
        failed.join("\n\n")
    );
}

/// `test_blk.muen`, linked from Solo5's own `test_blk.o` and `manifest.o` with its
/// Muen bindings by Solo5's tool chain wrapper (Solo5's build links it for every other
/// target but not for muen), in a scratch directory.
fn link_test_blk() -> PathBuf {
    let tests = solo5_tests();
    let cc = tests.join("../toolchain/bin/x86_64-solo5-none-static-cc");
    let out_dir = common::temp("blk");
    std::fs::create_dir_all(&out_dir).unwrap();
    let image = out_dir.join("test_blk.muen");
    let out = Command::new(&cc)
        .args(["-z", "solo5-abi=muen"])
        .arg(tests.join("test_blk/test_blk.o"))
        .arg(tests.join("test_blk/manifest.o"))
        .arg("-o")
        .arg(&image)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cc.display()));
    assert!(
        out.status.success(),
        "linking test_blk.muen: {}",
        show(&out)
    );
    image
}
