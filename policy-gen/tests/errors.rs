//! One test per error class: the binary prints one line naming the file, field and
//! problem on stderr, exits with status 1 and prints nothing on stdout.

mod common;

use common::*;

/// Runs policy-gen in `dir` and checks the failure contract; returns the message
/// without the `policy-gen: error: ` prefix and the newline.
fn fails(dir: &TempDir, args: &[&str]) -> String {
    let out = run(dir.path(), args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "policy-gen {args:?}: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "policy-gen {args:?} wrote to stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let message = stderr
        .strip_prefix("policy-gen: error: ")
        .and_then(|m| m.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("not one error line: {stderr:?}"));
    assert!(!message.contains('\n'), "more than one line: {stderr:?}");
    message.to_string()
}

/// Writes `app.toml` and expects policy-gen to fail with exactly `expected`.
fn toml_fails(manifest: &str, expected: &str) {
    let dir = TempDir::new("errors");
    dir.write("app.toml", manifest);
    assert_eq!(
        fails(&dir, &["app.toml"]),
        expected,
        "manifest:\n{manifest}"
    );
}

/// With an ELF built from `elf`, expects the message `expected`.
fn elf_fails(elf: &Elf, expected: &str) {
    let dir = TempDir::new("errors-elf");
    dir.write("app.toml", "name = \"app\"\n");
    elf.write(&dir, "app.elf");
    assert_eq!(fails(&dir, &["--elf", "app.elf", "app.toml"]), expected);
}

#[test]
fn unreadable_manifest() {
    let dir = TempDir::new("errors");
    assert_eq!(
        fails(&dir, &["missing.toml"]),
        "missing.toml: cannot read the file: No such file or directory (os error 2)"
    );
    std::fs::create_dir(dir.path().join("dir.toml")).unwrap();
    assert!(fails(&dir, &["dir.toml"]).starts_with("dir.toml: cannot read the file: "));
    dir.write("binary.toml", [0xff, 0xfe, 0x00]);
    assert!(fails(&dir, &["binary.toml"]).starts_with("binary.toml: cannot read the file: "));
}

#[test]
fn bad_toml_with_line_and_column() {
    toml_fails(
        "name = \"x\"\nram = \n",
        "app.toml:2:7: invalid TOML: string values must be quoted, expected literal string",
    );
    toml_fails(
        "name = \"x\"\n[net.a]\nchannel_size = \"1M\"\nchannel_size = \"2M\"\n",
        "app.toml:4:1: invalid TOML: duplicate key (at `channel_size`)",
    );
}

#[test]
fn bad_json_with_line_and_column() {
    let dir = TempDir::new("errors");
    dir.write(
        "manifest.json",
        "{\n  \"type\": \"solo5.manifest\",\n  \"version\": 1\n  \"devices\": []\n}\n",
    );
    assert_eq!(
        fails(&dir, &["--name", "uk", "manifest.json"]),
        "manifest.json:4:3: invalid JSON: expected `,` or `}`"
    );
}

#[test]
fn wrong_type() {
    toml_fails(
        "name = \"x\"\nram = true\n",
        "app.toml:2:7: `ram`: invalid type: boolean `true`, expected a size (an integer \
         number of bytes, or a string like \"64M\")",
    );
}

#[test]
fn unknown_keys_with_hints() {
    toml_fails(
        "name = \"x\"\n\n[net.service0]\nchanel_size = \"1M\"\n",
        "app.toml:4:1: `net.service0.chanel_size`: unknown key; did you mean `channel_size`?",
    );
    toml_fails(
        "name = \"x\"\n[blocks.storage]\n",
        "app.toml:2:2: `blocks`: unknown key; did you mean `block`?",
    );
    toml_fails(
        "name = \"x\"\ncpus = 2\n",
        "app.toml:2:1: `cpus`: unknown key",
    );

    let dir = TempDir::new("errors");
    dir.write(
        "manifest.json",
        r#"{"type": "solo5.manifest", "version": 1, "devices": [{"name": "a", "typ": "NET_BASIC"}]}"#,
    );
    assert_eq!(
        fails(&dir, &["--name", "uk", "manifest.json"]),
        "manifest.json:1:72: `devices[0].typ`: unknown key; did you mean `type`?"
    );
}

#[test]
fn missing_name() {
    toml_fails(
        "ram = \"16M\"\n",
        "app.toml: `name`: missing (this key is required)",
    );
    let dir = TempDir::new("errors");
    dir.write(
        "manifest.json",
        r#"{"type": "solo5.manifest", "version": 1, "devices": []}"#,
    );
    assert_eq!(
        fails(&dir, &["manifest.json"]),
        "manifest.json: a Solo5 manifest does not name the component: give the name \
         separately (policy-gen --name NAME)"
    );
}

#[test]
fn bad_name_empty() {
    toml_fails(
        "name = \"\"\n",
        "app.toml:1:8: `name`: component name \"\" is empty",
    );
    toml_fails(
        "name = \"x\"\n[net.\"\"]\n",
        "app.toml:2:6: `net.\"\"`: device name \"\" is empty",
    );
}

#[test]
fn bad_name_too_long_with_its_prefixes() {
    // 59 characters fit (`<component>|ram` is 63); 60 do not.
    let long = "c".repeat(60);
    toml_fails(
        &format!("name = \"{long}\"\n"),
        &format!(
            "app.toml:1:8: `name`: component name \"{long}\" is longer than 59 characters \
             (Muen names the component's regions `<component>|<region>`, and names have at \
             most 63 characters)"
        ),
    );
    // 58 characters fit (`<device>|resp` is 63); 59 do not.
    let long = "d".repeat(59);
    toml_fails(
        &format!("name = \"x\"\n[block.{long}]\n"),
        &format!(
            "app.toml:2:8: `block.{long}`: device name \"{long}\" is longer than 58 \
             characters (the device's regions are named `<device>|resp` and so on, and \
             names have at most 63 characters)"
        ),
    );
    // With an ELF, the image region names must fit too.
    let dir = TempDir::new("errors");
    dir.write("app.toml", format!("name = \"{}\"\n", "c".repeat(59)));
    typical_elf().write(&dir, "app.elf");
    assert_eq!(
        fails(&dir, &["--elf", "app.elf", "app.toml"]),
        format!(
            "app.toml: the image region `text` becomes the physical region `{}|text` of 64 \
             characters, more than Muen's 63; use a component name of at most 58 characters",
            "c".repeat(59)
        )
    );
}

#[test]
fn bad_name_characters() {
    toml_fails(
        "name = \"my app\"\n",
        "app.toml:1:8: `name`: component name \"my app\" has the character ' ' at position \
         2, which is not allowed (allowed: an ASCII letter, then ASCII letters, digits, `_`, \
         `-`)",
    );
    toml_fails(
        "name = \"x\"\n[net.\"eth|0\"]\n",
        "app.toml:2:6: `net.\"eth|0\"`: device name \"eth|0\" has the character '|' at \
         position 3, which is not allowed (allowed: an ASCII letter, then ASCII letters, \
         digits, `_`)",
    );
    toml_fails(
        "name = \"x\"\n[net.0eth]\n",
        "app.toml:2:6: `net.0eth`: device name \"0eth\" must start with an ASCII letter \
         (allowed: an ASCII letter, then ASCII letters, digits, `_`)",
    );
    let dir = TempDir::new("errors");
    dir.write("app.toml", "name = \"x\"\n");
    assert_eq!(
        fails(&dir, &["--name", "a/b", "app.toml"]),
        "--name: component name \"a/b\" has the character '/' at position 1, which is not \
         allowed (allowed: an ASCII letter, then ASCII letters, digits, `_`, `-`)"
    );
}

#[test]
fn duplicate_device_names_across_kinds() {
    toml_fails(
        "name = \"x\"\n[net.disk]\n[block.disk]\n",
        "app.toml:3:8: `block.disk`: device name \"disk\" is already used by `net.disk` \
         (device names must be unique across all kinds)",
    );
    let dir = TempDir::new("errors");
    dir.write(
        "manifest.json",
        r#"{"type": "solo5.manifest", "version": 1, "devices": [
            {"name": "a", "type": "NET_BASIC"}, {"name": "a", "type": "BLOCK_BASIC"}]}"#,
    );
    assert_eq!(
        fails(&dir, &["--name", "uk", "manifest.json"]),
        "manifest.json: `devices[1].name`: device name \"a\" is already used by \
         `devices[0].name` (device names must be unique across all kinds)"
    );
}

