//! Solo5 unikernels in QEMU mode: an unmodified image linked with Solo5's Muen bindings
//! runs as Muen would run it (`docs/solo5.md`).
//!
//! The testbed recognises the image by its Solo5 notes ([`detect`]) and makes its
//! specification as `policy-gen --elf` does (`policy_gen::solo5`). Beyond a native
//! subject's world, such a unikernel needs:
//!
//! - the **boot info** page that Muen's `mugensolo5` writes ([`boot_info`]): RAM's end
//!   (Solo5's heap and stack reach up to it) and the command line, which on Muen is the
//!   subject's `<bootparams>` (Muen's compose step copies the specification's config
//!   string `bootparams` there). Here it is the run's arguments (`-- ARGS`), else the
//!   specification's `bootparams`. RDI points to it at entry (the policy's `<rdi>`);
//! - the **subject info format** its bindings read: 5 for ABI version 4, 4 for 3
//!   ([`Solo5Guest::sinfo_version`]);
//! - a way to learn its **exit status**: Solo5's bindings end every exit path in
//!   `platform_exit(status, cookie)` ([`PLATFORM_EXIT`]), which on Muen drops the
//!   status, triggers the event `solo5_exit` if the subject has one and halts. The
//!   testbed writes the QEMU exit stub's body (`muen_testbed_abi::qemu::EXIT_QEMU`:
//!   report EDI, end QEMU) over the function's first 16 bytes in guest memory
//!   (`crate::qemu::image`), so the status Solo5 passes (0, 1, 255, ...) becomes the
//!   testbed's exit status. What that skips: the line `Solo5: Halted` and the event.
//! - its network channels are **polled** (no event, no vector): the bridge looks at
//!   `<dev>|out` by itself (`crate::peers::net`).

use std::path::Path;

use muen_abi::names;
use muen_sinfo::{MemoryKind, Version};
use muen_spec::SubjectView;
use policy_gen::solo5::{self as spec, Bindings, Solo5Image};
use solo5_abi::Abi;
use zerocopy::little_endian::U64;
use zerocopy::{Immutable, IntoBytes, KnownLayout};

/// The function of Solo5's bindings every exit goes through (status in EDI); a local
/// symbol in every Solo5 image, which the testbed patches.
pub const PLATFORM_EXIT: &str = "platform_exit";

/// What a Solo5 unikernel's run needs besides its world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Solo5Guest {
    /// The image's ABI (target `muen`, version 3 or 4).
    pub abi: Abi,
    /// The Muen bindings it is linked with: Solo5's (exit through a patched
    /// `platform_exit`) or solo5-muen, which triggers events and exits through the
    /// runtime's stubs like the project's own images (`policy_gen::solo5::Bindings`).
    pub bindings: Bindings,
    /// The command line for the boot info.
    pub cmdline: String,
}

impl Solo5Guest {
    /// The subject info format the image's bindings read (`policy_gen::solo5`).
    pub fn sinfo_version(&self) -> Version {
        spec::sinfo_version(self.abi).unwrap_or(Version::V5)
    }
}

