//! `muen-testbed sinfo dump` on Muen's three test pages, on a v5 page with every kind,
//! and on bad files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use muen_sinfo::{
    Builder, Content, Device, DeviceFlags, DeviceMemory, DevicePort, Memory, MemoryFlags,
    MemoryKind, PciBar, PciInfo, ResetMethod, ResourceData, Version,
};
use serde_json::{json, Value};

fn testdata(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/testdata/sinfo-v4")
        .join(file)
}

/// A fresh file under cargo's temporary directory for integration tests.
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sinfo_dump_{name}"));
    std::fs::write(&path, contents).unwrap();
    path
}

fn run(args: &[&str], file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_muen-testbed"))
        .args(args)
        .arg(file)
        .output()
        .unwrap()
}

fn dump_json(file: &Path) -> Value {
    let out = run(&["sinfo", "dump", "--json"], file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Keys of a JSON object, sorted.
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<_> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[test]
fn json_of_lnx_sinfo_has_every_resource() {
    let page = dump_json(&testdata("lnx_sinfo"));
    assert_eq!(keys(&page), ["name", "resources", "tsc_khz", "version"]);
    assert_eq!(page["version"], 4);
    assert_eq!(page["name"], "lnx");
    assert_eq!(page["tsc_khz"], 2_900_123);
    let resources = page["resources"].as_array().unwrap();
    let names: Vec<_> = resources
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "text",
            "zp",
            "initramfs",
            "sinfo",
            "acpi_rsdp",
            "keyboard",
            "console",
            "eth0",
            "eth0_mem1",
            "eth0_mem2",
            "wlan0",
            "channel_event_lnx_console",
            "channel_event_lnx_keyboard"
        ]
    );
    assert_eq!(
        resources[0],
        json!({
            "name": "text", "kind": "memory", "memory_kind": "subject_binary",
            "content": "uninitialized", "writable": false, "executable": true,
            "pattern": null, "address": 0x3000, "size": 0xd000, "hash": null
        })
    );
    assert_eq!(
        resources[4]["hash"],
        "e10e6c3b5f7e8eb8a5510b8562ed449100a856e02a31a27d30bf5e76efd91235"
    );
    assert_eq!(
        resources[5],
        json!({
            "name": "keyboard", "kind": "memory", "memory_kind": "subject_channel",
            "content": "fill", "writable": false, "executable": false,
            "pattern": 0x22, "address": 0xffff_e000u64, "size": 0x1000, "hash": null
        })
    );
    assert_eq!(
        resources[7],
        json!({
            "name": "eth0", "kind": "device", "sid": 0xc8, "irte_start": 40,
            "irq_start": 59, "ir_count": 2, "msi_capable": true
        })
    );
    assert_eq!(
        resources[8],
        json!({
            "name": "eth0_mem1", "kind": "device_memory", "address": 0xfea5_5000u64,
            "size": 0x2_0000, "writable": true, "executable": false
        })
    );
    assert_eq!(
        resources[11],
        json!({"name": "channel_event_lnx_console", "kind": "event", "number": 61})
    );
    assert_eq!(
        resources[12],
        json!({"name": "channel_event_lnx_keyboard", "kind": "vector", "number": 34})
    );
}

#[test]
fn json_of_the_serializer_pages() {
    let page = dump_json(&testdata("null_info"));
    assert_eq!(
        page,
        json!({"version": 4, "name": "", "tsc_khz": 1000, "resources": []})
    );
    let page = dump_json(&testdata("subject_info"));
    assert_eq!(
        page,
        json!({
            "version": 4, "name": "subject1", "tsc_khz": 2_893_000,
            "resources": [
                {"name": "Evt1", "kind": "event", "number": 12},
                {"name": "Vec1", "kind": "vector", "number": 13}
            ]
        })
    );
}

fn v5_page() -> Vec<u8> {
    let memory = Memory {
        kind: MemoryKind::SubjectSolo5BootInfo,
        content: Content::File,
        flags: MemoryFlags::WRITABLE | MemoryFlags::EXECUTABLE,
        pattern: None,
        address: 0x1000,
        size: 0x2000,
        hash: Some([0x11; 32]),
    };
    let device = Device {
        sid: 0x0100,
        irte_start: 7,
        irq_start: 40,
        ir_count: 1,
        flags: DeviceFlags::empty(),
        pci: Some(PciInfo {
            vendor_id: 0x8086,
            device_id: 0x10d3,
            class_code: 0x0200,
            reset_method: ResetMethod::AfFlr,
        }),
    };
    let region = DeviceMemory {
        flags: MemoryFlags::WRITABLE,
        address: 0xe000_0000,
        size: 0x2_0000,
        bar: Some(PciBar {
            sid: 0x0100,
            index: 0,
            io_mem_flags: 1,
            address: 0xf7c0_0000,
        }),
    };
    let ports = DevicePort {
        sid: 0x0100,
        bar_index: 2,
        address: 0xe000,
        size: 32,
    };
    Builder::new(Version::V5, "app", 3_000_000)
        .unwrap()
        .memory("boot", memory)
        .unwrap()
        .empty()
        .unwrap()
        .device("nic", device)
        .unwrap()
        .device_memory("nic_mem", region)
        .unwrap()
        .device_port("nic_io", ports)
        .unwrap()
        .resource("odd", ResourceData::Unknown(42))
        .unwrap()
        .build()
}