#[test]
fn size_zero() {
    toml_fails(
        "name = \"x\"\n[net.a]\nchannel_size = 0\n",
        "app.toml:3:16: `net.a.channel_size`: size must not be zero",
    );
}

#[test]
fn size_not_page_aligned() {
    toml_fails(
        "name = \"x\"\n[block.b]\nbuffer_size = \"1K\"\n",
        "app.toml:3:15: `block.b.buffer_size`: size 1024 (0x400) is not a multiple of the \
         page size (4K = 0x1000)",
    );
}

#[test]
fn size_overflowing() {
    toml_fails(
        "name = \"x\"\nram = \"17179869184G\"\n",
        "app.toml:2:7: `ram`: size \"17179869184G\" is too large (more than 2^64 - 1 bytes)",
    );
    toml_fails(
        "name = \"x\"\nram = \"64G\"\n",
        "app.toml:2:7: `ram`: RAM size 0x1000000000 is larger than 0xdc0000000 bytes, the \
         room between the RAM base 0x40000000 and the subject info page at 0xe00000000",
    );
    toml_fails(
        "name = \"x\"\n[block.b]\nbuffer_size = \"134217727G\"\n",
        "app.toml: device region `b|data` of size 0x1ffffffc0000000 does not fit in the \
         device window 0x1000000000..0x800000000000",
    );
}