/// The image at `path` if it is a Solo5 unikernel: an ELF file with a Solo5 note.
/// `Ok(None)` for anything else (a directory, an app.toml, another ELF); an error for
/// a Solo5 image that `policy-gen --elf` refuses (broken notes, another target or ABI
/// version).
pub fn detect(path: &Path) -> Result<Option<Solo5Image>, String> {
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !spec::is_solo5_image(&bytes) {
        return Ok(None);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    spec::parse(&bytes, &name)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The first five fields of Solo5's `struct hvt_boot_info`, as Muen's `mugensolo5`
/// writes them (little-endian); the command line and a NUL follow.
#[derive(Clone, Copy, Debug, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct BootInfoHeader {
    /// The end of RAM: the `ram` mapping's address plus its size.
    pub mem_size: U64,
    /// The last byte of the image: the highest end − 1 of the `subject_binary`
    /// mappings.
    pub kernel_end: U64,
    /// 0: mugensolo5 never sets it (Solo5 reads the TSC rate from `time_info`).
    pub cpu_cycle_freq: U64,
    /// The command line's virtual address: the boot info's address + 40.
    pub cmdline: U64,
    /// 0: the manifest comes from the ELF note.
    pub mft: U64,
}

const _: () = assert!(size_of::<BootInfoHeader>() == 40);
const _: () = assert!(std::mem::offset_of!(BootInfoHeader, cmdline) == 24);

/// The boot info of `view` with `cmdline`: the index of its `subject_solo5_boot_info`
/// mapping and the bytes for it, exactly what `mugensolo5` writes for the subject.
pub fn boot_info(view: &SubjectView, cmdline: &str) -> Result<(usize, Vec<u8>), String> {
    let mut regions = view
        .mappings
        .iter()
        .enumerate()
        .filter(|(_, m)| m.kind == MemoryKind::SubjectSolo5BootInfo);
    let (index, region) = regions
        .next()
        .ok_or("the policy has no region of type subject_solo5_boot_info for Solo5's boot info")?;
    if let Some((_, other)) = regions.next() {
        return Err(format!(
            "the policy has two boot info regions, `{}` and `{}`",
            region.name, other.name
        ));
    }
    let ram = view
        .mapping(names::RAM)
        .ok_or("the policy has no region `ram`, whose end is the boot info's memory size")?;
    let kernel_end = view
        .mappings
        .iter()
        .filter(|m| m.kind == MemoryKind::SubjectBinary)
        .filter_map(|m| m.region.end())
        .map(|end| end.as_u64() - 1)
        .max()
        .ok_or("the policy has no subject_binary region, whose end is the kernel's end")?;
    if cmdline.as_bytes().contains(&0) {
        return Err("the command line contains a NUL byte".into());
    }
    let header = BootInfoHeader {
        mem_size: ram.region.end().map_or(0, |e| e.as_u64()).into(),
        kernel_end: kernel_end.into(),
        cpu_cycle_freq: 0.into(),
        cmdline: (region.region.address.as_u64() + size_of::<BootInfoHeader>() as u64).into(),
        mft: 0.into(),
    };
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(cmdline.as_bytes());
    bytes.push(0);
    if bytes.len() as u64 > region.region.size {
        return Err(format!(
            "the command line ({} bytes) does not fit the boot info region `{}` ({:#x} bytes \
             with the 40-byte header and a NUL)",
            cmdline.len(),
            region.name,
            region.region.size
        ));
    }
    Ok((index, bytes))
}

/// Why hosted mode cannot run `path`.
pub fn hosted_refusal(path: &Path) -> String {
    format!(
        "{}: a Solo5 unikernel (a static ELF linked with Solo5's Muen bindings) cannot run \
         in hosted mode, which runs a Linux executable built with muen-subject; run it in \
         QEMU: muen-testbed run --qemu {} [-- ARGS]",
        path.display(),
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy_gen::solo5::Solo5Options;

    /// The view of a synthetic unikernel whose image ends at 0x20d000, RAM 0x100000.
    fn view() -> SubjectView {
        let image = Solo5Image {
            abi: Abi::MUEN,
            bindings: Bindings::Solo5,
            devices: Vec::new(),
            image: policy_gen::elf::Image {
                entry: muen_abi::VirtAddr::new(0x20_0020),
                file_name: "u.muen".into(),
                regions: vec![muen_spec::ProvidedMemory {
                    logical: "text".into(),
                    region: muen_abi::layout::Region {
                        address: muen_abi::VirtAddr::new(0x20_0000),
                        size: 0xd000,
                    },
                    writable: false,
                    executable: true,
                    kind: MemoryKind::SubjectBinary,
                    content: muen_spec::Content::Fill(0),
                    hash: None,
                }],
            },
        };
        let options = Solo5Options {
            ram: 0x10_0000,
            ..Solo5Options::default()
        };
        let spec = spec::component_spec(&image, Path::new("u.muen"), &options).unwrap();
        muen_spec::expand(&spec).unwrap()
    }

    #[test]
    fn the_boot_info_is_mugensolo5s() {
        let v = view();
        let (index, bytes) = boot_info(&v, "Hello_Solo5").unwrap();
        assert_eq!(v.mappings[index].name, "boot_info");
        let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(
            (word(0), word(1), word(2), word(3), word(4)),
            (0x30_d000, 0x20_cfff, 0, 0x1028, 0)
        );
        assert_eq!(&bytes[40..], b"Hello_Solo5\0");
        assert_eq!(boot_info(&v, "").unwrap().1.len(), 41);
        assert!(boot_info(&v, &"x".repeat(4055)).is_ok());
        let e = boot_info(&v, &"x".repeat(4056)).unwrap_err();
        assert!(
            e.contains("does not fit the boot info region `boot_info`"),
            "{e}"
        );
        assert!(boot_info(&v, "a\0b").is_err());
        let mut no_ram = v.clone();
        no_ram.mappings.retain(|m| m.name != "ram");
        assert!(boot_info(&no_ram, "")
            .unwrap_err()
            .contains("no region `ram`"));
        let mut none = v.clone();
        none.mappings.retain(|m| m.name != "boot_info");
        assert!(boot_info(&none, "").is_err());
    }

    #[test]
    fn abi_versions_choose_the_sinfo_format() {
        let guest = |version| Solo5Guest {
            bindings: Bindings::Solo5,
            abi: Abi {
                target: solo5_abi::AbiTarget::Muen,
                version,
            },
            cmdline: String::new(),
        };
        assert_eq!(guest(4).sinfo_version(), Version::V5);
        assert_eq!(guest(3).sinfo_version(), Version::V4);
        assert!(detect(Path::new("/nonexistent")).unwrap().is_none());
        assert!(detect(Path::new(env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .is_none());
        let cargo_toml = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        assert!(detect(&cargo_toml).unwrap().is_none());
    }
}
