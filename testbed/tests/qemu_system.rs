//! Subjects of a Muen system made by Muen's own tool chain, run as the system
//! configures them, in QEMU (`muen-testbed run --qemu --system POLICY_B --subject NAME
//! APP ...`): each subject's real image in a guest of its own.
//!
//! The system (`common::system`, once per test binary) holds the examples as
//! `policy-gen --elf` describes them, so policy B maps their images, and the pipeline
//! also hashes the files (`--files`): the tests with mugensinfo's pages use the hashed
//! policy and its pages. The examples' tests through `--system`, with the testbed's
//! page and with mugensinfo's: `echo` in a private network namespace (`netns_` tests,
//! root only: ping, curl, ab), `blockstore` booted three times by its policy's reset;
//! and two guests side by side. The guestbook (web and vault, two guests) with TCG:
//! POST and GET with curl, vault's guest reset by SIGUSR1, the entries still there
//! (`netns_qemu_tcg_`: root, no KVM needed).
//!
//! One hosted run on the same system shows that a hosted subject runs on a policy that
//! maps its image too (the image regions mapped, zeroed, for the page's sake).
//!
//! The other QEMU tests need a usable `/dev/kvm` (`qemu_kvm` in their names) and fail
//! saying so without one; `scripts/test.sh` skips them visibly there.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use muen_spec::Generation;

use common::apps::{
    counter, echo_from, guestbook_entries_survive_a_reset_of_vault, has, in_ns, new_image,
    status_page, text, Mode, Source, SUBJECT_IP,
};
use common::system::{Specs, System, APPS};
use common::{log_lines, require_kvm, require_root, show, stat, testbed};

const MODE: Mode = Mode::Qemu("kvm");

/// The system with the examples' release images (built first).
fn muen() -> &'static System {
    for app in APPS {
        MODE.build(app);
    }
    common::system::system(Generation::V2026_04, Specs::Elf(MODE.images()))
}

/// Policy B and mugensinfo's pages: the unhashed pair, or the hashed one.
fn pages(hashed: bool) -> (PathBuf, PathBuf) {
    let m = muen();
    if hashed {
        (m.hashed_policy_b(), m.hashed_sinfo())
    } else {
        (m.policy_b(), m.sinfo())
    }
}

fn echo_answers_ping_curl_and_ab(source: Source) {
    let (ns, run) = echo_from(MODE, source, &[], Duration::from_secs(120));
    let out = in_ns(
        &ns,
        "ping",
        &["-c", "20", "-i", "0.05", "-W", "5", SUBJECT_IP],
    );
    assert!(
        text(&out).contains("20 packets transmitted, 20 received"),
        "{}",
        show(&out)
    );
    let page = status_page(&ns, "20");
    assert!(page.starts_with("subject: echo\n"), "{page}");
    assert_eq!(counter(&page, "http requests"), 1, "{page}");
    let out = in_ns(
        &ns,
        "ab",
        &["-q", "-l", "-n", "200", "-c", "4", "http://10.0.0.2/"],
    );
    let report = text(&out);
    assert!(out.status.success(), "{}", show(&out));
    assert!(report.contains("Complete requests:      200"), "{report}");
    assert!(report.contains("Failed requests:        0"), "{report}");
    run.stop_cleanly();
}

#[test]
fn netns_qemu_kvm_system_echo_answers_ping_curl_and_ab() {
    require_root("netns_qemu_kvm_system_echo_answers_ping_curl_and_ab");
    require_kvm("netns_qemu_kvm_system_echo_answers_ping_curl_and_ab");
    let (policy, _) = pages(false);
    echo_answers_ping_curl_and_ab(Source::System {
        policy: &policy,
        sinfo: None,
    });
}

#[test]
fn netns_qemu_kvm_system_echo_on_mugensinfos_hashed_page_answers_ping_curl_and_ab() {
    let name = "netns_qemu_kvm_system_echo_on_mugensinfos_hashed_page_answers_ping_curl_and_ab";
    require_root(name);
    require_kvm(name);
    let (policy, sinfo) = pages(true);
    echo_answers_ping_curl_and_ab(Source::System {
        policy: &policy,
        sinfo: Some(&sinfo),
    });
}