#[test]
fn size_malformed() {
    toml_fails(
        "name = \"x\"\nram = \"64MB\"\n",
        "app.toml:2:7: `ram`: \"64MB\" is not a size: write an integer number of bytes or \
         digits with a K, M or G suffix (powers of 1024), like \"64M\"",
    );
    toml_fails(
        "name = \"x\"\nram = -4096\n",
        "app.toml:2:7: `ram`: size -4096 is negative",
    );
}

#[test]
fn too_many_devices() {
    let mut manifest = String::from("name = \"x\"\n");
    for i in 0..63 {
        manifest.push_str(&format!("[net.n{i:02}]\nchannel_size = \"4K\"\n"));
    }
    toml_fails(
        &manifest,
        "app.toml: too many writer channels: `n62|out` finds no free event id (ids 2..=63 \
         serve at most 62 writer channels, one per device)",
    );
}

#[test]
fn solo5_manifest_content() {
    let dir = TempDir::new("errors");
    dir.write(
        "manifest.json",
        r#"{"type": "solo5.manifest", "version": 1, "devices": [{"name": "a", "type": "NET_BASC"}]}"#,
    );
    assert_eq!(
        fails(&dir, &["--name", "uk", "manifest.json"]),
        "manifest.json: `devices[0].type`: unknown device type \"NET_BASC\" (expected \
         \"NET_BASIC\" or \"BLOCK_BASIC\"); did you mean \"NET_BASIC\"?"
    );
    dir.write(
        "abi.json",
        r#"{"type": "solo5.abi", "version": 1, "devices": []}"#,
    );
    assert_eq!(
        fails(&dir, &["--name", "uk", "abi.json"]),
        "abi.json: `type`: expected \"solo5.manifest\", found \"solo5.abi\" (is this the \
         output of `solo5-elftool query-manifest`?)"
    );
}

#[test]
fn elf_missing() {
    let dir = TempDir::new("errors");
    dir.write("app.toml", "name = \"x\"\n");
    assert_eq!(
        fails(&dir, &["--elf", "nothing.elf", "app.toml"]),
        "--elf: nothing.elf: cannot read the ELF file: No such file or directory (os error 2)"
    );
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    dir.write("sub/app.toml", "name = \"x\"\nelf = \"build/x\"\n");
    assert_eq!(
        fails(&dir, &["sub/app.toml"]),
        "sub/app.toml: `elf`: sub/build/x: cannot read the ELF file: No such file or \
         directory (os error 2)"
    );
}

