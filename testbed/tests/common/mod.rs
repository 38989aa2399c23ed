//! Shared by the integration tests: running the testbed with its test subject,
//! private network namespaces, and the example apps end to end.

#![allow(dead_code)] // each test file uses a part

pub mod apps;
#[path = "../../../policy-gen/tests/common/muen_kit.rs"]
pub mod muen_kit;
pub mod netns;
pub mod system;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../../src/bin/testbed-subject/pattern.rs"]
mod pattern_file;
#[allow(unused_imports)] // used by the block tests
pub use pattern_file::pattern;

/// The testbed binary.
pub fn testbed() -> Command {
    Command::new(env!("CARGO_BIN_EXE_muen-testbed"))
}

/// The test subject binary.
pub fn subject() -> &'static str {
    env!("CARGO_BIN_EXE_testbed-subject")
}

/// An example app of the repository.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

/// A fresh path under cargo's temporary directory for integration tests.
pub fn temp(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("testbed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// `muen-testbed run --exec <subject> APP [extra] -- MODE ARGS...` with a timeout.
pub fn run_subject(app: &str, extra: &[&str], mode: &[&str]) -> Output {
    testbed()
        .arg("run")
        .arg("--exec")
        .arg(subject())
        .arg(example(app))
        .args(["--timeout", "60"])
        .args(extra)
        .arg("--")
        .args(mode)
        .output()
        .unwrap()
}

/// stdout and stderr of `out`, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The log text of every line of `stdout` (after `name` and the marker).
pub fn log_lines(stdout: &[u8], name: &str) -> Vec<String> {
    String::from_utf8_lossy(stdout)
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

/// Fails unless the test runs as root (network namespaces and TAP interfaces need it).
/// CI runs as root; `scripts/test.sh` skips these tests with a visible line otherwise.
pub fn require_root(test: &str) {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "{test} needs root (network namespaces and TAP interfaces); run it as root, or \
         run scripts/test.sh, which skips it visibly when not root"
    );
}

/// Fails unless KVM is usable (CI has it; `scripts/test.sh` skips the `qemu_kvm` tests
/// visibly where it is not).
pub fn require_kvm(test: &str) {
    if let Err(why) = muen_testbed::qemu::accel::kvm_usable(Path::new("/dev/kvm")) {
        panic!(
            "{test} needs a usable /dev/kvm ({why}); scripts/test.sh skips the qemu_kvm \
             tests with a visible line where there is none"
        );
    }
}

/// The `key=value` of `key` in the testbed's `--stats` lines, for a counter.
pub fn stat(stderr: &[u8], key: &str) -> Option<u64> {
    stat_value(stderr, key)
}

/// The `key=value` of `key` in the testbed's `--stats` lines, for a fraction (such as
/// `subject_cpu_pct`).
pub fn stat_f64(stderr: &[u8], key: &str) -> Option<f64> {
    stat_value(stderr, key)
}

fn stat_value<T: std::str::FromStr>(stderr: &[u8], key: &str) -> Option<T> {
    let text = String::from_utf8_lossy(stderr);
    text.lines()
        .filter(|l| l.starts_with("muen-testbed: stats:"))
        .flat_map(|l| l.split_whitespace())
        .find_map(|kv| {
            kv.strip_prefix(&format!("{key}="))
                .and_then(|v| v.parse().ok())
        })
}
