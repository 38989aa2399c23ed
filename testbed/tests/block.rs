//! The block server, end to end with the test subject: data written through it is in
//! the image and survives a restart of the testbed, and a completed write survives a
//! killed testbed; discards read back as zeros; bad requests get error statuses and do
//! not touch the image outside the allowed range.

mod common;

use std::os::fd::AsRawFd;
use std::path::Path;

use common::{log_lines, pattern, run_subject, show, stat, temp};

fn image(name: &str, sectors: u64, fill: impl Fn(usize) -> u8) -> std::path::PathBuf {
    let path = temp(name);
    let bytes: Vec<u8> = (0..(sectors * 512) as usize).map(fill).collect();
    std::fs::write(&path, bytes).unwrap();
    path
}

fn disk_arg(path: &Path) -> String {
    format!("storage={}", path.display())
}

fn expect_pattern(bytes: &[u8], first: u64, count: u64, seed: u64) {
    for s in 0..count {
        for i in 0..512 {
            let at = ((first + s) * 512) as usize + i;
            assert_eq!(
                bytes[at],
                pattern(seed, first + s, i),
                "sector {} byte {i}",
                first + s
            );
        }
    }
}

#[test]
fn data_written_through_the_server_survives_a_restart() {
    let img = image("persist.img", 4096, |_| 0);
    let disk = disk_arg(&img);
    let out = run_subject(
        "blockstore",
        &["--disk", &disk],
        &["block-write", "1000", "300", "42"],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(log_lines(&out.stdout, "blockstore")[0].starts_with("wrote 300 sectors at 1000"));
    // The bytes are in the image file, at sector 1000 (the device offset is a sector).
    let bytes = std::fs::read(&img).unwrap();
    expect_pattern(&bytes, 1000, 300, 42);
    assert!(bytes[..1000 * 512].iter().all(|b| *b == 0));
    assert!(bytes[1300 * 512..].iter().all(|b| *b == 0));
    // A new testbed reads them back through the server.
    let out = run_subject(
        "blockstore",
        &["--disk", &disk],
        &["block-verify", "1000", "300", "42"],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        log_lines(&out.stdout, "blockstore"),
        ["verified 300 sectors at 1000"]
    );
    // And the check can fail: another seed does not match.
    let out = run_subject(
        "blockstore",
        &["--disk", &disk],
        &["block-verify", "1000", "300", "43"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(
        log_lines(&out.stdout, "blockstore"),
        ["mismatch at sector 1000"]
    );
}

#[test]
fn completed_writes_survive_a_killed_testbed() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let img = image("crash.img", 4096, |_| 0xcc);
    let mut testbed = common::testbed()
        .arg("run")
        .arg("--exec")
        .arg(common::subject())
        .arg(common::example("blockstore"))
        .args(["--timeout", "60", "--disk", &disk_arg(&img)])
        .args(["--", "block-write-hang", "2000", "400", "9"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut log = Vec::new();
    for line in BufReader::new(testbed.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.contains("completed 200 sectors at 2200");
        log.push(line);
        if done {
            // The subject saw every write answered: the testbed dies without warning
            // (and its subject with it, PR_SET_PDEATHSIG).
            testbed.kill().unwrap();
            break;
        }
    }
    let status = testbed.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("synced 200 sectors at 2000, status 0")),
        "{log:#?}"
    );
    // Synced or only completed, every write is in the image; nothing else changed.
    let bytes = std::fs::read(&img).unwrap();
    expect_pattern(&bytes, 2000, 400, 9);
    assert!(bytes[..2000 * 512].iter().all(|b| *b == 0xcc));
    assert!(bytes[2400 * 512..].iter().all(|b| *b == 0xcc));
}

#[test]
fn writes_larger_than_a_request_are_split_and_land_in_place() {
    // 9000 sectors > Max_Blocks_Count (8192): the client sends two requests.
    let img = image("large.img", 10_000, |_| 0xaa);
    let disk = disk_arg(&img);
    let out = run_subject(
        "blockstore",
        &["--disk", &disk, "--stats"],
        &["block-write", "500", "9000", "5"],
    );
    assert!(out.status.success(), "{}", show(&out));
    let bytes = std::fs::read(&img).unwrap();
    expect_pattern(&bytes, 500, 9000, 5);
    assert!(bytes[..500 * 512].iter().all(|b| *b == 0xaa));
    assert!(bytes[9500 * 512..].iter().all(|b| *b == 0xaa));
    // Reset, Media_Blocks, Block_Length, Max_Blocks_Count, two writes, Sync.
    assert_eq!(stat(&out.stderr, "requests"), Some(7), "{}", show(&out));
}

#[test]
fn reads_the_server_splits_between_two_threads_come_back_in_place() {
    // 9000 sectors from sector 300 (not page-aligned on the image): a 4 MiB read, which
    // the server reads in two halves on two threads (at least SPLIT_MIN), then the rest.
    const { assert!(4 << 20 >= muen_testbed::peers::block::SPLIT_MIN) };
    let (first, count, seed) = (300u64, 9000u64, 9);
    let img = image("split-read.img", 10_000, |at| {
        let sector = at as u64 / 512;
        if (first..first + count).contains(&sector) {
            pattern(seed, sector, at % 512)
        } else {
            0xaa
        }
    });
    let out = run_subject(
        "blockstore",
        &["--disk", &disk_arg(&img), "--stats"],
        &["block-verify", "300", "9000", "9"],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("verified 9000 sectors at 300"),
        "{}",
        show(&out)
    );
    // Reset, Media_Blocks, Block_Length, Max_Blocks_Count, two reads.
    assert_eq!(stat(&out.stderr, "requests"), Some(6), "{}", show(&out));
}

#[test]
fn discarded_blocks_read_back_as_zeros() {
    let img = image("discard.img", 2048, |i| (i % 251) as u8 + 1);
    let disk = disk_arg(&img);
    let out = run_subject(
        "blockstore",
        &["--disk", &disk],
        &["block-discard", "100", "16"],
    );
    assert!(out.status.success(), "{}", show(&out));
    let bytes = std::fs::read(&img).unwrap();
    assert!(bytes[100 * 512..116 * 512].iter().all(|b| *b == 0));
    for (i, b) in bytes.iter().enumerate() {
        if !(100 * 512..116 * 512).contains(&i) {
            assert_eq!(*b, (i % 251) as u8 + 1, "byte {i}");
        }
    }
    assert_eq!(bytes.len(), 2048 * 512);
}

#[test]
fn bad_requests_get_errors_and_leave_the_image_alone() {
    // 2048 sectors; the subject's one valid write covers sectors 1024..1032.
    let fill = |i: usize| (i.wrapping_mul(7) ^ (i >> 9)) as u8;
    let img = image("bad.img", 2048, fill);
    let before = std::fs::read(&img).unwrap();
    let out = run_subject(
        "blockstore",
        &["--disk", &disk_arg(&img), "--stats"],
        &["block-bad"],
    );
    assert!(out.status.success(), "{}", show(&out));
    let lines = log_lines(&out.stdout, "blockstore");
    assert!(
        !lines.iter().any(|l| l.starts_with("UNEXPECTED")),
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "bad requests: all answered as expected"
    );
    for expected in [
        "unknown kind: status 1",
        "crossing the end: status 1",
        "buffer range overflow: status 1",
        "byte offset overflow: status 1",
        "get smart: status 3",
        "max requests: status 1020",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "missing `{expected}` in {lines:#?}"
        );
    }
    // 16 invalid I/O or device requests refused.
    assert_eq!(stat(&out.stderr, "refused"), Some(16), "{}", show(&out));
    let after = std::fs::read(&img).unwrap();
    assert_eq!(after.len(), before.len(), "the image changed size");
    let allowed = 1024 * 512..1032 * 512;
    assert_eq!(
        after[..allowed.start],
        before[..allowed.start],
        "bytes before the allowed range changed"
    );
    assert_eq!(
        after[allowed.end..],
        before[allowed.end..],
        "bytes after the allowed range changed"
    );
    expect_pattern(&after, 1024, 8, 7);
}

#[test]
fn image_problems_are_reported_before_the_subject_runs() {
    let odd = temp("odd.img");
    std::fs::write(&odd, vec![0u8; 1000]).unwrap();
    let out = run_subject("blockstore", &["--disk", &disk_arg(&odd)], &["log"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("size (1000 bytes) is not a multiple of 512")
    );
    assert!(out.stdout.is_empty());

    let missing = temp("missing.img");
    let out = run_subject("blockstore", &["--disk", &disk_arg(&missing)], &["log"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("--disk {}: ", disk_arg(&missing)))
    );

    // An image another testbed serves is refused.
    let busy = image("busy.img", 16, |_| 0);
    let file = std::fs::File::open(&busy).unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
    let out = run_subject("blockstore", &["--disk", &disk_arg(&busy)], &["log"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the image is in use"));
}

#[test]
fn a_device_without_an_image_has_no_blocks() {
    let out = run_subject("blockstore", &[], &["block-write", "0", "1", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("block device `storage` has no --disk; it has 0 blocks"));
    assert_eq!(
        log_lines(&out.stdout, "blockstore"),
        ["write at sector 0: status 1"]
    );
}
