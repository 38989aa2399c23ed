//! Subjects of a Muen system made by Muen's own tool chain, run as the system
//! configures them (`muen-testbed run --system POLICY_B --subject NAME APP ...`),
//! hosted.
//!
//! The system is `../shared/muen/pipeline.sh` on Muen's demo system with the five
//! examples added (`common::system`, once per test binary): policy B, as `mucfgalloc`
//! writes it, and `mugensinfo`'s pages.
//!
//! - The view the testbed builds from policy B gives every subject without devices
//!   the page mugensinfo wrote, byte for byte, for both tool generations.
//! - The examples' own tests through `--system`, with the testbed's page and with
//!   mugensinfo's: `echo` in a private network namespace (`netns_` tests, root only:
//!   ping, a thousand UDP datagrams, curl, ab), `blockstore` booted three times by
//!   its policy's reset.
//! - The guestbook (`netns_` tests): `web` on a TAP and `vault` on a disk, two
//!   subjects on the channel pair their policy wires; an entry posted and read back
//!   with curl, vault reset (SIGUSR1, `--reset-on-sigusr1`) and the entry still
//!   there. And a compromised `web` (vault-forger) whose forged requests vault refuses.
//! - Several subjects at once: `echo` and the test subject as `echo_peer` over the
//!   channels the policy gives them; `hello` restarted by its policy beside `echo`,
//!   one log stream.
//! - Bad input: refused with status 2 before anything runs.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use muen_sinfo::Version;
use muen_spec::system;
use muen_spec::Generation;

use common::apps::{
    counter, echo_from, guestbook_entries_survive_a_reset_of_vault, has, in_ns, new_image,
    status_page, text, udp_echo_a_thousand_datagrams, Mode, Source, SUBJECT_IP,
};
use common::system::{Specs, System};
use common::{log_lines, require_root, show, stat, subject, testbed};

/// The system the tests run: 2026-04 tools, the examples without images.
fn muen() -> &'static System {
    common::system::system(Generation::V2026_04, Specs::WithoutImage)
}

#[test]
fn the_testbeds_pages_from_policy_b_are_mugensinfos() {
    for generation in Generation::ALL {
        let made = common::system::system(generation, Specs::WithoutImage);
        let policy = made.policy_b();
        let sys = system::load(&policy).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sys.generation, generation);
        let mut compared = Vec::new();
        for (i, s) in sys.subjects.iter().enumerate() {
            // Subjects with PCI devices have no view (the testbed runs none of them).
            let Ok(view) = sys.view(i) else {
                assert!(!s.devices.is_empty(), "subject {}", s.name);
                continue;
            };
            let ours = muen_testbed::sinfo::page(&view, sys.tsc, Version::V4).unwrap();
            let file = made.sinfo().join(format!("{}_sinfo", s.name));
            let theirs = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(
                ours == theirs,
                "{generation}: subject {}: the testbed's page differs from {}:\n{}",
                s.name,
                file.display(),
                muen_testbed::sinfo::differences(&ours, &theirs).join("\n")
            );
            compared.push(s.name.as_str());
        }
        for app in [
            "hello",
            "echo",
            "echo_peer",
            "blockstore",
            "blockstore_peer",
            "tau0",
        ] {
            assert!(compared.contains(&app), "{generation}: {compared:?}");
        }
        eprintln!(
            "{generation}: {} pages byte for byte: {compared:?}",
            compared.len()
        );
    }
}

/// The echo tests of `examples.rs` on one run of echo from `source`.
fn echo_answers_ping_udp_curl_and_ab(source: Source) {
    let (ns, run) = echo_from(Mode::Hosted, source, &["--stats"], Duration::from_secs(60));
    let out = in_ns(
        &ns,
        "ping",
        &["-c", "20", "-i", "0.05", "-W", "2", SUBJECT_IP],
    );
    assert!(
        text(&out).contains("20 packets transmitted, 20 received"),
        "{}",
        show(&out)
    );
    assert_eq!(udp_echo_a_thousand_datagrams(&ns), (1, 1472));
    let page = status_page(&ns, "10");
    assert!(page.starts_with("subject: echo\n"), "{page}");
    assert_eq!(counter(&page, "udp echoed"), 1000, "{page}");
    assert_eq!(counter(&page, "http requests"), 1, "{page}");
    let out = in_ns(
        &ns,
        "ab",
        &["-q", "-l", "-n", "500", "-c", "8", "http://10.0.0.2/"],
    );
    let report = text(&out);
    assert!(out.status.success(), "{}", show(&out));
    assert!(report.contains("Complete requests:      500"), "{report}");
    assert!(report.contains("Failed requests:        0"), "{report}");
    assert_eq!(counter(&status_page(&ns, "10"), "http requests"), 502);
    let stderr = run.stop_cleanly();
    assert_eq!(stat(stderr.as_bytes(), "bad_messages"), Some(0), "{stderr}");
}

