//! `muen-testbed sinfo build` writes the page the testbed gives a subject, and `sinfo
//! dump` reads it back.

mod common;

use std::path::Path;

use common::{example, show, temp, testbed};
use serde_json::{json, Value};

fn build(args: &[&str], out: &Path) -> std::process::Output {
    testbed()
        .args(["sinfo", "build"])
        .args(args)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap()
}

fn dump(page: &Path) -> Value {
    let out = testbed()
        .args(["sinfo", "dump", "--json"])
        .arg(page)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn build_then_dump_round_trips() {
    let page = temp("echo.sinfo");
    let out = build(
        &[example("echo").to_str().unwrap(), "--tsc-khz", "2100000"],
        &page,
    );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(std::fs::metadata(&page).unwrap().len(), 32720);
    let v = dump(&page);
    assert_eq!(
        (v["version"].clone(), v["name"].clone()),
        (json!(4), json!("echo"))
    );
    assert_eq!(v["tsc_khz"], 2_100_000);
    let summary: Vec<(String, String, Value)> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let value = r
                .get("address")
                .or_else(|| r.get("number"))
                .cloned()
                .unwrap();
            (
                r["name"].as_str().unwrap().into(),
                r["kind"].as_str().unwrap().into(),
                value,
            )
        })
        .collect();
    let expected = [
        ("ram", "memory", json!(0x4000_0000u64)),
        // The libraries' channels where mugensinfo puts them: libmutime's reader after
        // the last reader, libmudebuglog's writer after the last writer.
        ("service0|in", "memory", json!(0x10_0000_0000u64)),
        ("time_info", "memory", json!(0xf_ffd0_0000u64)),
        ("service0|out", "memory", json!(0x10_0010_1000u64)),
        ("debuglog", "memory", json!(0xf_fff0_0000u64)),
        ("sinfo", "memory", json!(0xe_0000_0000u64)),
        ("scheduling_info", "memory", json!(0xe_0000_8000u64)),
        ("timed_event", "memory", json!(0xe_0001_0000u64)),
        ("exit", "event", json!(0)),
        ("timer", "event", json!(1)),
        ("service0|out", "event", json!(2)),
        ("timer", "vector", json!(32)),
        ("service0|in", "vector", json!(33)),
    ]
    .map(|(n, k, v)| (n.to_string(), k.to_string(), v));
    assert_eq!(summary, expected);
    let resources = v["resources"].as_array().unwrap();
    assert_eq!(
        resources[4],
        json!({
            "name": "debuglog", "kind": "memory", "memory_kind": "subject_channel",
            "content": "fill", "writable": true, "executable": false,
            "pattern": 0, "address": 0xf_fff0_0000u64, "size": 0x2_0000, "hash": null
        })
    );
    assert_eq!(resources[5]["memory_kind"], "subject_info");
    assert_eq!(resources[5]["content"], "file");
    assert_eq!(resources[7]["writable"], true);
}

/// Format 4 (mugensinfo's, the default) and format 5 (Solo5's bindings) hold the same
/// resources; anything else is refused.
#[test]
fn the_format_is_4_unless_5_is_asked_for() {
    let echo = example("echo");
    let echo = echo.to_str().unwrap();
    let (v4, v5) = (temp("echo4.sinfo"), temp("echo5.sinfo"));
    let out = build(&[echo, "--tsc-khz", "1000", "--sinfo-format", "4"], &v4);
    assert!(out.status.success(), "{}", show(&out));
    let out = build(&[echo, "--tsc-khz", "1000", "--sinfo-format", "5"], &v5);
    assert!(out.status.success(), "{}", show(&out));
    let (d4, d5) = (dump(&v4), dump(&v5));
    assert_eq!(
        (d4["version"].clone(), d5["version"].clone()),
        (json!(4), json!(5))
    );
    assert_eq!(d4["resources"], d5["resources"]);
    let default = temp("echo-default.sinfo");
    assert!(build(&[echo, "--tsc-khz", "1000"], &default)
        .status
        .success());
    assert_eq!(
        std::fs::read(&default).unwrap(),
        std::fs::read(&v4).unwrap()
    );
    let never = temp("echo3.sinfo");
    let out = build(&[echo, "--sinfo-format", "3"], &never);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown sinfo format `3`; known: 4, 5"),
        "{}",
        show(&out)
    );
    assert!(!never.exists());
}

#[test]
fn the_app_and_its_policy_give_the_same_page() {
    let (a, b) = (temp("a.sinfo"), temp("b.sinfo"));
    let manifest = example("blockstore").join("app.toml");
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../policy-gen/tests/snapshots/2026-01/blockstore.xml");
    assert!(
        build(&[manifest.to_str().unwrap(), "--tsc-khz", "1000"], &a)
            .status
            .success()
    );
    assert!(build(
        &["--policy", snapshot.to_str().unwrap(), "--tsc-khz", "1000"],
        &b
    )
    .status
    .success());
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let v = dump(&a);
    let names: Vec<&str> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        &names[..6],
        [
            "ram",
            "storage|data",
            "storage|req",
            "debuglog",
            "storage|resp",
            "time_info"
        ]
    );
    // Without --tsc-khz the host's rate is measured.
    let c = temp("c.sinfo");
    assert!(build(&[manifest.to_str().unwrap()], &c).status.success());
    assert!(dump(&c)["tsc_khz"].as_u64().unwrap() > 100_000);
}

#[test]
fn build_errors_leave_no_file() {
    let page = temp("never.sinfo");
    let out = build(&["--policy", "/nonexistent/policy.xml"], &page);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("muen-testbed: /nonexistent/policy.xml: cannot read the policy: "));
    assert!(!page.exists());
    let out = build(&[], &page);
    assert_eq!(out.status.code(), Some(2));
    assert!(!page.exists());
    let out = build(&["/nonexistent"], &page);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent: not an app"));
    let out = build(
        &[example("echo").to_str().unwrap(), "--tsc-khz", "0"],
        &page,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!page.exists());
}
