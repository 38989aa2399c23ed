//! `muen-testbed run` with the test subject: log lines as Muen's debug server prints
//! them, the world a subject finds, exit codes, and faults (panic, crash, hang,
//! interruption) reported rather than hidden.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{example, log_lines, run_subject, show, stat, subject, testbed};

#[test]
fn a_log_subject_runs_and_its_lines_appear_as_dbgserver_prints_them() {
    let out = run_subject("hello", &[], &["log"]);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    // `[seconds] name`, then `%` (new epoch: the subject started) or `|`, then the text.
    for (line, (marker, text)) in lines.iter().zip([
        ('%', "hello from the test subject".to_string()),
        ('|', "0123456789".repeat(8)),
        ('|', "bye".to_string()),
    ]) {
        let (stamp, rest) = line.split_once("] ").unwrap();
        assert!(stamp.starts_with('[') && stamp.contains('.'), "{line}");
        assert_eq!(rest, format!("hello{marker}{text}"));
    }
    assert!(out.stderr.is_empty(), "{}", show(&out));
}

#[test]
fn the_exit_code_is_the_subjects() {
    let out = run_subject("hello", &["--stats"], &["log", "7"]);
    assert_eq!(out.status.code(), Some(7), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("subject `hello` exited with status 7"),
        "{stderr}"
    );
    assert_eq!(
        stat(&out.stderr, "exit_event"),
        None,
        "exit_event is a boolean"
    );
    assert!(stderr.contains("exit_event=true"), "{stderr}");
}

#[test]
fn the_subject_finds_the_world_muen_would_give_it() {
    // Every sinfo region mapped, the clock published, frames advancing, a timed event
    // that wakes the halted subject at its deadline (see the `world` mode).
    let out = run_subject("echo", &["--stats"], &["world"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        log_lines(&out.stdout, "echo").contains(&"world ok".to_string()),
        "{}",
        show(&out)
    );
    assert_eq!(stat(&out.stderr, "timed_events"), Some(1), "{}", show(&out));
    // The page is in format 4, as Muen's tools write it, unless 5 is asked for.
    assert!(log_lines(&out.stdout, "echo").contains(&"sinfo format 4".to_string()));
    let out = run_subject("echo", &["--sinfo-format", "5"], &["world"]);
    assert!(out.status.success(), "{}", show(&out));
    let lines = log_lines(&out.stdout, "echo");
    assert!(
        lines.contains(&"world ok".to_string()) && lines.contains(&"sinfo format 5".to_string()),
        "{}",
        show(&out)
    );
}

#[test]
fn a_panic_shows_its_message_and_fails() {
    let out = run_subject("hello", &[], &["panic"]);
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));
    let lines = log_lines(&out.stdout, "hello");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("panicked at ") && l.ends_with("deliberate panic: 42")),
        "{}",
        show(&out)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("exited with status 101"));
}

#[test]
fn a_crash_is_reported_with_its_signal() {
    let out = run_subject("hello", &[], &["segv"]);
    assert_eq!(
        out.status.code(),
        Some(128 + libc::SIGSEGV),
        "{}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("subject `hello` was killed by SIGSEGV"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_hanging_subject_is_stopped_at_the_timeout() {
    let started = Instant::now();
    let out = testbed()
        .args(["run", "--exec", subject()])
        .arg(example("hello"))
        .args(["--timeout", "1", "--", "hang"])
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(124), "{}", show(&out));
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(20),
        "{took:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("subject `hello` did not exit within 1 s; stopped it"),
        "{}",
        show(&out)
    );
    assert_eq!(log_lines(&out.stdout, "hello"), ["hanging"]);
}

#[test]
fn an_interrupted_testbed_stops_its_subject() {
    let child = testbed()
        .args(["run", "--exec", subject()])
        .arg(example("hello"))
        .args(["--timeout", "60", "--", "hang"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let subject_pid = (0..250)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            let c = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
            c.split_whitespace().next()?.parse::<i32>().ok()
        })
        .expect("the subject never started");
    // SAFETY: signals our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(128 + libc::SIGTERM),
        "{}",
        show(&out)
    );
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("interrupted by SIGTERM; stopped subject `hello`"));
    // The testbed collected the subject before it exited.
    assert!(!std::path::Path::new(&format!("/proc/{subject_pid}")).exists());
}

#[test]
fn an_idle_subject_sleeps_on_its_timed_event() {
    let started = Instant::now();
    let out = run_subject("hello", &["--stats"], &["idle", "1"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(log_lines(&out.stdout, "hello"), ["idle done"]);
    // It halted once and was woken by the timer, not by polling.
    assert_eq!(stat(&out.stderr, "halts"), Some(1), "{}", show(&out));
    assert_eq!(stat(&out.stderr, "timed_events"), Some(1), "{}", show(&out));
}

#[test]
fn a_given_policy_is_used() {
    let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../policy-gen/tests/snapshots/2026-01/hello.xml");
    let out = testbed()
        .args(["run", "--exec", subject(), "--policy"])
        .arg(&policy)
        .args(["--", "log"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(log_lines(&out.stdout, "hello").len(), 3);
}

#[test]
fn bad_command_lines_name_the_problem() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--tap", "nosuch=tap9"],
            "--tap nosuch=...: the subject has no network device `nosuch`",
        ),
        (
            &["--disk", "service0=/x"],
            "--disk service0=...: the subject has no block device `service0`",
        ),
        (
            &["--pcap", "service0=/nonexistent/dir/x.pcap"],
            "--pcap service0=/nonexistent/dir/x.pcap: ",
        ),
        (
            &["--timeout", "0"],
            "--timeout 0: not a positive number of seconds",
        ),
    ];
    for (args, message) in cases {
        let out = testbed()
            .args(["run", "--exec", subject()])
            .arg(example("echo"))
            .args(*args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("muen-testbed: ") && stderr.contains(message),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    // A format the testbed does not write: clap's usage error.
    let out = testbed()
        .args(["run", "--exec", subject(), "--sinfo-format", "3"])
        .arg(example("echo"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "invalid value '3' for '--sinfo-format <FORMAT>': unknown sinfo format `3`; known: 4, 5"
    ));
    let out = testbed()
        .args(["run", "--exec", subject()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give an APP or --policy FILE"));
    let out = testbed()
        .args(["run", "--exec", "/nonexistent/subject"])
        .arg(example("hello"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("starting /nonexistent/subject: "),
        "{}",
        show(&out)
    );
}

#[test]
fn bad_policies_name_file_line_and_problem() {
    let file = common::temp("bad-policy.xml");
    std::fs::write(
        &file,
        "<component name=\"x\">\n <depends><library ref=\"libmufoo\"/></depends>\n</component>\n",
    )
    .unwrap();
    let out = testbed()
        .args(["run", "--exec", subject(), "--policy"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "muen-testbed: {}:2:11: <library \"libmufoo\">: the testbed does not know library \
             `libmufoo` (it provides libmudebuglog and libmutime)",
            file.display()
        )
    );
}

#[test]
fn malformed_control_messages_are_ignored_with_one_warning() {
    let out = run_subject("hello", &["--stats"], &["bad-control"]);
    assert!(out.status.success(), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("malformed control message").count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("malformed control message [03, 28]"),
        "{stderr}"
    );
    assert_eq!(stat(&out.stderr, "bad_messages"), Some(3), "{stderr}");
    assert_eq!(
        log_lines(&out.stdout, "hello"),
        ["sent bad control messages"]
    );
}
