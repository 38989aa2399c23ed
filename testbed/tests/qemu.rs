//! QEMU mode (`docs/qemu.md`): the real `x86_64-unknown-none` images boot in QEMU, under
//! KVM (`qemu_kvm_*`) and under TCG (`qemu_tcg_*`).
//!
//! The images are `examples/hello` and the misbehaving binaries of
//! `tests/fixtures/qemu-app`, built (release) in a target directory of their own so
//! that the builds do not wait for the lock of the cargo running these tests. The
//! `qemu_kvm_*` tests need a usable `/dev/kvm` and fail saying so without one;
//! `scripts/test.sh` then skips them with a visible line.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{example, log_lines, require_kvm, show, stat, temp, testbed};
use muen_testbed::qemu::elf::Elf;

/// The target directory of every build these tests make.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu-target")
}

fn fixture_package() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qemu-app")
}

/// The fixture image `name`, built once for all tests.
fn fixture(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "--offline",
                "--target",
                "x86_64-unknown-none",
            ])
            .arg("--manifest-path")
            .arg(fixture_package().join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", target_dir())
            .output()
            .unwrap();
        assert!(out.status.success(), "building the fixture: {}", show(&out));
    });
    target_dir().join("x86_64-unknown-none/release").join(name)
}

/// `muen-testbed run --qemu --release --accel ACCEL [extra] APP`.
fn qemu(accel: &str, app: &Path, extra: &[&str]) -> Output {
    testbed()
        .env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_NET_OFFLINE", "true")
        .args(["run", "--qemu", "--release", "--accel", accel, "--stats"])
        .args(extra)
        .arg(app)
        .output()
        .unwrap()
}

/// A fixture image run with the fixture's policy.
fn qemu_fixture(accel: &str, image: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--exec", image.to_str().unwrap()];
    args.extend_from_slice(extra);
    qemu(accel, &fixture_package(), &args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn hello_runs(accel: &str) {
    let out = qemu(accel, &example("hello"), &["--timeout", "120"]);
    assert!(out.status.success(), "{}", show(&out));
    let lines = log_lines(&out.stdout, "hello");
    assert_eq!(lines[0], "INFO hello from hello", "{}", show(&out));
    // The real image sees the world through its sinfo page: its own segments (which
    // hosted mode leaves out), RAM, the toolchain pages; and the wall clock the
    // testbed published for the guest's TSC.
    for resource in [
        "memory text 0x200000",
        "memory ram 0x40000000",
        "memory sinfo 0xe00000000",
        "event exit 0",
        "vector timer 32",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(resource)),
            "no `{resource}` in {lines:#?}"
        );
    }
    let wall = lines
        .iter()
        .find_map(|l| l.strip_prefix("INFO wall clock "))
        .and_then(|l| l.split('.').next())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no wall clock in {lines:#?}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(wall) < 60, "wall clock {wall}, now {now}");
    assert_eq!(lines.last().unwrap(), "INFO exit 0");
    let err = stderr(&out);
    assert!(err.contains(&format!("qemu_accel={accel}")), "{err}");
    assert!(err.contains("exit_event=true"), "{err}");
}

#[test]
fn qemu_kvm_hello_prints_its_log_and_exits_0() {
    require_kvm("qemu_kvm_hello_prints_its_log_and_exits_0");
    hello_runs("kvm");
}

#[test]
fn qemu_tcg_hello_prints_its_log_and_exits_0() {
    hello_runs("tcg");
}

#[test]
fn qemu_tcg_the_exit_code_is_the_whole_byte() {
    // QEMU's own status keeps 7 bits of what the guest writes to its exit device; the
    // code comes through the doorbell whole.
    let out = qemu_fixture("tcg", &fixture("exit-code"), &["--timeout", "60"]);
    assert_eq!(out.status.code(), Some(200), "{}", show(&out));
    assert!(stderr(&out).contains("exited with status 200"));
    assert_eq!(
        log_lines(&out.stdout, "fixture"),
        ["INFO exiting with 200", "INFO exit 200"]
    );
}

#[test]
fn qemu_tcg_a_cpu_exception_is_reported_by_the_runtime() {
    // The runtime's IDT works in the guest: #UD is logged and ends the subject with
    // 128 + 6.
    let out = qemu_fixture("tcg", &fixture("fault"), &["--timeout", "60"]);
    assert_eq!(out.status.code(), Some(134), "{}", show(&out));
    let lines = log_lines(&out.stdout, "fixture");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ERROR exception #UD vector 6 error 0x0 rip 0x")),
        "{}",
        show(&out)
    );
}

