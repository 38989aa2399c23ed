//! Parsing and validation of both manifest formats.

use std::path::{Path, PathBuf};
use std::string::ToString;
use std::vec;

use super::*;
use muen_abi::names::NameError;

fn toml(text: &str) -> Result<App, ManifestError> {
    App::from_toml_str(text, Path::new("apps/echo/app.toml"))
}

fn toml_err(text: &str) -> ManifestError {
    toml(text).expect_err("the manifest should be rejected")
}

fn json(text: &str) -> Result<App, ManifestError> {
    App::from_solo5_str(text, Path::new("manifest.json"), "unikernel")
}

fn json_err(text: &str) -> ManifestError {
    json(text).expect_err("the manifest should be rejected")
}

fn pos(line: usize, column: usize) -> Option<Position> {
    Some(Position { line, column })
}

#[test]
fn full_manifest() {
    let app = toml(
        r#"
name = "echo"
ram = "128M"
elf = "../../target/echo"

[net.service0]
channel_size = "2M"

[net.admin]

[block.storage]
buffer_size = 8192
"#,
    )
    .unwrap();
    assert_eq!(
        app,
        App {
            name: "echo".into(),
            ram: 128 << 20,
            elf: Some(PathBuf::from("apps/echo/../../target/echo")),
            net: vec![
                NetDevice {
                    name: "admin".into(),
                    channel_size: DEFAULT_CHANNEL_SIZE
                },
                NetDevice {
                    name: "service0".into(),
                    channel_size: 2 << 20
                },
            ],
            block: vec![BlockDevice {
                name: "storage".into(),
                buffer_size: 8192
            }],
            channel: vec![],
        }
    );
}

#[test]
fn defaults() {
    let app = toml("name = \"hello\"\n").unwrap();
    assert_eq!(app.ram, DEFAULT_RAM);
    assert_eq!(app.elf, None);
    assert!(app.net.is_empty() && app.block.is_empty());
    let app = toml("name = \"x\"\n[block.disk]\n").unwrap();
    assert_eq!(app.block[0].buffer_size, DEFAULT_BUFFER_SIZE);
    // An elf path next to a manifest given without a directory stays as written.
    let app = App::from_toml_str("name = \"x\"\nelf = \"x.elf\"", Path::new("app.toml")).unwrap();
    assert_eq!(app.elf, Some(PathBuf::from("x.elf")));
}

#[test]
fn known_keys_are_accepted() {
    // Every key that the hints offer must really be accepted: this manifest uses each.
    use super::app_toml::{APP_KEYS, BLOCK_KEYS, CHANNEL_KEYS, NET_KEYS};
    assert_eq!(APP_KEYS, ["name", "ram", "elf", "net", "block", "channel"]);
    assert_eq!(NET_KEYS, ["channel_size"]);
    assert_eq!(BLOCK_KEYS, ["buffer_size"]);
    assert_eq!(
        CHANNEL_KEYS,
        ["direction", "size", "element_size", "protocol", "event"]
    );
    toml(
        "name = \"x\"\nram = \"4K\"\nelf = \"x\"\n\
         [net.n]\nchannel_size = \"4K\"\n[block.b]\nbuffer_size = \"4K\"\n\
         [channel.c]\ndirection = \"in\"\nsize = \"4K\"\nelement_size = 64\n\
         protocol = 1\nevent = false\n",
    )
    .unwrap();
}

