//! Solo5's binary interface: the two ELF notes every Solo5 unikernel carries and the C
//! types of Solo5's public header, one model shared by everything in this project that
//! deals with Solo5.
//!
//! * **The notes.** The manifest note (`MFT1`, [`mft`]) lists the devices the
//!   unikernel was built for; the ABI note (`ABI1`, [`abi1`]) says which Solo5 target
//!   and ABI version it was built for. Both sit in `PT_NOTE` segments, in the envelope
//!   of [`note`]. [`Solo5Notes::from_note_segments`] finds and reads both as a Solo5
//!   tender does at start; with feature `elf`, `elf::notes_in_elf` does it from an
//!   ELF image.
//! * **The manifest rules**, kept apart because their users need different ones:
//!   [`Manifest::validate`] is exactly Solo5's own start-up check (`mft_validate`),
//!   [`Manifest::check_elftool_rules`] what Solo5's manifest generator refuses at build
//!   time, [`Manifest::check_unique_names`] what neither checks. [`Manifest::devices`]
//!   applies the last two and gives the typed view: name, type, handle.
//! * **solo5.h** ([`api`]): `solo5_result_t`, the handle, time and offset types,
//!   `struct solo5_start_info`, `struct solo5_net_info`, `struct solo5_block_info` and
//!   the constants, with C's layout, for a Rust implementation of Solo5's bindings.
//! * **Writing notes** (`build`, feature `builder`): the bytes Solo5's tool chain
//!   writes, and malformed ones for tests.
//!
//! ```
//! # #[cfg(feature = "builder")] {
//! use solo5_abi::build::{abi1_note, manifest, mft1_note, DeviceSpec};
//! use solo5_abi::{Abi, DeviceType, Solo5Handle, Solo5Notes};
//!
//! let mft = manifest(&[DeviceSpec { name: "service0", device_type: DeviceType::NetBasic }])?;
//! let (abi, mft) = (abi1_note(Abi::MUEN), mft1_note(&mft));
//! // One note per PT_NOTE segment, as Solo5's linker scripts lay them out.
//! let notes = Solo5Notes::from_note_segments([(0, &abi[..]), (1, &mft[..])])?;
//! notes.abi.expect(Abi::MUEN)?;
//! let devices = notes.devices()?;
//! let net = devices.find("service0").unwrap();
//! assert_eq!((net.device_type, net.handle), (DeviceType::NetBasic, Solo5Handle(1)));
//! # }
//! # Ok::<(), solo5_abi::Error>(())
//! ```
//!
//! Every malformed input gives an error value that names the problem ([`NoteError`],
//! [`ManifestError`], `ElfError`, all in [`Error`]); nothing here panics on input, and
//! the crate has no `unsafe` code. The fuzz target `solo5-abi/fuzz` checks both.
//!
//! # Where the facts come from
//!
//! Solo5 v0.12.1 (the pinned tree beside the repository, `../shared/solo5`):
//! `include/mft_abi.h`, `include/elf_abi.h`, `include/solo5.h`,
//! `tenders/common/mft.c` (`mft_validate`, `mft_get_builtin_mft1`,
//! `mft_get_by_name`), `tenders/common/elf.c` (`elf_load_note`, `ehdr_is_valid`),
//! `elftool/elftool.c` (`gen-manifest`, `query-manifest`, `query-abi`). The facts carry
//! over; the code does not (Solo5 is ISC-licensed C; everything here is written anew).
//!
//! # Layouts: written by hand, checked against the real headers
//!
//! The C structs are declared here by hand with `#[repr(C)]`, `zerocopy` derives and
//! compile-time size, offset and alignment assertions. `tests/c_layout.rs` compiles a
//! small C probe with `gcc` against Solo5's own `solo5.h`, `mft_abi.h` and
//! `elf_abi.h` and compares every size, offset, alignment and constant with this crate
//! (it fails, naming `../shared/solo5`, when the tree is missing). This was preferred
//! to `bindgen`: bindgen needs libclang wherever the crate builds (also for
//! `x86_64-unknown-none` builds of the runtime), would give raw names and C unions
//! where the users need typed values (`Solo5Handle`, `DeviceType`, byte fields for the
//! unions so `zerocopy` can read untrusted bytes), and would still need the same
//! assertions to be trusted. The test gives the same guarantee without the build
//! dependency.
//!
//! The notes are read in the target's byte order, which for every Solo5 target this
//! project builds (x86-64) is little-endian; the crate refuses to build for a
//! big-endian or non-64-bit target rather than misread.
//!
//! The design and its reasons are in `docs/solo5.md`.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(not(all(target_endian = "little", target_pointer_width = "64")))]
compile_error!("solo5-abi models Solo5's 64-bit little-endian targets only");

#[cfg(any(feature = "builder", feature = "elf"))]
extern crate alloc;

pub mod abi1;
pub mod api;
#[cfg(feature = "builder")]
pub mod build;
#[cfg(feature = "elf")]
pub mod elf;
mod error;
pub mod mft;
pub mod note;
mod notes;

pub use abi1::{Abi, Abi1Info, Abi1Note, AbiTarget, MUEN_ABI_VERSION};
pub use api::{
    Solo5BlockInfo, Solo5Handle, Solo5HandleSet, Solo5NetInfo, Solo5Offset, Solo5Result,
    Solo5StartInfo, Solo5Time, SOLO5_EXIT_ABORT, SOLO5_EXIT_FAILURE, SOLO5_EXIT_SUCCESS,
    SOLO5_NET_ALEN, SOLO5_NET_HLEN,
};
pub use error::{Error, ManifestError, NoteError};
pub use mft::{
    builtin_manifest_size, check_manifest_header, Device, DeviceType, Devices, Manifest, MftEntry,
    MftHeader, MFT_MAX_DEVICES, MFT_MAX_ENTRIES, MFT_NAME_MAX, MFT_NAME_SIZE, MFT_RESERVED_FIRST,
    MFT_VERSION,
};
pub use note::{find_note, parse_note, FoundNote, NoteKind, Solo5NoteHeader};
pub use notes::Solo5Notes;