fn a_triple_fault_is_reported(accel: &str) {
    let out = qemu_fixture(accel, &fixture("triple-fault"), &["--timeout", "60"]);
    assert_eq!(out.status.code(), Some(139), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the guest running subject `fixture` reset itself (a triple fault)"),
        "{err}"
    );
    // The registers (RIP inside the image, the subject's page tables loaded) and the
    // last log line.
    let rip = err
        .lines()
        .find_map(|l| l.split("RIP=").nth(1))
        .and_then(|r| u64::from_str_radix(&r[..16], 16).ok())
        .unwrap_or_else(|| panic!("no RIP in {err}"));
    assert!((0x20_0000..0x40_0000).contains(&rip), "RIP {rip:#x}");
    assert!(err.contains("CR0=80010033"), "{err}");
    let last = err.split("the last log lines:").nth(1).unwrap_or_default();
    assert!(last.contains("fixture%INFO breaking the IDT"), "{err}");
}

#[test]
fn qemu_tcg_a_triple_fault_is_reported_with_registers_and_the_last_log_lines() {
    a_triple_fault_is_reported("tcg");
}

#[test]
fn qemu_kvm_a_triple_fault_is_reported_with_registers_and_the_last_log_lines() {
    require_kvm("qemu_kvm_a_triple_fault_is_reported_with_registers_and_the_last_log_lines");
    a_triple_fault_is_reported("kvm");
}

#[test]
fn qemu_tcg_a_hang_is_stopped_at_the_timeout_with_registers() {
    let out = qemu_fixture("tcg", &fixture("hang"), &["--timeout", "3"]);
    assert_eq!(out.status.code(), Some(124), "{}", show(&out));
    let err = stderr(&out);
    assert!(err.contains("did not exit within 3 s"), "{err}");
    assert!(err.contains("RIP=0000000000200"), "{err}");
    let last = err.split("the last log lines:").nth(1).unwrap_or_default();
    assert!(last.contains("fixture%INFO spinning forever"), "{err}");
}

/// The sleep fixture's three 300 ms sleeps, in microseconds, and the run's output.
fn sleeps(accel: &str, extra: &[&str]) -> (Vec<u64>, Output) {
    let mut args = vec!["--timeout", "60"];
    args.extend_from_slice(extra);
    let out = qemu_fixture(accel, &fixture("sleep"), &args);
    assert!(out.status.success(), "{}", show(&out));
    let slept: Vec<u64> = log_lines(&out.stdout, "fixture")
        .iter()
        .filter_map(|l| l.strip_prefix("INFO slept "))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(slept.len(), 3, "{}", show(&out));
    for us in &slept {
        // The deadline is 300 ms: not early, and late only by however long the host
        // takes to run the testbed and QEMU again.
        assert!((300_000..1_000_000).contains(us), "slept {us} us");
    }
    (slept, out)
}

fn the_idle_loop_sleeps_until_its_deadline(accel: &str) {
    let (_, out) = sleeps(accel, &[]);
    // No tick: the guest halted once per sleep and was woken once per deadline, by a
    // byte on its wake-up UART.
    assert_eq!(stat(&out.stderr, "halts"), Some(3), "{}", show(&out));
    assert_eq!(stat(&out.stderr, "timed_events"), Some(3), "{}", show(&out));
    assert_eq!(stat(&out.stderr, "wakes"), Some(3), "{}", show(&out));
}

#[test]
fn qemu_tcg_a_periodic_tick_still_wakes_the_guest_when_asked_for() {
    // With `--tick 250` the guest also wakes every 4 ms: it halts again each time (the
    // runtime looks at its clock), so there are far more halts than sleeps.
    let (_, out) = sleeps("tcg", &["--tick", "250"]);
    let halts = stat(&out.stderr, "halts").unwrap_or_else(|| panic!("{}", show(&out)));
    assert!(halts > 50, "{halts} halts in 0.9 s with a 250 Hz tick");
}