#[test]
fn unknown_keys_with_hints_and_positions() {
    let e = toml_err("name = \"x\"\nnmae = \"y\"\n");
    assert_eq!(e.field(), Some("nmae"));
    assert_eq!(e.position(), pos(2, 1));
    assert!(matches!(
        e.problem(),
        Problem::UnknownKey {
            suggestion: Some("name")
        }
    ));
    assert_eq!(
        e.to_string(),
        "apps/echo/app.toml:2:1: `nmae`: unknown key; did you mean `name`?"
    );

    let e = toml_err("name = \"x\"\n\n[net.service0]\n  chanel_size = \"1M\"\n");
    assert_eq!(e.field(), Some("net.service0.chanel_size"));
    assert_eq!(e.position(), pos(4, 3));
    assert!(matches!(
        e.problem(),
        Problem::UnknownKey {
            suggestion: Some("channel_size")
        }
    ));

    let e = toml_err("name = \"x\"\n[block.disk]\nbufer_size = 4096\n");
    assert_eq!(e.field(), Some("block.disk.bufer_size"));
    assert!(matches!(
        e.problem(),
        Problem::UnknownKey {
            suggestion: Some("buffer_size")
        }
    ));

    let e = toml_err("name = \"x\"\n[nets.service0]\n");
    assert_eq!(e.field(), Some("nets"));
    assert_eq!(e.position(), pos(2, 2));
    assert!(matches!(
        e.problem(),
        Problem::UnknownKey {
            suggestion: Some("net")
        }
    ));

    let e = toml_err("name = \"x\"\nmemory = 5\n");
    assert!(matches!(
        e.problem(),
        Problem::UnknownKey { suggestion: None }
    ));
    assert_eq!(
        e.to_string(),
        "apps/echo/app.toml:2:1: `memory`: unknown key"
    );

    // A channel size under a block device is unknown there (and not close to
    // `buffer_size`).
    let e = toml_err("name = \"x\"\n[block.disk]\nchannel_size = 4096\n");
    assert_eq!(e.field(), Some("block.disk.channel_size"));
    assert!(matches!(
        e.problem(),
        Problem::UnknownKey { suggestion: None }
    ));
}

#[test]
fn wrong_types_name_the_field() {
    let e = toml_err("name = \"x\"\nram = true\n");
    assert_eq!(e.field(), Some("ram"));
    assert_eq!(e.position(), pos(2, 7));
    assert!(
        matches!(&e.problem(), Problem::Invalid(m) if m.contains("boolean")),
        "{e}"
    );

    let e = toml_err("name = 5\n");
    assert_eq!(e.field(), Some("name"));
    assert!(matches!(e.problem(), Problem::Invalid(_)));

    let e = toml_err("name = \"x\"\nnet = 5\n");
    assert_eq!(e.field(), Some("net"));

    let e = toml_err("name = \"x\"\n[net.a]\nchannel_size = 1.5\n");
    assert_eq!(e.field(), Some("net.a.channel_size"));
    assert_eq!(e.position(), pos(3, 16));
}

#[test]
fn syntax_errors_have_positions() {
    let e = toml_err("name = \"x\"\nram = \n");
    assert!(matches!(
        e.problem(),
        Problem::Syntax {
            format: Format::Toml,
            ..
        }
    ));
    assert_eq!(e.field(), None);
    assert_eq!(e.position().map(|p| p.line), Some(2));

    let e = toml_err("name = \"x\"\n[net.a]\n[net.a]\n");
    assert!(matches!(e.problem(), Problem::Syntax { .. }), "{e}");
    assert_eq!(e.position().map(|p| p.line), Some(3));
}

#[test]
fn missing_name() {
    let e = toml_err("ram = \"4M\"\n");
    assert_eq!(e.field(), Some("name"));
    assert!(matches!(e.problem(), Problem::Missing));
    assert_eq!(
        e.to_string(),
        "apps/echo/app.toml: `name`: missing (this key is required)"
    );
}

#[test]
fn bad_names() {
    let e = toml_err("name = \"\"\n");
    assert_eq!(e.position(), pos(1, 8));
    assert!(matches!(
        e.problem(),
        Problem::Name {
            error: NameError::Empty,
            kind: NameKind::Component,
            ..
        }
    ));

    let long = "c".repeat(60);
    let e = toml_err(&std::format!("name = \"{long}\"\n"));
    assert!(matches!(
        e.problem(),
        Problem::Name {
            error: NameError::TooLong { max: 59 },
            ..
        }
    ));
    assert!(e.to_string().contains("longer than 59 characters"), "{e}");
    toml(&std::format!("name = \"{}\"\n", "c".repeat(59))).unwrap();

    let e = toml_err("name = \"my app\"\n");
    assert!(matches!(
        e.problem(),
        Problem::Name {
            error: NameError::BadCharacter {
                found: ' ',
                position: 2
            },
            ..
        }
    ));

    let e = toml_err("name = \"x\"\n[net.\"a|b\"]\n");
    assert_eq!(e.field(), Some("net.\"a|b\""));
    assert_eq!(e.position(), pos(2, 6));
    assert!(matches!(
        e.problem(),
        Problem::Name {
            error: NameError::BadCharacter { found: '|', .. },
            kind: NameKind::Device,
            ..
        }
    ));

    let e = toml_err(&std::format!("name = \"x\"\n[block.{}]\n", "d".repeat(59)));
    assert!(matches!(
        e.problem(),
        Problem::Name {
            error: NameError::TooLong { max: 58 },
            kind: NameKind::Device,
            ..
        }
    ));
    toml(&std::format!("name = \"x\"\n[block.{}]\n", "d".repeat(58))).unwrap();

    let e = toml_err("name = \"x\"\n[net.0net]\n");
    assert!(matches!(
        e.problem(),
        Problem::Name {
            error: NameError::BadStart,
            ..
        }
    ));
}