#[test]
fn json_of_a_v5_page_has_the_v5_fields() {
    let file = temp_file("v5", &v5_page());
    let page = dump_json(&file);
    assert_eq!(page["version"], 5);
    let resources = page["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 5, "the empty record is skipped");
    assert_eq!(resources[0]["memory_kind"], "subject_solo5_boot_info");
    assert_eq!(resources[0]["hash"], "11".repeat(32));
    assert_eq!(
        resources[1],
        json!({
            "name": "nic", "kind": "device", "sid": 0x100, "irte_start": 7,
            "irq_start": 40, "ir_count": 1, "msi_capable": false,
            "vendor_id": 0x8086, "device_id": 0x10d3, "class_code": 0x0200,
            "reset_method": "af_flr"
        })
    );
    assert_eq!(
        resources[2],
        json!({
            "name": "nic_mem", "kind": "device_memory", "address": 0xe000_0000u64,
            "size": 0x2_0000, "writable": true, "executable": false,
            "sid": 0x100, "bar_index": 0, "io_mem_flags": 1, "bar_address": 0xf7c0_0000u64
        })
    );
    assert_eq!(
        resources[3],
        json!({"name": "nic_io", "kind": "device_port", "sid": 0x100, "address": 0xe000, "size": 32})
    );
    assert_eq!(resources[4], json!({"name": "odd", "kind": "unknown"}));
}

#[test]
fn listing_shows_header_and_resources() {
    let out = run(&["sinfo", "dump"], &testdata("lnx_sinfo"));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines[0], "version    4");
    assert_eq!(lines[1], "name       lnx");
    assert_eq!(lines[2], "tsc_khz    2900123");
    assert_eq!(lines[3], "resources  13 (13 records, 0 empty)");
    let row = |name: &str| {
        *lines
            .iter()
            .find(|l| l.split_whitespace().nth(2) == Some(name))
            .unwrap_or_else(|| panic!("no row for {name} in\n{text}"))
    };
    assert_eq!(
        row("keyboard").split_whitespace().collect::<Vec<_>>(),
        [
            "5",
            "memory",
            "keyboard",
            "subject_channel",
            "0xffffe000",
            "+0x1000",
            "r--",
            "fill",
            "pattern",
            "0x22"
        ]
    );
    assert!(row("eth0").ends_with("sid 0x00c8 (00:19.0) irte 40 vectors 59+2 msi"));
    assert!(row("eth0_mem1").ends_with("0xfea55000 +0x20000 rw-"));
    assert!(row("channel_event_lnx_console").ends_with(" 61"));

    let out = run(&["sinfo", "dump"], &testdata("subject_info"));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("resources  2 (12 records, 10 empty)"));
    assert!(text.contains(" 10  event"));
}

/// Runs the dump on `file` in both modes and checks the failure contract.
fn assert_rejected(file: &Path, problem: &str) {
    for args in [&["sinfo", "dump"][..], &["sinfo", "dump", "--json"][..]] {
        let out = run(args, file);
        assert_eq!(out.status.code(), Some(2), "{args:?} {}", file.display());
        assert!(out.stdout.is_empty(), "no output on stdout");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.starts_with(&format!("muen-testbed: {}: ", file.display())),
            "{stderr}"
        );
        assert!(stderr.contains(problem), "{stderr:?} lacks {problem:?}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn bad_files_are_refused_with_status_2() {
    let lnx = std::fs::read(testdata("lnx_sinfo")).unwrap();

    assert_rejected(
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("no_such_file")
            .as_path(),
        "No such file",
    );
    assert_rejected(
        &temp_file("short", &lnx[..10]),
        "the data is 10 bytes long, shorter than the 80-byte header",
    );
    let mut bad = lnx.clone();
    bad[0] = b'M';
    assert_rejected(
        &temp_file("magic", &bad),
        "magic: expected 6d 75 69 6e 66 6f 00 (\"muinfo\\0\") and a version byte, found 4d 75",
    );
    let mut bad = lnx.clone();
    bad[7] = 6;
    assert_rejected(
        &temp_file("version", &bad),
        "magic: format version 6 is not supported",
    );
    let mut bad = lnx.clone();
    bad[77..79].copy_from_slice(&256u16.to_le_bytes());
    assert_rejected(
        &temp_file("count", &bad),
        "resource_count: 256 is more than the 255 records a page holds",
    );
    assert_rejected(
        &temp_file("cut", &lnx[..1000]),
        "resource_count: 13 records need 1744 bytes, but the data is 1000 bytes long",
    );
    let mut bad = lnx.clone();
    bad[12] = 64;
    assert_rejected(&temp_file("name", &bad), "name: length 64 is more than 63");
    let mut bad = lnx;
    bad[80 + 3 * 128 + 4] = 99;
    assert_rejected(
        &temp_file("resource_name", &bad),
        "resource 3: name length 99 is more than 63",
    );
}

#[test]
fn usage_errors_also_exit_with_status_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_muen-testbed"))
        .args(["sinfo", "dump"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}