#[test]
fn qemu_tcg_the_idle_loop_sleeps_until_its_deadline() {
    the_idle_loop_sleeps_until_its_deadline("tcg");
}

#[test]
fn qemu_kvm_the_idle_loop_sleeps_until_its_deadline() {
    require_kvm("qemu_kvm_the_idle_loop_sleeps_until_its_deadline");
    the_idle_loop_sleeps_until_its_deadline("kvm");
}

#[test]
fn qemu_tcg_a_boot_failure_names_its_reason() {
    // A policy whose entry point is in no executable region: the boot stage refuses
    // it before anything of the subject runs.
    let image = fixture("exit-code");
    let xml =
        muen_testbed::app::policy_with_image(&fixture_package().join("app.toml"), &image).unwrap();
    let bad = xml.replace("<rip>16#0020_0000#</rip>", "<rip>16#4000_0000#</rip>");
    assert_ne!(bad, xml);
    let policy = temp("bad-rip.xml");
    std::fs::write(&policy, bad).unwrap();
    let out = qemu_fixture(
        "tcg",
        &image,
        &["--timeout", "60", "--policy", policy.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the boot stage could not start subject `fixture`")
            && err.contains("entry point 0x40000000 is not in an executable region"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "{}", show(&out));
}

#[test]
fn qemu_images_without_the_runtimes_stubs_are_refused() {
    let image = fixture("exit-code");
    // Stripped: no symbols to find the stubs by.
    let stripped = temp("stripped");
    let status = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&image)
        .status()
        .unwrap();
    assert!(status.success());
    let out = qemu_fixture("tcg", &stripped, &["--timeout", "60"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("no symbol `muen_subject_hypercall`"),
        "{}",
        show(&out)
    );
    // A stub with other bytes (another runtime version, say): refused, not patched.
    for (stub, found) in [
        ("muen_subject_exit", "[90, f4, eb, fd"),
        ("muen_subject_halt", "[90, f4, fa, c3"),
    ] {
        let mut bytes = std::fs::read(&image).unwrap();
        let (address, offset) = {
            let elf = Elf::parse(&bytes).unwrap();
            let address = elf.symbol(stub).unwrap().unwrap();
            let text = elf
                .segments()
                .unwrap()
                .into_iter()
                .find(|s| s.vaddr <= address && address < s.vaddr + s.memsz)
                .unwrap();
            (address, text.offset + (address - text.vaddr))
        };
        bytes[offset as usize] = 0x90;
        let changed = temp(&format!("changed-{stub}"));
        std::fs::write(&changed, bytes).unwrap();
        let out = qemu_fixture("tcg", &changed, &["--timeout", "60"]);
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        assert!(
            stderr(&out).contains(&format!("`{stub}` at {address:#x} holds {found}")),
            "{}",
            show(&out)
        );
    }
}

#[test]
fn qemu_bad_command_lines_and_boot_stages_name_the_problem() {
    // --accel needs --qemu.
    let out = testbed()
        .args(["run", "--accel", "tcg"])
        .arg(example("hello"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(stderr(&out).contains("--qemu"), "{}", show(&out));
    // A boot stage that is not one.
    let out = testbed()
        .env("MUEN_TESTBED_BOOT_STAGE", fixture("exit-code"))
        .env("CARGO_TARGET_DIR", target_dir())
        .args(["run", "--qemu", "--accel", "tcg", "--exec"])
        .arg(fixture("exit-code"))
        .arg(fixture_package())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("boot stage: ") && stderr(&out).contains("not a boot stage image"),
        "{}",
        show(&out)
    );
    // A QEMU that cannot be started.
    let out = testbed()
        .env("MUEN_TESTBED_QEMU", "/nonexistent/qemu")
        .env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_NET_OFFLINE", "true")
        .args(["run", "--qemu", "--accel", "tcg", "--exec"])
        .arg(fixture("exit-code"))
        .arg(fixture_package())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("starting QEMU (/nonexistent/qemu)"),
        "{}",
        show(&out)
    );
    assert_eq!(stat(&out.stderr, "events"), None);
}
