//! The Rust layouts and constants against Solo5's own headers: a C probe compiled with
//! gcc against `include/solo5.h`, `include/mft_abi.h` and `include/elf_abi.h` of the
//! pinned tree prints every size, alignment, offset and constant, and the bytes of an
//! ABI and a manifest note declared with Solo5's own macros; the test compares them
//! with this crate. Needs gcc and `../shared/solo5` (fails naming them otherwise).

mod support;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::mem::{align_of, offset_of, size_of};
use std::process::Command;

use solo5_abi::api::*;
use solo5_abi::build::{abi1_note, manifest, mft1_note, DeviceSpec};
use solo5_abi::mft::*;
use solo5_abi::note::*;
use solo5_abi::{Abi, Abi1Info, Abi1Note, AbiTarget, DeviceType};

const PROBE: &str = r#"
#include <elf.h>
#include <stdio.h>
#include <stddef.h>
#include "solo5.h"
#include "mft_abi.h"
#include "elf_abi.h"

#define SIZE(t) printf("size|%s|%zu\nalign|%s|%zu\n", #t, sizeof(t), #t, _Alignof(t))
#define OFF(t, f) printf("offset|%s.%s|%zu\n", #t, #f, offsetof(t, f))
#define VAL(c) printf("value|%s|%llu\n", #c, (unsigned long long)(c))

void print_notes(void);

int main(void)
{
    SIZE(solo5_result_t);
    VAL(SOLO5_R_OK); VAL(SOLO5_R_AGAIN); VAL(SOLO5_R_EINVAL); VAL(SOLO5_R_EUNSPEC);
    SIZE(struct solo5_start_info);
    OFF(struct solo5_start_info, cmdline);
    OFF(struct solo5_start_info, heap_start);
    OFF(struct solo5_start_info, heap_size);
    VAL(SOLO5_EXIT_SUCCESS); VAL(SOLO5_EXIT_FAILURE); VAL(SOLO5_EXIT_ABORT);
    SIZE(solo5_time_t); SIZE(solo5_handle_t); SIZE(solo5_handle_set_t); SIZE(solo5_off_t);
    VAL(SOLO5_NET_ALEN); VAL(SOLO5_NET_HLEN);
    SIZE(struct solo5_net_info);
    OFF(struct solo5_net_info, mac_address);
    OFF(struct solo5_net_info, mtu);
    SIZE(struct solo5_block_info);
    OFF(struct solo5_block_info, capacity);
    OFF(struct solo5_block_info, block_size);

    VAL(MFT_VERSION); VAL(MFT_MAX_ENTRIES); VAL(MFT_NAME_SIZE); VAL(MFT_NAME_MAX);
    VAL(MFT_DEV_BLOCK_BASIC); VAL(MFT_DEV_NET_BASIC); VAL(MFT_RESERVED_FIRST);
    SIZE(mft_type_t);
    SIZE(struct mft);
    OFF(struct mft, version);
    OFF(struct mft, entries);
    OFF(struct mft, e);
    SIZE(struct mft_entry);
    OFF(struct mft_entry, name);
    OFF(struct mft_entry, type);
    OFF(struct mft_entry, u);
    OFF(struct mft_entry, u.block_basic.capacity);
    OFF(struct mft_entry, u.block_basic.block_size);
    OFF(struct mft_entry, u.net_basic.mac);
    OFF(struct mft_entry, u.net_basic.mtu);
    OFF(struct mft_entry, b);
    OFF(struct mft_entry, attached);
    SIZE(struct mft_block_basic);
    SIZE(struct mft_net_basic);
    VAL(MFT1_NOTE_TYPE); VAL(MFT1_NOTE_ALIGN); VAL(MFT1_NOTE_MAX_SIZE);
    VAL(sizeof(MFT1_NOTE_NAME));
    SIZE(struct mft1_nhdr);
    OFF(struct mft1_note, m);

    VAL(HVT_ABI_TARGET); VAL(SPT_ABI_TARGET); VAL(VIRTIO_ABI_TARGET);
    VAL(MUEN_ABI_TARGET); VAL(GENODE_ABI_TARGET); VAL(XEN_ABI_TARGET);
    VAL(ABI1_NOTE_TYPE); VAL(ABI1_NOTE_ALIGN); VAL(ABI1_NOTE_MAX_SIZE);
    VAL(sizeof(ABI1_NOTE_NAME));
    SIZE(struct abi1_nhdr);
    SIZE(struct abi1_info);
    OFF(struct abi1_info, abi_target);
    OFF(struct abi1_info, abi_version);
    OFF(struct abi1_info, reserved0);
    OFF(struct abi1_info, reserved1);
    SIZE(struct abi1_note);
    OFF(struct abi1_note, i);
    SIZE(Elf64_Nhdr);
    printf("string|MFT1_NOTE_NAME|%s\n", MFT1_NOTE_NAME);
    printf("string|ABI1_NOTE_NAME|%s\n", ABI1_NOTE_NAME);
    print_notes();
    return 0;
}
"#;