#[test]
fn netns_system_hosted_echo_on_a_policy_with_images_and_mugensinfos_hashed_page() {
    require_root("netns_system_hosted_echo_on_a_policy_with_images_and_mugensinfos_hashed_page");
    let (policy, sinfo) = pages(true);
    let source = Source::System {
        policy: &policy,
        sinfo: Some(&sinfo),
    };
    let (ns, run) = echo_from(Mode::Hosted, source, &[], Duration::from_secs(60));
    let out = in_ns(
        &ns,
        "ping",
        &["-c", "5", "-i", "0.05", "-W", "2", SUBJECT_IP],
    );
    assert!(
        text(&out).contains("5 packets transmitted, 5 received"),
        "{}",
        show(&out)
    );
    assert!(status_page(&ns, "10").starts_with("subject: echo\n"));
    run.stop_cleanly();
}

fn blockstore_boots_three_times(hashed_page: Option<bool>, image: &str) {
    let (policy, sinfo) = pages(hashed_page.unwrap_or(false));
    let source = Source::System {
        policy: &policy,
        sinfo: hashed_page.map(|_| sinfo.as_path()),
    };
    let image = new_image(image);
    let disk = format!("storage={}", image.display());
    let out = MODE
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
                "240",
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
    assert_eq!(stat(&out.stderr, "restarts"), Some(2), "{}", show(&out));
}

#[test]
fn qemu_kvm_system_blockstore_boots_three_times_as_its_policy_restarts_it() {
    require_kvm("qemu_kvm_system_blockstore_boots_three_times_as_its_policy_restarts_it");
    blockstore_boots_three_times(None, "qemu-system-boots.img");
}

#[test]
fn qemu_kvm_system_blockstore_on_mugensinfos_page_boots_three_times() {
    require_kvm("qemu_kvm_system_blockstore_on_mugensinfos_page_boots_three_times");
    blockstore_boots_three_times(Some(false), "qemu-system-boots-page.img");
}

#[test]
fn qemu_kvm_guests_run_side_by_side_with_one_log() {
    require_kvm("qemu_kvm_guests_run_side_by_side_with_one_log");
    let (policy, sinfo) = pages(true);
    let (hello, echo) = (common::example("hello"), common::example("echo"));
    let out = testbed()
        .env("CARGO_TARGET_DIR", MODE.target_dir())
        .env("CARGO_NET_OFFLINE", "true")
        .args(["run", "--qemu", "--release", "--accel", "kvm", "--system"])
        .arg(&policy)
        .arg("--sinfo")
        .arg(&sinfo)
        .args(["--subject", "echo"])
        .arg(&echo)
        .args(["--subject", "hello"])
        .arg(&hello)
        .args(["--restarts", "3", "--timeout", "240", "--stats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("hello%INFO hello from hello").count(),
        4,
        "{}",
        show(&out)
    );
    let hello_lines = log_lines(&out.stdout, "hello");
    assert_eq!(
        hello_lines
            .iter()
            .filter(|l| l.contains("INFO wall clock "))
            .count(),
        4,
        "{hello_lines:#?}"
    );
    // The image regions the policy maps are in the page mugensinfo wrote.
    assert!(
        hello_lines
            .iter()
            .any(|l| l.contains("INFO memory text 0x200000 ") && l.ends_with(" subject_binary")),
        "{hello_lines:#?}"
    );
    assert_eq!(stat(&out.stderr, "restarts"), Some(3), "{}", show(&out));
}

/// The guestbook (web and vault, two guests) with TCG: the entries survive a reset of
/// vault's guest (SIGUSR1), on the hashed policy with mugensinfo's pages.
#[test]
fn netns_qemu_tcg_system_guestbook_entries_survive_a_reset_of_vault() {
    require_root("netns_qemu_tcg_system_guestbook_entries_survive_a_reset_of_vault");
    let (policy, sinfo) = pages(true);
    guestbook_entries_survive_a_reset_of_vault(
        Mode::Qemu("tcg"),
        (&policy, Some(&sinfo)),
        "qemu-guestbook.img",
        Duration::from_secs(120),
    );
}
