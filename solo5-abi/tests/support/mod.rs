//! Finding Solo5: its source tree (beside the repository) and its build (made by
//! `scripts/solo5-build.sh`). Tests that need them fail with a message naming what is
//! missing; they never skip.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The pinned Solo5 source tree: `$SOLO5_SRC`, or `../shared/solo5` beside the
/// repository (as `scripts/solo5-build.sh` finds it).
pub fn solo5_src() -> PathBuf {
    let src = match std::env::var_os("SOLO5_SRC") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("../shared/solo5"),
    };
    let header = src.join("include/solo5.h");
    assert!(
        header.is_file(),
        "the Solo5 source tree ../shared/solo5 is missing: no {} (the pinned tree must lie \
         beside the repository; set SOLO5_SRC to use another)",
        header.display()
    );
    src
}

/// What `scripts/solo5-build.sh` reports.
#[derive(Debug)]
pub struct Solo5Build {
    /// `tests/` of the built tree.
    pub tests: PathBuf,
    /// The built `solo5-elftool`.
    pub elftool: PathBuf,
    /// The built tree.
    pub src: PathBuf,
}

/// Builds Solo5 with `scripts/solo5-build.sh` (once per test binary; the script itself
/// rebuilds only when the source changed) and returns where the results are.
pub fn solo5_build() -> &'static Solo5Build {
    static BUILD: OnceLock<Solo5Build> = OnceLock::new();
    BUILD.get_or_init(|| {
        let src = solo5_src();
        let script = repo_root().join("scripts/solo5-build.sh");
        let out = Command::new("bash")
            .arg(&script)
            .env("SOLO5_SRC", &src)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}), so Solo5's test images are missing:\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let field = |key: &str| -> PathBuf {
            stdout
                .lines()
                .find_map(|line| line.strip_prefix(key).map(|v| PathBuf::from(v.trim())))
                .unwrap_or_else(|| {
                    panic!("{} printed no `{key}` line:\n{stdout}", script.display())
                })
        };
        Solo5Build {
            tests: field("solo5-tests "),
            elftool: field("solo5-elftool "),
            src: field("solo5-src "),
        }
    })
}

/// The built test image `tests/test_<name>/test_<name>.<target>`.
pub fn test_image(name: &str, target: &str) -> PathBuf {
    let path = solo5_build()
        .tests
        .join(format!("test_{name}/test_{name}.{target}"));
    assert!(
        path.is_file(),
        "{} is missing after scripts/solo5-build.sh",
        path.display()
    );
    path
}

/// Runs the built `solo5-elftool` with `args`; returns (success, stdout, stderr).
pub fn elftool(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let tool = &solo5_build().elftool;
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("solo5-abi")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `gcc` with `args`, failing with its output.
pub fn gcc(args: &[&std::ffi::OsStr]) {
    let out = Command::new("gcc")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run gcc (Debian: gcc): {e}"));
    assert!(
        out.status.success(),
        "gcc {:?} failed:\n{}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}