/// A second translation unit: notes declared with Solo5's own macros, the manifest as
/// `solo5-elftool gen-manifest` writes it for two devices.
const NOTES: &str = r#"
#include <stdio.h>
#define MFT_ENTRIES 3
#include "mft_abi.h"
#include "elf_abi.h"

MFT1_NOTE_DECLARE_BEGIN
{
  .version = MFT_VERSION, .entries = 3,
  .e = {
    { .name = "", .type = MFT_RESERVED_FIRST },
    { .name = "service0", .type = MFT_DEV_NET_BASIC },
    { .name = "storage", .type = MFT_DEV_BLOCK_BASIC },
  }
}
MFT1_NOTE_DECLARE_END

ABI1_NOTE_DECLARE_BEGIN
{
    .abi_target = MUEN_ABI_TARGET, .abi_version = 4
}
ABI1_NOTE_DECLARE_END

static void hex(const char *what, const void *p, size_t n)
{
    const unsigned char *b = p;
    printf("bytes|%s|", what);
    for (size_t i = 0; i < n; i++)
        printf("%02x", b[i]);
    printf("\n");
}

void print_notes(void)
{
    hex("mft1_note", &__solo5_mft1_note, sizeof __solo5_mft1_note);
    hex("abi1_note", &__solo5_abi1_note, sizeof __solo5_abi1_note);
}
"#;