#[test]
fn netns_system_echo_answers_ping_udp_curl_and_ab() {
    require_root("netns_system_echo_answers_ping_udp_curl_and_ab");
    let policy = muen().policy_b();
    echo_answers_ping_udp_curl_and_ab(Source::System {
        policy: &policy,
        sinfo: None,
    });
}

#[test]
fn netns_system_echo_on_mugensinfos_page_answers_ping_udp_curl_and_ab() {
    require_root("netns_system_echo_on_mugensinfos_page_answers_ping_udp_curl_and_ab");
    let (policy, sinfo) = (muen().policy_b(), muen().sinfo());
    echo_answers_ping_udp_curl_and_ab(Source::System {
        policy: &policy,
        sinfo: Some(&sinfo),
    });
}

/// `blockstore` from `source` on a new image, restarted twice by its policy (its exit
/// event resets it): one run, three boots.
fn blockstore_boots_three_times(mode: Mode, source: Source, image: &str, timeout: &str) {
    let image = new_image(image);
    let disk = format!("storage={}", image.display());
    let out = mode
        .command(
            None,
            "blockstore",
            source,
            &[
                "--disk",
                &disk,
                "--restarts",
                "2",
                "--timeout",
                timeout,
                "--stats",
            ],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let lines = log_lines(&out.stdout, "blockstore");
    for n in 1..=3 {
        assert!(has(&lines, &format!("boot count: {n}")), "{lines:#?}");
        assert!(
            has(&lines, &format!("records: {} verified", n - 1)),
            "{lines:#?}"
        );
        assert!(has(&lines, &format!("appended record {n}")), "{lines:#?}");
    }
    // Each boot starts a new log epoch (dbgserver's `%`).
    let epochs = String::from_utf8_lossy(&out.stdout)
        .matches("blockstore%")
        .count();
    assert_eq!(epochs, 3, "{}", show(&out));
    assert_eq!(stat(&out.stderr, "restarts"), Some(2), "{}", show(&out));
    let bytes = std::fs::read(&image).unwrap();
    assert_eq!(&bytes[..8], b"MUENBLKS");
}

#[test]
fn system_blockstore_boots_three_times_as_its_policy_restarts_it() {
    let policy = muen().policy_b();
    let source = Source::System {
        policy: &policy,
        sinfo: None,
    };
    blockstore_boots_three_times(Mode::Hosted, source, "system-three-boots.img", "120");
}

#[test]
fn system_blockstore_on_mugensinfos_page_boots_three_times() {
    let (policy, sinfo) = (muen().policy_b(), muen().sinfo());
    let source = Source::System {
        policy: &policy,
        sinfo: Some(&sinfo),
    };
    blockstore_boots_three_times(Mode::Hosted, source, "system-three-boots-page.img", "120");
}

#[test]
fn netns_system_guestbook_entries_survive_a_reset_of_vault() {
    require_root("netns_system_guestbook_entries_survive_a_reset_of_vault");
    let policy = muen().policy_b();
    guestbook_entries_survive_a_reset_of_vault(
        Mode::Hosted,
        (&policy, None),
        "guestbook.img",
        Duration::from_secs(60),
    );
}

#[test]
fn netns_system_guestbook_on_mugensinfos_pages_entries_survive_a_reset_of_vault() {
    require_root("netns_system_guestbook_on_mugensinfos_pages_entries_survive_a_reset_of_vault");
    let (policy, sinfo) = (muen().policy_b(), muen().sinfo());
    guestbook_entries_survive_a_reset_of_vault(
        Mode::Hosted,
        (&policy, Some(&sinfo)),
        "guestbook-page.img",
        Duration::from_secs(60),
    );
}

/// `muen-testbed run --system POLICY ARGS`.
fn run_system(policy: &Path, args: &[&str]) -> Output {
    testbed()
        .env("CARGO_TARGET_DIR", Mode::Hosted.target_dir())
        .env("CARGO_NET_OFFLINE", "true")
        .arg("run")
        .arg("--system")
        .arg(policy)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn two_subjects_talk_over_the_channels_their_policy_shares() {
    // echo_peer, the peer the pipeline added for echo's device, is here the test
    // subject: it writes frames into `to_service0_in` (echo's `service0|in`), its event
    // becomes echo's vector; echo answers in `service0|out`, its event becomes
    // echo_peer's vector `from_service0_out`.
    Mode::Hosted.build("echo");
    let echo = common::example("echo");
    let out = run_system(
        &muen().policy_b(),
        &[
            "--subject",
            "echo",
            echo.to_str().unwrap(),
            "--subject",
            "echo_peer",
            subject(),
            "--subject-arg",
            "echo_peer=net-peer",
            "--subject-arg",
            "echo_peer=to_service0_in",
            "--subject-arg",
            "echo_peer=from_service0_out",
            "--timeout",
            "60",
            "--stats",
        ],
    );
    // The run ends with echo_peer's end.
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("net-peer: ARP reply: 10.0.0.2 is at "),
        "{}",
        show(&out)
    );
    assert!(
        stderr
            .contains("net-peer: UDP echo of 42 bytes intact, read on vector `from_service0_out`"),
        "{}",
        show(&out)
    );
    let lines = log_lines(&out.stdout, "echo");
    assert!(has(&lines, "listening on 10.0.0.2/24"), "{lines:#?}");
    // No testbed peer took part: echo's device is a channel to another subject.
    assert!(!stderr.contains("net="), "{}", show(&out));
    assert!(
        stat(&out.stderr, "vectors").unwrap_or(0) >= 4,
        "{}",
        show(&out)
    );
}

#[test]
fn subjects_run_side_by_side_with_one_log_and_one_time() {
    // hello exits at once; its policy resets it (its exit event's target), so it
    // starts again, twenty times, beside echo. Its twenty-first end ends the run.
    Mode::Hosted.build("hello");
    Mode::Hosted.build("echo");
    let (hello, echo) = (common::example("hello"), common::example("echo"));
    let out = run_system(
        &muen().policy_b(),
        &[
            "--subject",
            "echo",
            echo.to_str().unwrap(),
            "--subject",
            "hello",
            hello.to_str().unwrap(),
            "--restarts",
            "20",
            "--timeout",
            "60",
            "--stats",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("hello%INFO hello from hello").count(),
        21,
        "{}",
        show(&out)
    );
    // The time subject's page, published once, serves both.
    let hello_lines = log_lines(&out.stdout, "hello");
    assert_eq!(
        hello_lines
            .iter()
            .filter(|l| l.contains("INFO wall clock "))
            .count(),
        21,
        "{hello_lines:#?}"
    );
    assert!(
        !hello_lines.iter().any(|l| l.contains("not published")),
        "{hello_lines:#?}"
    );
    assert!(
        has(&log_lines(&out.stdout, "echo"), "listening on 10.0.0.2/24"),
        "{}",
        show(&out)
    );
    // Every line is whole: a timestamp, a subject's name and a marker.
    for line in stdout.lines() {
        let rest = line.split_once("] ").map(|(_, r)| r).unwrap_or("");
        assert!(
            rest.starts_with("hello") || rest.starts_with("echo"),
            "line `{line}`"
        );
    }
    assert_eq!(stat(&out.stderr, "restarts"), Some(20), "{}", show(&out));
}

#[test]
fn system_vault_refuses_what_a_compromised_web_forges_and_its_book_is_unharmed() {
    // vault-forger (examples/vault/tests/fixture/forger.rs) plays subject `web`: it holds
    // web's channel ends and nothing else of worth (its `service0` has no TAP here),
    // and sends vault forged and random requests; it exits 0 only if vault refused
    // each and the book holds exactly its two valid entries.
    Mode::Hosted.build("vault");
    let forger = Mode::Hosted.images().join("vault-forger");
    let image = new_image("forged.img");
    let disk = format!("vault/storage={}", image.display());
    let vault = common::example("vault");
    let out = run_system(
        &muen().policy_b(),
        &[
            "--subject",
            "web",
            forger.to_str().unwrap(),
            "--subject",
            "vault",
            vault.to_str().unwrap(),
            "--disk",
            &disk,
            "--restarts",
            "0",
            "--timeout",
            "120",
            "--stats",
        ],
    );
    // The run ends with the forger's end, its exit code the run's.
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let web = log_lines(&out.stdout, "web");
    for line in [
        "INFO forger: appended entry 1",
        "INFO forger: 10 forged requests refused",
        "INFO forger: 512 of 512 random refused",
        "INFO forger: appended entry 2 of 2",
        "INFO forger: vault unharmed",
        "INFO exit 0",
    ] {
        assert!(has(&web, line), "{}", show(&out));
    }
    let vault = log_lines(&out.stdout, "vault");
    assert!(
        has(&vault, "WARN refused request 1: unknown kind 127"),
        "{vault:#?}"
    );
    assert!(has(&vault, "INFO ready"), "{vault:#?}");
    assert_eq!(stat(&out.stderr, "restarts"), Some(0), "{}", show(&out));
    assert_eq!(stat(&out.stderr, "bad_messages"), Some(0), "{}", show(&out));
}

/// Runs `--system POLICY ARGS`: must fail with status 2 before any subject ran, with
/// `message` on stderr.
fn refused(policy: &Path, args: &[&str], message: &str) {
    let out = run_system(policy, args);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(out.stdout.is_empty(), "a subject ran: {}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(message),
        "wanted `{message}` in: {}",
        show(&out)
    );
}

#[test]
fn system_bad_input_is_refused_before_anything_runs() {
    let made = muen();
    let policy = made.policy_b();
    let echo = common::example("echo");
    let hello = common::example("hello");
    let (echo, hello) = (echo.to_str().unwrap(), hello.to_str().unwrap());
    // Not format B: a component specification, the source policy, policy A.
    let spec = made.out.join("in/echo.xml");
    refused(
        &spec,
        &["--subject", "echo", echo],
        "this is a component specification",
    );
    let source = made.out.join("demo_system_vtd_plus.xml");
    refused(
        &source,
        &["--subject", "echo", echo],
        "this is a system policy in Muen's source format",
    );
    let format_a = made.out.join("demo_system_vtd_plus_a.xml");
    refused(&format_a, &["--subject", "echo", echo], "this is format A");
    // A subject the system does not have: the message lists those it has.
    refused(
        &policy,
        &["--subject", "nosuch", echo],
        "the system has no subject `nosuch`; its subjects: tau0, ",
    );
    // An app whose specification is not the subject's: the first difference.
    refused(
        &policy,
        &["--subject", "echo", hello],
        "the app's component `hello` does not match subject `echo` of",
    );
    refused(
        &policy,
        &["--subject", "echo", hello],
        "memory #0: the app has `ram` at 0x40000000, 0x1000000 bytes, writable, subject, \
         the policy `ram` at 0x40000000, 0x4000000 bytes",
    );
    // A channel wired with another size than the app's: policy B has one size per
    // physical channel, so both subjects mapping it see that size, and the app that
    // asks for another is refused naming the channel.
    let text = std::fs::read_to_string(&policy).unwrap();
    let region = "name=\"echo_service0_in\" physicalAddress=";
    let at = text.find(region).expect("echo_service0_in in policy B");
    let size = at + text[at..].find("size=\"").unwrap();
    let end = size + 6 + text[size + 6..].find('"').unwrap();
    let resized = format!("{}size=\"16#0008_0000#{}", &text[..size], &text[end..]);
    let resized_file = common::temp("resized_b.xml");
    std::fs::write(&resized_file, resized).unwrap();
    refused(
        &resized_file,
        &[
            "--subject",
            "echo",
            echo,
            "--subject",
            "echo_peer",
            subject(),
        ],
        "memory #1: the app has `service0|in` at 0x1000000000, 0x100000 bytes, read-only, \
         subject_channel, the policy `service0|in` at 0x1000000000, 0x80000 bytes",
    );
    // A channel whose other end nobody plays: named with its protocol.
    refused(
        &policy,
        &["--subject", "echo_peer", subject()],
        "subject `echo_peer`: channel `to_service0_in` (physical `echo_service0_in`) leads \
         to `echo` (as `service0|in`), which the testbed does not run, and the testbed has \
         no peer for it (protocol: muennet (by the name `service0|in`)); run it too",
    );
    // mugensinfo's page of another subject.
    let other = made.sinfo().join("echo_sinfo");
    refused(
        &policy,
        &[
            "--subject",
            "hello",
            hello,
            "--sinfo",
            other.to_str().unwrap(),
        ],
        "--sinfo: the page for subject `hello` does not agree with",
    );
    refused(
        &policy,
        &[
            "--subject",
            "hello",
            hello,
            "--sinfo",
            other.to_str().unwrap(),
        ],
        "name: the page has `echo`, the policy `hello`",
    );
    // SIGUSR1 can reset only a subject that runs.
    refused(
        &policy,
        &["--subject", "echo", echo, "--reset-on-sigusr1", "hello"],
        "--reset-on-sigusr1 hello: no --subject hello runs",
    );
    // Options that need --system, and subjects given twice.
    refused(
        &policy,
        &["--subject", "echo", echo, "--subject", "echo", echo],
        "subject `echo` is given twice",
    );
    let out = testbed()
        .args(["run", "--subject", "echo", echo])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let out = testbed()
        .args(["run", "--reset-on-sigusr1", "echo", echo])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--system"),
        "{}",
        show(&out)
    );
}