#[test]
fn elf_not_elf64_x86_64() {
    let dir = TempDir::new("errors");
    dir.write("app.toml", "name = \"x\"\n");
    dir.write(
        "script.sh",
        "#!/bin/sh\necho this is not an ELF file, but it is long enough to hold an ELF header\n",
    );
    assert_eq!(
        fails(&dir, &["--elf", "script.sh", "app.toml"]),
        "--elf: script.sh: not an ELF file (no ELF magic)"
    );
    dir.write("short", [0x7f, b'E', b'L', b'F', 2, 1]);
    assert_eq!(
        fails(&dir, &["--elf", "short", "app.toml"]),
        "--elf: short: not an ELF file (no ELF magic)"
    );
    let base = typical_elf();
    elf_fails(
        &Elf {
            class: 1,
            ..base.clone()
        },
        "--elf: app.elf: not an ELF64 x86-64 file: it is a 32-bit ELF file",
    );
    elf_fails(
        &Elf {
            data: 2,
            ..base.clone()
        },
        "--elf: app.elf: not an ELF64 x86-64 file: it is a big-endian ELF64 file",
    );
    elf_fails(
        &Elf {
            machine: 0xb7,
            ..base.clone()
        },
        "--elf: app.elf: not an ELF64 x86-64 file: it is an ELF64 file for AArch64",
    );
    elf_fails(
        &Elf { kind: 3, ..base },
        "--elf: app.elf: not an executable with fixed addresses (the ELF type is ET_DYN, a \
         position-independent executable or shared object); link a static, non-PIE \
         executable (ET_EXEC)",
    );
}

#[test]
fn elf_without_loadable_segments() {
    let expected = "--elf: app.elf: no loadable segments (no PT_LOAD with a non-zero size)";
    elf_fails(&Elf::new(IMAGE), expected);
    elf_fails(&Elf::new(IMAGE).other(PT_NOTE, IMAGE, 0x20), expected);
    elf_fails(&Elf::new(IMAGE).load(PF_R | PF_X, IMAGE, 0, 0), expected);
}

#[test]
fn elf_segments_outside_the_image_window() {
    elf_fails(
        &Elf::new(0x1000).load(PF_R | PF_X, 0x1000, 0x100, 0x100),
        "--elf: app.elf: segment 0 (0x1000..0x1100) is outside the image window \
         0x200000..0x40000000",
    );
    elf_fails(
        &Elf::new(IMAGE).load(PF_R | PF_X, IMAGE, 0x100, 0x100).load(
            PF_R | PF_W,
            0x3fff_f000,
            0x1000,
            0x2000,
        ),
        "--elf: app.elf: segment 1 (0x3ffff000..0x40001000) is outside the image window \
         0x200000..0x40000000",
    );
}

#[test]
fn elf_bss_sharing_a_page_with_file_bytes() {
    elf_fails(
        &Elf::new(IMAGE).load(PF_R | PF_X, IMAGE, 0x100, 0x100).load(
            PF_R | PF_W,
            IMAGE + 0x1000,
            0x10,
            0x20,
        ),
        "--elf: app.elf: segment 1: its zero-filled part (.bss) starts at 0x201010, not on \
         a 4 KiB page boundary; Muen would fill that page from the file. Align .bss to 4 \
         KiB in the linker script",
    );
}

#[test]
fn elf_entry_outside_the_code() {
    elf_fails(
        &Elf::new(IMAGE + 0x1000)
            .load(PF_R | PF_X, IMAGE, 0x100, 0x100)
            .load(PF_R | PF_W, IMAGE + 0x1000, 0x100, 0x100),
        "--elf: app.elf: the entry point 0x201000 is not in the file part of an executable \
         loadable segment",
    );
}

#[test]
fn unknown_muen_tools_generation() {
    let dir = TempDir::new("errors");
    dir.write("app.toml", "name = \"app\"\n");
    for bad in ["2026-02", "2026-04 ", "latest", ""] {
        assert_eq!(
            fails(&dir, &["--muen-tools", bad, "app.toml"]),
            format!(
                "--muen-tools: unknown Muen tool-chain generation `{bad}`; known: 2026-01, \
                 2026-04"
            )
        );
    }
    for good in ["2026-01", "2026-04"] {
        assert!(run(dir.path(), &["--muen-tools", good, "app.toml"])
            .status
            .success());
    }
}

#[test]
fn usage_errors_exit_with_2() {
    let dir = TempDir::new("errors");
    let out = run(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("<--elf <FILE>|MANIFEST>"));
}