#[test]
fn duplicate_device_names_across_kinds() {
    let e = toml_err("name = \"x\"\n[net.dev]\n[block.dev]\n");
    assert_eq!(e.field(), Some("block.dev"));
    assert_eq!(e.position(), pos(3, 8));
    assert!(
        matches!(&e.problem(), Problem::DuplicateDevice { name, first } if name == "dev" && first == "net.dev")
    );
}

#[test]
fn bad_sizes() {
    let cases = [
        ("ram = 0", "ram", SizeError::Zero),
        ("ram = \"0M\"", "ram", SizeError::Zero),
        ("ram = 4097", "ram", SizeError::Unaligned { bytes: 4097 }),
        ("ram = -4096", "ram", SizeError::Negative { value: -4096 }),
        (
            "ram = \"64MB\"",
            "ram",
            SizeError::Format {
                text: "64MB".into(),
            },
        ),
        (
            "ram = \"17179869184G\"",
            "ram",
            SizeError::Overflow {
                text: "17179869184G".into(),
            },
        ),
        (
            "[net.a]\nchannel_size = \"1K\"",
            "net.a.channel_size",
            SizeError::Unaligned { bytes: 1024 },
        ),
        (
            "[block.b]\nbuffer_size = 0",
            "block.b.buffer_size",
            SizeError::Zero,
        ),
    ];
    for (text, field, expected) in cases {
        let e = toml_err(&std::format!("name = \"x\"\n{text}\n"));
        assert_eq!(e.field(), Some(field), "{text}");
        assert!(e.position().is_some(), "{text}");
        match e.problem() {
            Problem::Size(found) => assert_eq!(*found, expected, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    let e = toml_err("name = \"x\"\nram = \"64G\"\n");
    assert_eq!(e.field(), Some("ram"));
    assert!(matches!(e.problem(), Problem::RamTooLarge { size, .. } if *size == 64 << 30));
    // The largest RAM that fits.
    let max = muen_abi::layout::RAM_MAX;
    assert_eq!(
        toml(&std::format!("name = \"x\"\nram = {max}\n"))
            .unwrap()
            .ram,
        max
    );
}

#[test]
fn empty_elf_path() {
    let e = toml_err("name = \"x\"\nelf = \"\"\n");
    assert_eq!(e.field(), Some("elf"));
    assert!(matches!(e.problem(), Problem::EmptyPath));
}

#[test]
fn positions_count_characters() {
    let text = "ä\nöü=1";
    assert_eq!(
        Position::of_offset(text, 0),
        Position { line: 1, column: 1 }
    );
    assert_eq!(
        Position::of_offset(text, 3),
        Position { line: 2, column: 1 }
    );
    // Byte 5 is inside `ö`... no: `ö` is bytes 3..5, `ü` 5..7.
    assert_eq!(
        Position::of_offset(text, 5),
        Position { line: 2, column: 2 }
    );
    assert_eq!(
        Position::of_offset(text, 6),
        Position { line: 2, column: 2 }
    );
    assert_eq!(
        Position::of_offset(text, 100),
        Position { line: 2, column: 5 }
    );
}

const SOLO5: &str = r#"{
  "type": "solo5.manifest",
  "version": 1,
  "devices": [
    { "name": "service", "type": "NET_BASIC" },
    { "name": "disk", "type": "BLOCK_BASIC" },
    { "name": "admin", "type": "NET_BASIC" }
  ]
}"#;

#[test]
fn solo5_manifest() {
    let app = json(SOLO5).unwrap();
    assert_eq!(
        app,
        App {
            name: "unikernel".into(),
            ram: DEFAULT_RAM,
            elf: None,
            net: vec![
                NetDevice {
                    name: "admin".into(),
                    channel_size: DEFAULT_CHANNEL_SIZE
                },
                NetDevice {
                    name: "service".into(),
                    channel_size: DEFAULT_CHANNEL_SIZE
                }
            ],
            block: vec![BlockDevice {
                name: "disk".into(),
                buffer_size: DEFAULT_BUFFER_SIZE
            }],
            channel: vec![],
        }
    );
    let empty = json(r#"{"type": "solo5.manifest", "version": 1, "devices": []}"#).unwrap();
    assert!(empty.net.is_empty() && empty.block.is_empty());
}

#[test]
fn solo5_errors() {
    let e = json_err("{\n  \"type\": \"solo5.manifest\",\n  \"version\": 1,\n  \"devices\": [\n    {\"nmae\": \"x\", \"type\": \"NET_BASIC\"}\n  ]\n}");
    assert_eq!(e.field(), Some("devices[0].nmae"));
    assert!(matches!(
        e.problem(),
        Problem::UnknownKey {
            suggestion: Some("name")
        }
    ));
    assert_eq!(e.position().map(|p| p.line), Some(5));

    let e =
        json_err("{\"type\": \"solo5.manifest\", \"version\": 1, \"devices\": [], \"verison\": 2}");
    assert_eq!(e.field(), Some("verison"));
    assert!(matches!(
        e.problem(),
        Problem::UnknownKey {
            suggestion: Some("version")
        }
    ));

    let e = json_err("{\n  \"type\": \"solo5.manifest\",\n  \"version\": 1,\n  \"devices\": [\n");
    assert!(matches!(
        e.problem(),
        Problem::Syntax {
            format: Format::Json,
            ..
        }
    ));
    assert_eq!(e.position().map(|p| p.line), Some(5));
    assert!(!e.to_string().contains(" at line "), "{e}");

    let e = json_err("{\"type\": \"solo5.manifest\",\n \"version\": \"1\", \"devices\": []}");
    assert!(matches!(e.problem(), Problem::Invalid(_)));
    assert_eq!(e.position().map(|p| p.line), Some(2));

    let e = json_err(r#"{"type": "solo5.abi", "version": 1, "devices": []}"#);
    assert_eq!(e.field(), Some("type"));
    assert!(matches!(e.problem(), Problem::NotSolo5Manifest { .. }));

    let e = json_err(r#"{"type": "solo5.manifest", "version": 2, "devices": []}"#);
    assert_eq!(e.field(), Some("version"));
    assert!(matches!(e.problem(), Problem::Solo5Version { found: 2 }));

    let e = json_err(r#"{"type": "solo5.manifest", "version": 1}"#);
    assert_eq!(e.field(), Some("devices"));
    assert!(matches!(e.problem(), Problem::Missing));

    let e = json_err(
        r#"{"type": "solo5.manifest", "version": 1, "devices": [{"name": "n", "type": "NET_BASC"}]}"#,
    );
    assert_eq!(e.field(), Some("devices[0].type"));
    assert!(matches!(
        e.problem(),
        Problem::DeviceType {
            suggestion: Some("NET_BASIC"),
            ..
        }
    ));

    let e = json_err(
        r#"{"type": "solo5.manifest", "version": 1, "devices": [{"name": "n", "type": "NET_BASIC"}, {"name": "n", "type": "BLOCK_BASIC"}]}"#,
    );
    assert_eq!(e.field(), Some("devices[1].name"));
    assert!(
        matches!(&e.problem(), Problem::DuplicateDevice { first, .. } if first == "devices[0].name")
    );

    let e = json_err(
        r#"{"type": "solo5.manifest", "version": 1, "devices": [{"name": "", "type": "NET_BASIC"}]}"#,
    );
    assert_eq!(e.field(), Some("devices[0].name"));
    assert!(matches!(
        e.problem(),
        Problem::Name {
            error: NameError::Empty,
            ..
        }
    ));

    let e = App::from_solo5_str(SOLO5, Path::new("m.json"), "bad name").unwrap_err();
    assert!(matches!(
        e.problem(),
        Problem::Name {
            kind: NameKind::Component,
            ..
        }
    ));
}

#[test]
fn load_dispatches_on_the_extension() {
    let dir = std::env::temp_dir().join(std::format!("muen-app-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml_path = dir.join("app.toml");
    let json_path = dir.join("manifest.json");
    std::fs::write(&toml_path, "name = \"echo\"\n").unwrap();
    std::fs::write(&json_path, SOLO5).unwrap();

    assert_eq!(App::load(&toml_path, None).unwrap().name, "echo");
    assert_eq!(App::load(&toml_path, Some("other")).unwrap().name, "other");
    assert!(matches!(
        App::load(&toml_path, Some("no good"))
            .unwrap_err()
            .problem(),
        Problem::Name { .. }
    ));
    assert_eq!(App::load(&json_path, Some("uk")).unwrap().net.len(), 2);
    assert!(matches!(
        App::load(&json_path, None).unwrap_err().problem(),
        Problem::NameRequired
    ));
    let missing = dir.join("missing.toml");
    let e = App::load(&missing, None).unwrap_err();
    assert!(matches!(e.problem(), Problem::Read(_)));
    assert!(
        e.to_string().starts_with(&missing.display().to_string()),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn parsed_manifests_plan() {
    let app = json(SOLO5).unwrap();
    let plan = Plan::new(&app).unwrap();
    let names: vec::Vec<&str> = plan.devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "admin|in",
            "admin|out",
            "service|in",
            "service|out",
            "disk|req",
            "disk|resp",
            "disk|data"
        ]
    );
}

const CHANNELS: &str = r#"
name = "web"

[channel.requests]
direction = "out"
size = "64K"
element_size = 512
protocol = "0x6775_6573_7462_6f6f"

[channel.responses]
direction = "in"
element_size = 512
protocol = 7454976304729976687
event = false
"#;

#[test]
fn channels() {
    let app = toml(CHANNELS).unwrap();
    assert_eq!(
        app.channel,
        [
            Channel {
                name: "requests".into(),
                direction: Direction::Out,
                size: 64 << 10,
                element_size: 512,
                protocol: 0x6775_6573_7462_6f6f,
                event: true,
            },
            Channel {
                name: "responses".into(),
                direction: Direction::In,
                size: DEFAULT_APP_CHANNEL_SIZE,
                element_size: 512,
                protocol: 0x6775_6573_7462_6f6f,
                event: false,
            },
        ]
    );
    let plan = Plan::new(&app).unwrap();
    let base = muen_abi::layout::DEVICE_BASE.as_u64();
    assert_eq!(plan.channels[0].region.address.as_u64(), base);
    assert_eq!(
        plan.channels[1].region.address.as_u64(),
        base + (64 << 10) + muen_abi::layout::GUARD_SIZE
    );
    assert_eq!(
        (plan.channels[0].event, plan.channels[0].vector),
        (Some(2), None)
    );
    assert_eq!(
        (plan.channels[1].event, plan.channels[1].vector),
        (None, None)
    );
    assert_eq!(plan.channels[0].role(), muen_abi::names::Role::Writer);
    assert_eq!(plan.channels[1].role(), muen_abi::names::Role::Reader);
    // Protocols as hex with and without separators, in decimal, as integers.
    for (written, value) in [
        ("\"0xff\"", 0xff),
        ("\"0xFFFF_FFFF_FFFF_FFFF\"", u64::MAX),
        ("\"18446744073709551615\"", u64::MAX),
        ("\"1_000\"", 1000),
        ("42", 42),
    ] {
        let text = std::format!(
            "name = \"x\"\n[channel.c]\ndirection = \"in\"\nelement_size = 8\nprotocol = {written}\n"
        );
        assert_eq!(toml(&text).unwrap().channel[0].protocol, value, "{written}");
    }
}

#[test]
fn bad_channels_name_the_field() {
    let table = |body: &str| std::format!("name = \"x\"\n[net.dev]\n[channel.c]\n{body}");
    let full = "direction = \"in\"\nelement_size = 8\nprotocol = 1\n";
    toml(&table(full)).unwrap();
    let cases: [(String, &str, &str); 12] = [
        (
            table("element_size = 8\nprotocol = 1\n"),
            "channel.c.direction",
            "missing",
        ),
        (
            table("direction = \"both\"\nelement_size = 8\nprotocol = 1\n"),
            "channel.c.direction",
            "unknown direction \"both\" (expected \"out\"",
        ),
        (
            table("direction = \"in\"\nprotocol = 1\n"),
            "channel.c.element_size",
            "missing",
        ),
        (
            table("direction = \"in\"\nelement_size = 0\nprotocol = 1\n"),
            "channel.c.element_size",
            "the element size must not be zero",
        ),
        (
            table("direction = \"in\"\nelement_size = -8\nprotocol = 1\n"),
            "channel.c.element_size",
            "the element size -8 is negative",
        ),
        (
            table("direction = \"in\"\nsize = \"4K\"\nelement_size = 4033\nprotocol = 1\n"),
            "channel.c.element_size",
            "an element of 4033 bytes does not fit the channel of 4096 bytes",
        ),
        (
            table("direction = \"in\"\nelement_size = 8\n"),
            "channel.c.protocol",
            "missing",
        ),
        (
            table("direction = \"in\"\nelement_size = 8\nprotocol = 0\n"),
            "channel.c.protocol",
            "0 is not a protocol id",
        ),
        (
            table("direction = \"in\"\nelement_size = 8\nprotocol = \"0x1_0000_0000_0000_0000\"\n"),
            "channel.c.protocol",
            "\"0x1_0000_0000_0000_0000\" is not a protocol id",
        ),
        (
            table("direction = \"in\"\nelement_size = 8\nprotocol = \"0x_1\"\n"),
            "channel.c.protocol",
            "is not a protocol id",
        ),
        (
            table("direction = \"in\"\nsize = 100\nelement_size = 8\nprotocol = 1\n"),
            "channel.c.size",
            "not a multiple of the page size",
        ),
        (
            table("direction = \"in\"\nelement_size = 8\nprotocol = 1\nevnet = true\n"),
            "channel.c.evnet",
            "unknown key; did you mean `event`?",
        ),
    ];
    for (text, field, message) in cases {
        let e = toml_err(&text);
        assert_eq!(e.field(), Some(field), "{text}");
        assert!(e.to_string().contains(message), "{e} (wanted {message:?})");
        assert!(e.to_string().starts_with("apps/echo/app.toml:"), "{e}");
    }
    // Names: device rules, the runtime's own names, shared with the devices.
    let e = toml_err(&std::format!("name = \"x\"\n[channel.timer]\n{full}"));
    assert_eq!(e.field(), Some("channel.timer"));
    assert!(
        e.to_string().contains("channel name \"timer\" is reserved"),
        "{e}"
    );
    let e = toml_err(&std::format!("name = \"x\"\n[channel.\"a-b\"]\n{full}"));
    assert!(
        e.to_string()
            .contains("channel name \"a-b\" has the character '-'"),
        "{e}"
    );
    let e = toml_err(&std::format!(
        "name = \"x\"\n[net.dev]\n[channel.dev]\n{full}"
    ));
    assert_eq!(e.field(), Some("channel.dev"));
    assert_eq!(e.position(), pos(3, 10));
    assert!(
        matches!(e.problem(), Problem::DuplicateChannel { name, first } if name == "dev" && first == "net.dev"),
        "{e}"
    );
}

#[test]
fn hand_built_channels_are_checked_again_by_the_plan() {
    let mut app = toml(CHANNELS).unwrap();
    app.channel[0].element_size = 0x10000;
    assert!(matches!(
        Plan::new(&app),
        Err(PlanError::ElementSize { .. })
    ));
    let mut app = toml(CHANNELS).unwrap();
    app.channel[1].protocol = 0;
    assert_eq!(
        Plan::new(&app),
        Err(PlanError::ZeroProtocol {
            channel: "responses".into()
        })
    );
    let mut app = toml(CHANNELS).unwrap();
    app.channel[1].name = "requests".into();
    assert!(matches!(
        Plan::new(&app),
        Err(PlanError::DuplicateDevice { .. })
    ));
    let mut app = toml(CHANNELS).unwrap();
    app.channel[1].name = "exit".into();
    assert!(matches!(
        Plan::new(&app),
        Err(PlanError::Name {
            kind: NameKind::Channel,
            error: NameError::Reserved,
            ..
        })
    ));
}