/// Compiles and runs the probe; returns its lines as key -> value.
fn probe() -> BTreeMap<String, String> {
    let include = support::solo5_src().join("include");
    for header in ["solo5.h", "mft_abi.h", "elf_abi.h"] {
        assert!(
            include.join(header).is_file(),
            "{} is missing from the Solo5 tree ../shared/solo5",
            include.join(header).display()
        );
    }
    let dir = support::scratch("c_layout");
    std::fs::write(dir.join("probe.c"), PROBE).unwrap();
    std::fs::write(dir.join("notes.c"), NOTES).unwrap();
    let exe = dir.join("probe");
    support::gcc(&[
        OsStr::new("-std=c11"),
        OsStr::new("-Wall"),
        OsStr::new("-Werror"),
        OsStr::new("-I"),
        include.as_os_str(),
        dir.join("probe.c").as_os_str(),
        dir.join("notes.c").as_os_str(),
        OsStr::new("-o"),
        exe.as_os_str(),
    ]);
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success(), "the probe failed: {}", out.status);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, '|');
            let kind = parts.next().unwrap();
            let key = parts.next().unwrap();
            let value = parts.next().unwrap_or("");
            (format!("{kind} {key}"), value.to_string())
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn layouts_and_constants_match_solo5s_headers() {
    let c = probe();
    let mut rust: BTreeMap<String, String> = BTreeMap::new();
    let mut put = |key: &str, value: u64| {
        rust.insert(key.to_string(), value.to_string());
    };
    macro_rules! size {
        ($c:literal, $t:ty) => {
            put(concat!("size ", $c), size_of::<$t>() as u64);
            put(concat!("align ", $c), align_of::<$t>() as u64);
        };
    }
    macro_rules! off {
        ($c:literal, $v:expr) => {
            put(concat!("offset ", $c), $v as u64);
        };
    }
    macro_rules! val {
        ($c:literal, $v:expr) => {
            put(concat!("value ", $c), $v as u64);
        };
    }
    size!("solo5_result_t", Solo5Result);
    val!("SOLO5_R_OK", Solo5Result::Ok);
    val!("SOLO5_R_AGAIN", Solo5Result::Again);
    val!("SOLO5_R_EINVAL", Solo5Result::Einval);
    val!("SOLO5_R_EUNSPEC", Solo5Result::Eunspec);
    size!("struct solo5_start_info", Solo5StartInfo);
    off!(
        "struct solo5_start_info.cmdline",
        offset_of!(Solo5StartInfo, cmdline)
    );
    off!(
        "struct solo5_start_info.heap_start",
        offset_of!(Solo5StartInfo, heap_start)
    );
    off!(
        "struct solo5_start_info.heap_size",
        offset_of!(Solo5StartInfo, heap_size)
    );
    val!("SOLO5_EXIT_SUCCESS", SOLO5_EXIT_SUCCESS);
    val!("SOLO5_EXIT_FAILURE", SOLO5_EXIT_FAILURE);
    val!("SOLO5_EXIT_ABORT", SOLO5_EXIT_ABORT);
    size!("solo5_time_t", Solo5Time);
    size!("solo5_handle_t", Solo5Handle);
    size!("solo5_handle_set_t", Solo5HandleSet);
    size!("solo5_off_t", Solo5Offset);
    val!("SOLO5_NET_ALEN", SOLO5_NET_ALEN);
    val!("SOLO5_NET_HLEN", SOLO5_NET_HLEN);
    size!("struct solo5_net_info", Solo5NetInfo);
    off!(
        "struct solo5_net_info.mac_address",
        offset_of!(Solo5NetInfo, mac_address)
    );
    off!("struct solo5_net_info.mtu", offset_of!(Solo5NetInfo, mtu));
    size!("struct solo5_block_info", Solo5BlockInfo);
    off!(
        "struct solo5_block_info.capacity",
        offset_of!(Solo5BlockInfo, capacity)
    );
    off!(
        "struct solo5_block_info.block_size",
        offset_of!(Solo5BlockInfo, block_size)
    );

    val!("MFT_VERSION", MFT_VERSION);
    val!("MFT_MAX_ENTRIES", MFT_MAX_ENTRIES);
    val!("MFT_NAME_SIZE", MFT_NAME_SIZE);
    val!("MFT_NAME_MAX", MFT_NAME_MAX);
    val!("MFT_DEV_BLOCK_BASIC", DeviceType::BlockBasic.raw());
    val!("MFT_DEV_NET_BASIC", DeviceType::NetBasic.raw());
    val!("MFT_RESERVED_FIRST", MFT_RESERVED_FIRST);
    // mft_type_t is stored in a u32 field.
    put("size mft_type_t", size_of::<u32>() as u64);
    put("align mft_type_t", align_of::<u32>() as u64);
    size!("struct mft", MftHeader);
    off!("struct mft.version", offset_of!(MftHeader, version));
    off!("struct mft.entries", offset_of!(MftHeader, entries));
    off!("struct mft.e", MFT_HEADER_SIZE);
    size!("struct mft_entry", MftEntry);
    off!("struct mft_entry.name", offset_of!(MftEntry, name));
    off!("struct mft_entry.type", offset_of!(MftEntry, entry_type));
    off!("struct mft_entry.u", offset_of!(MftEntry, properties));
    off!(
        "struct mft_entry.u.block_basic.capacity",
        offset_of!(MftEntry, properties) + offset_of!(MftBlockBasic, capacity)
    );
    off!(
        "struct mft_entry.u.block_basic.block_size",
        offset_of!(MftEntry, properties) + offset_of!(MftBlockBasic, block_size)
    );
    off!(
        "struct mft_entry.u.net_basic.mac",
        offset_of!(MftEntry, properties) + offset_of!(MftNetBasic, mac)
    );
    off!(
        "struct mft_entry.u.net_basic.mtu",
        offset_of!(MftEntry, properties) + offset_of!(MftNetBasic, mtu)
    );
    off!("struct mft_entry.b", offset_of!(MftEntry, backing));
    off!("struct mft_entry.attached", offset_of!(MftEntry, attached));
    size!("struct mft_block_basic", MftBlockBasic);
    size!("struct mft_net_basic", MftNetBasic);
    val!("MFT1_NOTE_TYPE", MFT1_NOTE_TYPE);
    val!("MFT1_NOTE_ALIGN", MFT1_NOTE_ALIGN);
    val!("MFT1_NOTE_MAX_SIZE", MFT1_NOTE_MAX_SIZE);
    val!("sizeof(MFT1_NOTE_NAME)", SOLO5_NOTE_NAME_SIZE);
    size!("struct mft1_nhdr", Solo5NoteHeader);
    off!("struct mft1_note.m", NoteKind::Manifest.descriptor_offset());

    val!("HVT_ABI_TARGET", AbiTarget::Hvt as u32);
    val!("SPT_ABI_TARGET", AbiTarget::Spt as u32);
    val!("VIRTIO_ABI_TARGET", AbiTarget::Virtio as u32);
    val!("MUEN_ABI_TARGET", AbiTarget::Muen as u32);
    val!("GENODE_ABI_TARGET", AbiTarget::Genode as u32);
    val!("XEN_ABI_TARGET", AbiTarget::Xen as u32);
    val!("ABI1_NOTE_TYPE", ABI1_NOTE_TYPE);
    val!("ABI1_NOTE_ALIGN", ABI1_NOTE_ALIGN);
    val!("ABI1_NOTE_MAX_SIZE", ABI1_NOTE_MAX_SIZE);
    val!("sizeof(ABI1_NOTE_NAME)", SOLO5_NOTE_NAME_SIZE);
    size!("struct abi1_nhdr", Solo5NoteHeader);
    size!("struct abi1_info", Abi1Info);
    off!(
        "struct abi1_info.abi_target",
        offset_of!(Abi1Info, abi_target)
    );
    off!(
        "struct abi1_info.abi_version",
        offset_of!(Abi1Info, abi_version)
    );
    off!(
        "struct abi1_info.reserved0",
        offset_of!(Abi1Info, reserved0)
    );
    off!(
        "struct abi1_info.reserved1",
        offset_of!(Abi1Info, reserved1)
    );
    size!("struct abi1_note", Abi1Note);
    off!("struct abi1_note.i", offset_of!(Abi1Note, info));
    size!("Elf64_Nhdr", ElfNoteHeader);

    let name = std::str::from_utf8(&SOLO5_NOTE_NAME[..5]).unwrap();
    rust.insert("string MFT1_NOTE_NAME".into(), name.into());
    rust.insert("string ABI1_NOTE_NAME".into(), name.into());

    let mft = manifest(&[
        DeviceSpec {
            name: "service0",
            device_type: DeviceType::NetBasic,
        },
        DeviceSpec {
            name: "storage",
            device_type: DeviceType::BlockBasic,
        },
    ])
    .unwrap();
    rust.insert("bytes mft1_note".into(), hex(&mft1_note(&mft)));
    rust.insert("bytes abi1_note".into(), hex(&abi1_note(Abi::MUEN)));

    let mut mismatches = Vec::new();
    for (key, value) in &rust {
        match c.get(key) {
            Some(c_value) if c_value == value => {}
            Some(c_value) => mismatches.push(format!("{key}: C {c_value}, Rust {value}")),
            None => mismatches.push(format!("{key}: not printed by the C probe")),
        }
    }
    for key in c.keys().filter(|key| !rust.contains_key(*key)) {
        mismatches.push(format!("{key}: printed by the C probe, not compared"));
    }
    assert!(
        mismatches.is_empty(),
        "layouts differ from Solo5's headers:\n{}",
        mismatches.join("\n")
    );
}
