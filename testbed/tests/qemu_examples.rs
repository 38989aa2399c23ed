//! The example apps end to end in QEMU mode (`docs/qemu.md`): the same clients as in
//! `examples.rs`, talking to the real `x86_64-unknown-none` images.
//!
//! - `echo` in a private network namespace per test (`netns_` tests: root only; every
//!   packet stays in the namespace, which is removed afterwards): ping, a thousand UDP
//!   datagrams, `curl` and `ab` under TCG; ping under KVM. Without a network, idle: it
//!   halts between ticks.
//! - `blockstore` on an image file: the boot counter across boots, under TCG, and
//!   across a KVM and a TCG boot of the same image.
//!
//! `qemu_kvm` tests need a usable `/dev/kvm` and fail saying so without one;
//! `scripts/test.sh` skips them visibly there. The images are built (release) in the
//! target directory `tests/qemu.rs` uses; the clients are `common::apps`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::apps::{
    boot, counter, echo_in_namespace, has, in_ns, new_image, status_page, text,
    udp_echo_a_thousand_datagrams, Mode, Running, SUBJECT_IP,
};
use common::netns::Netns;
use common::{require_kvm, require_root, show, stat, stat_f64};

/// `echo` in a namespace, booted in QEMU with `accel` (which takes longer than hosted
/// to be ready, under TCG on a loaded machine most of all).
fn echo(accel: &'static str) -> (Netns, Running) {
    echo_in_namespace(Mode::Qemu(accel), &[], Duration::from_secs(120))
}

fn echo_answers_twenty_pings(accel: &'static str) {
    let (ns, run) = echo(accel);
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
    run.stop_cleanly();
}

#[test]
fn netns_qemu_tcg_echo_answers_twenty_pings() {
    require_root("netns_qemu_tcg_echo_answers_twenty_pings");
    echo_answers_twenty_pings("tcg");
}

#[test]
fn netns_qemu_kvm_echo_answers_twenty_pings() {
    require_root("netns_qemu_kvm_echo_answers_twenty_pings");
    require_kvm("netns_qemu_kvm_echo_answers_twenty_pings");
    echo_answers_twenty_pings("kvm");
}

#[test]
fn netns_qemu_tcg_echo_returns_a_thousand_udp_datagrams_intact() {
    require_root("netns_qemu_tcg_echo_returns_a_thousand_udp_datagrams_intact");
    let (ns, run) = echo("tcg");
    assert_eq!(udp_echo_a_thousand_datagrams(&ns), (1, 1472));
    let page = status_page(&ns, "20");
    assert_eq!(counter(&page, "udp echoed"), 1000, "{page}");
    assert_eq!(counter(&page, "udp dropped"), 0, "{page}");
    run.stop_cleanly();
}

#[test]
fn netns_qemu_tcg_echo_serves_its_status_page_to_curl_and_ab() {
    require_root("netns_qemu_tcg_echo_serves_its_status_page_to_curl_and_ab");
    let (ns, run) = echo("tcg");
    let page = status_page(&ns, "20");
    assert!(page.starts_with("subject: echo\n"), "{page}");
    assert!(page.contains("address: 10.0.0.2/24\n"), "{page}");
    assert_eq!(counter(&page, "http requests"), 1, "{page}");
    for key in ["drops", "overruns", "frames lost", "channel errors"] {
        assert_eq!(counter(&page, key), 0, "{key}: {page}");
    }
    let out = in_ns(
        &ns,
        "ab",
        &["-q", "-l", "-n", "500", "-c", "8", "http://10.0.0.2/"],
    );
    let report = text(&out);
    assert!(out.status.success(), "{}", show(&out));
    assert!(report.contains("Complete requests:      500"), "{report}");
    assert!(report.contains("Failed requests:        0"), "{report}");
    assert_eq!(counter(&status_page(&ns, "20"), "http requests"), 502);
    run.stop_cleanly();
}

#[test]
fn qemu_tcg_an_idle_echo_sleeps_instead_of_spinning() {
    // No traffic for four seconds: the guest halts until its next deadline (at most a
    // second ahead) and nothing else wakes it. A spinning guest would keep QEMU at a
    // whole CPU (100 %), a periodic 1 kHz tick at about 7 %; QEMU's own start-up is
    // about 1 % of the four seconds.
    let out = Mode::Qemu("tcg")
        .run_command(None, "echo", &["--timeout", "4", "--stats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(124), "{}", show(&out));
    let cpu = stat_f64(&out.stderr, "subject_cpu_pct")
        .unwrap_or_else(|| panic!("no subject_cpu_pct in {}", show(&out)));
    assert!(
        cpu < 5.0,
        "QEMU used {cpu} % CPU for an idle guest:\n{}",
        show(&out)
    );
    let halts = stat(&out.stderr, "halts").unwrap_or(u64::MAX);
    assert!(
        halts <= 20,
        "{halts} halts in 4 s: something wakes the idle guest\n{}",
        show(&out)
    );
}

/// Boots `blockstore` on `image` once per accelerator in `accels`: each boot counts
/// itself, verifies the records of the boots before it and appends its own.
fn boots_in_turn(accels: &[&'static str], image: &Path) {
    for (n, accel) in accels.iter().enumerate() {
        let n = n + 1;
        let (code, lines, out) = boot(Mode::Qemu(accel), image, "120");
        assert_eq!(code, Some(0), "boot {n} ({accel}): {}", show(&out));
        assert!(has(&lines, &format!("boot count: {n}")), "{lines:#?}");
        assert!(
            has(&lines, &format!("records: {} verified", n - 1)),
            "{lines:#?}"
        );
        assert!(has(&lines, &format!("appended record {n}")), "{lines:#?}");
    }
    let bytes = std::fs::read(image).unwrap();
    assert_eq!(&bytes[..8], b"MUENBLKS");
}

#[test]
fn qemu_tcg_blockstore_counts_three_boots_and_verifies_every_record() {
    boots_in_turn(&["tcg", "tcg", "tcg"], &new_image("qemu-three-boots.img"));
}

#[test]
fn qemu_kvm_blockstore_counts_boots_under_kvm_and_tcg_alike() {
    require_kvm("qemu_kvm_blockstore_counts_boots_under_kvm_and_tcg_alike");
    boots_in_turn(&["kvm", "tcg"], &new_image("qemu-kvm-boots.img"));
}
