//! The example apps end to end, as a user runs them: `muen-testbed run examples/APP`
//! builds the app with cargo, generates its policy and runs it; real clients talk to
//! it.
//!
//! - `echo` in a private network namespace per test, bridged to a TAP interface with
//!   10.0.0.1/24: `ping`, a UDP client (std's `UdpSocket` on a thread that entered the
//!   namespace), `curl` and `ab`. Every packet stays inside the namespace, which is
//!   removed afterwards. These tests need root; their names start with `netns_` so
//!   that `scripts/test.sh` can skip them (visibly) when it does not run as root.
//! - `blockstore` on an image file: three boots, then damaged images.
//!
//! The apps are built in a target directory of their own (as in `app.rs`), so that
//! the cargo building them does not wait for the lock of the cargo running this test.

mod common;

use std::path::Path;
use std::time::Duration;

use common::apps::{
    boot, counter, echo_in_namespace, has, in_ns, new_image, status_page, text,
    udp_echo_a_thousand_datagrams, Mode, Running, SUBJECT_IP,
};
use common::netns::Netns;
use common::{require_root, show, stat, stat_f64};

/// `echo` in a namespace (`--stats`), hosted.
fn echo() -> (Netns, Running) {
    echo_in_namespace(Mode::Hosted, &["--stats"], Duration::from_secs(60))
}

#[test]
fn netns_echo_answers_twenty_pings() {
    require_root("netns_echo_answers_twenty_pings");
    let (ns, run) = echo();
    let out = in_ns(
        &ns,
        "ping",
        &["-c", "20", "-i", "0.05", "-W", "2", SUBJECT_IP],
    );
    let report = text(&out);
    assert!(
        report.contains("20 packets transmitted, 20 received"),
        "{}",
        show(&out)
    );
    assert!(out.status.success());
    run.stop_cleanly();
}

#[test]
fn netns_an_idle_echo_sleeps_instead_of_spinning() {
    require_root("netns_an_idle_echo_sleeps_instead_of_spinning");
    let (ns, run) = echo();
    // One exchange, then nothing for three seconds.
    let out = in_ns(&ns, "ping", &["-c", "1", "-W", "2", SUBJECT_IP]);
    assert!(out.status.success(), "{}", show(&out));
    std::thread::sleep(Duration::from_secs(3));
    let stderr = run.stop_cleanly();
    // A spinning subject would use a whole CPU (100 %); a sleeping one wakes at most
    // once a second while nothing happens.
    let cpu = stat_f64(stderr.as_bytes(), "subject_cpu_pct")
        .unwrap_or_else(|| panic!("no subject_cpu_pct in the stats:\n{stderr}"));
    assert!(cpu < 5.0, "the idle subject used {cpu} % CPU:\n{stderr}");
    let halts = stat(stderr.as_bytes(), "halts")
        .unwrap_or_else(|| panic!("no halts in the stats:\n{stderr}"));
    assert!(halts >= 3, "{stderr}");
}

#[test]
fn netns_echo_returns_a_thousand_udp_datagrams_intact() {
    require_root("netns_echo_returns_a_thousand_udp_datagrams_intact");
    let (ns, run) = echo();
    assert_eq!(udp_echo_a_thousand_datagrams(&ns), (1, 1472));
    let page = status_page(&ns, "10");
    assert_eq!(counter(&page, "udp echoed"), 1000, "{page}");
    assert_eq!(counter(&page, "udp dropped"), 0, "{page}");
    run.stop_cleanly();
}

/// The HTTP status code curl gets for `method url` from inside `ns`.
fn http_code(ns: &Netns, method: &str, url: &str) -> String {
    let out = in_ns(
        ns,
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
            "-X",
            method,
            url,
        ],
    );
    text(&out)
}

#[test]
fn netns_echo_serves_its_status_page_to_curl_and_ab() {
    require_root("netns_echo_serves_its_status_page_to_curl_and_ab");
    let (ns, run) = echo();
    let page = status_page(&ns, "10");
    assert!(page.starts_with("subject: echo\n"), "{page}");
    assert!(page.contains("address: 10.0.0.2/24\n"), "{page}");
    assert!(page.contains("uptime: "), "{page}");
    // ARP, the handshake and the request came in; the answers went out.
    assert!(counter(&page, "frames in") >= 3, "{page}");
    assert!(counter(&page, "bytes in") > 0, "{page}");
    assert!(counter(&page, "frames out") >= 2, "{page}");
    assert!(counter(&page, "bytes out") > 0, "{page}");
    for key in ["drops", "overruns", "frames lost", "channel errors"] {
        assert_eq!(counter(&page, key), 0, "{key}: {page}");
    }
    assert_eq!(counter(&page, "http requests"), 1, "{page}");

    // Many connections, 8 at a time (`-l`: the page's length changes as it counts).
    let out = in_ns(
        &ns,
        "ab",
        &["-q", "-l", "-n", "500", "-c", "8", "http://10.0.0.2/"],
    );
    let report = text(&out);
    assert!(out.status.success(), "{}", show(&out));
    assert!(report.contains("Complete requests:      500"), "{report}");
    assert!(report.contains("Failed requests:        0"), "{report}");

    let page = status_page(&ns, "10");
    assert_eq!(counter(&page, "http requests"), 502, "{page}");
    assert!(counter(&page, "frames in") > 2000, "{page}");

    // Other paths and methods.
    assert_eq!(http_code(&ns, "GET", "http://10.0.0.2/nope"), "404");
    assert_eq!(http_code(&ns, "DELETE", "http://10.0.0.2/"), "405");
    run.stop_cleanly();
}

