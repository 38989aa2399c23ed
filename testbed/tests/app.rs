//! `muen-testbed run APP`: the testbed builds the app's package with cargo, finds the
//! executable in cargo's messages, generates the policy from `app.toml` and runs it.
//! The app is `tests/fixtures/hosted-app` (the test subject as a package of its own),
//! built in a target directory of its own so that it does not wait for the lock of the
//! cargo running this test.

mod common;

use std::path::{Path, PathBuf};

use common::{example, log_lines, show, testbed};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosted-app")
}

fn run_app(app: &Path, extra: &[&str]) -> std::process::Output {
    testbed()
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-target"),
        )
        .env("CARGO_NET_OFFLINE", "true")
        .arg("run")
        .arg(app)
        .args(["--timeout", "120"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn an_app_is_built_and_run() {
    // The directory form and the manifest form name the same app.
    let out = run_app(&fixture(), &["--", "log", "3"]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let lines = log_lines(&out.stdout, "fixture");
    assert_eq!(lines[0], "hello from the test subject", "{}", show(&out));
    assert_eq!(lines.len(), 3);
    let out = run_app(&fixture().join("app.toml"), &["--", "world"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(log_lines(&out.stdout, "fixture").contains(&"world ok".to_string()));
}

#[test]
fn apps_that_cannot_be_built_are_reported() {
    // A directory with an app.toml but no package.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("manifest-only");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(example("echo").join("app.toml"), dir.join("app.toml")).unwrap();
    let out = run_app(&dir, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Cargo.toml"),
        "{}",
        show(&out)
    );
    let out = run_app(Path::new("/nonexistent-app"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent-app: not an app"));
}

#[test]
fn the_hello_example_runs_on_the_runtime() {
    // examples/hello on muen-subject's hosted platform: built by the testbed, its log
    // printed, its exit code returned.
    let out = run_app(&example("hello"), &["--stats"]);
    assert!(out.status.success(), "{}", show(&out));
    let lines = log_lines(&out.stdout, "hello");
    assert!(
        lines.iter().any(|l| l.ends_with("hello from hello")),
        "{}",
        show(&out)
    );
    // It lists its resources from the sinfo page the testbed wrote.
    for resource in [
        "ram 0x40000000",
        "debuglog 0xffff00000",
        "timed_event 0xe00010000",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("memory {resource}"))),
            "no `{resource}` in {lines:#?}"
        );
    }
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exit_event=true"),
        "{}",
        show(&out)
    );
}