/// One boot of `blockstore` on `image`, hosted: its exit code and log lines.
fn boot_hosted(image: &Path) -> (Option<i32>, Vec<String>, std::process::Output) {
    boot(Mode::Hosted, image, "60")
}

/// Byte offset of record slot `slot` in the image (docs: slot i is sector 2 + i).
fn slot_offset(slot: u64) -> u64 {
    (2 + slot) * 512
}

fn flip(image: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x40;
    f.write_all_at(&b, offset).unwrap();
}

#[test]
fn blockstore_counts_three_boots_and_verifies_every_record() {
    let image = new_image("three-boots.img");
    for n in 1..=3 {
        let (code, lines, out) = boot_hosted(&image);
        assert_eq!(code, Some(0), "boot {n}: {}", show(&out));
        assert!(
            has(&lines, &format!("boot count: {n}")),
            "boot {n}: {lines:#?}"
        );
        assert!(
            has(&lines, &format!("records: {} verified", n - 1)),
            "boot {n}: {lines:#?}"
        );
        assert!(has(&lines, "tail: clean"), "boot {n}: {lines:#?}");
        assert!(has(&lines, &format!("appended record {n}")), "{lines:#?}");
        if n == 1 {
            assert!(
                has(&lines, "blank disk: formatted, 2046 slots"),
                "{lines:#?}"
            );
        }
    }
    // The format as documented: the superblock magic, and record 3 in slot 2.
    let bytes = std::fs::read(&image).unwrap();
    assert_eq!(&bytes[..8], b"MUENBLKS");
    let slot2 = slot_offset(2) as usize;
    assert_eq!(&bytes[slot2..slot2 + 4], b"MREC");
    assert_eq!(bytes[slot2 + 8], 3, "sequence number 3");
}

#[test]
fn blockstore_reports_a_corrupted_tail_and_writes_after_the_last_valid_record() {
    let image = new_image("corrupted-tail.img");
    for _ in 0..3 {
        assert_eq!(boot_hosted(&image).0, Some(0));
    }
    // One bit of record 3's payload (slot 2) flips.
    flip(&image, slot_offset(2) + 30);
    let before = std::fs::read(&image).unwrap();
    let (code, lines, out) = boot_hosted(&image);
    assert_eq!(code, Some(0), "{}", show(&out));
    assert!(has(&lines, "records: 2 verified"), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("tail: slot 2 invalid: crc ")),
        "{lines:#?}"
    );
    assert!(has(&lines, "boot count: 4"), "{lines:#?}");
    assert!(has(&lines, "appended record 3"), "{lines:#?}");
    // Records 1 and 2 are untouched; slot 2 now holds boot 4's record.
    let after = std::fs::read(&image).unwrap();
    let (s0, s2) = (slot_offset(0) as usize, slot_offset(2) as usize);
    assert_eq!(before[s0..s2], after[s0..s2]);
    assert_eq!(after[s2 + 16], 4, "record 3 was written by boot 4");
    let (code, lines, _) = boot_hosted(&image);
    assert_eq!(code, Some(0));
    assert!(has(&lines, "records: 3 verified"), "{lines:#?}");
    assert!(has(&lines, "tail: clean"), "{lines:#?}");
    assert!(has(&lines, "boot count: 5"), "{lines:#?}");
}

#[test]
fn blockstore_leaves_a_log_with_a_hole_and_a_foreign_disk_alone() {
    // Record 1 of 3 damaged: records 2 and 3 are valid but beyond the tail.
    let image = new_image("hole.img");
    for _ in 0..3 {
        assert_eq!(boot_hosted(&image).0, Some(0));
    }
    flip(&image, slot_offset(0) + 1);
    let log = std::fs::read(&image).unwrap()[slot_offset(0) as usize..].to_vec();
    let (code, lines, out) = boot_hosted(&image);
    assert_eq!(code, Some(2), "{}", show(&out));
    assert!(has(&lines, "records: 0 verified"), "{lines:#?}");
    assert!(has(&lines, "2 valid records after the tail"), "{lines:#?}");
    assert!(
        has(&lines, "hole in the log: no record appended"),
        "{lines:#?}"
    );
    assert!(has(&lines, "boot count: 4"), "{lines:#?}");
    let after = std::fs::read(&image).unwrap();
    assert_eq!(
        after[slot_offset(0) as usize..],
        log[..],
        "the log was written"
    );

    // Not a blockstore disk: reported, and not written at all.
    let image = new_image("foreign.img");
    std::fs::write(&image, [0x7fu8, b'E', b'L', b'F'].repeat(256 * 1024)).unwrap();
    let before = std::fs::read(&image).unwrap();
    let (code, lines, out) = boot_hosted(&image);
    assert_eq!(code, Some(1), "{}", show(&out));
    assert!(
        lines.iter().any(|l| l.contains("not a blockstore disk")),
        "{lines:#?}"
    );
    assert_eq!(std::fs::read(&image).unwrap(), before);
}
