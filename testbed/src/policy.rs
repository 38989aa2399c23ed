//! From a component specification to the subject's [`World`].
//!
//! The specification is a [`ComponentSpec`]: read from XML with `muen-spec` (written by
//! `policy-gen`, by hand or by Muen's tools, either generation) or built directly from
//! an app's plan ([`crate::app`]). The testbed plays Muen's toolchain here: `muen-spec`
//! expands the specification into the subject's view (the libraries' channels, the
//! toolchain's pages, the toolchain's order), and [`World::new`] finds the devices.
//!
//! What the testbed cannot emulate (devices, memory and channel arrays, file-backed
//! regions other than the ELF image, libraries other than libmudebuglog and libmutime)
//! is an error naming the element, not something silently left out. `subject_binary`
//! regions are dropped in hosted mode, where Linux loads the executable, and kept in
//! QEMU mode ([`Image::Include`]), where the testbed loads the ELF's segments.
//!
//! Errors have the form `FILE:LINE:COLUMN: <element>: problem` (without the position
//! for a specification that was not read from a file).

use std::path::Path;

use muen_sinfo::MemoryKind;
use muen_spec::{ComponentSpec, Content, Library, Place, Places, SpecError};

use crate::world::World;

/// Whether the world includes the ELF image's `subject_binary` regions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image {
    /// Hosted mode: left out (Linux loads the executable).
    Skip,
    /// QEMU mode: included, with their content from the ELF file.
    Include,
}

/// Reads the component specification in `path`.
pub fn load(path: &Path, image: Image) -> Result<World, SpecError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SpecError::new(path, format!("cannot read the policy: {e}")))?;
    parse(&text, path, image)
}

/// Reads the component specification `text`; `file` names it in errors.
pub fn parse(text: &str, file: &Path, image: Image) -> Result<World, SpecError> {
    let (spec, places) = muen_spec::parse_with_places(text, file)?;
    world(&spec, Some(&places), file, image)
}

/// The world of `spec`. `places` says where its parts are in `file` (`None` for a
/// specification that was not read from a file; `file` still names it in errors).
pub fn world(
    spec: &ComponentSpec,
    places: Option<&Places>,
    file: &Path,
    image: Image,
) -> Result<World, SpecError> {
    let at = |place: Option<&Place>, element: String, message: &str| match place {
        Some(place) => SpecError::at(file, place, message),
        None => SpecError::new(file, format!("{element}: {message}")),
    };
    let component = || places.map(|p| &p.component);
    for (i, name) in spec.depends.iter().enumerate() {
        if Library::from_policy_name(name).is_none() {
            return Err(at(
                places.and_then(|p| p.depends.get(i)),
                format!("<library \"{name}\">"),
                &format!(
                    "the testbed does not know library `{name}` (it provides \
                     libmudebuglog and libmutime)"
                ),
            ));
        }
    }
    if let Some(a) = spec.memory_arrays.first() {
        return Err(at(
            places.and_then(|p| p.memory_arrays.first()),
            format!("<array \"{}\">", a.logical),
            "memory arrays are not supported",
        ));
    }
    if let Some(a) = spec.channel_arrays.first() {
        return Err(at(
            places.and_then(|p| p.channel_arrays.first()),
            format!("<array \"{}\">", a.logical),
            "channel arrays are not supported",
        ));
    }
    if let Some(d) = spec.devices.first() {
        return Err(at(
            places.and_then(|p| p.devices.first()),
            format!("<device \"{}\">", d.logical),
            "the testbed cannot give a subject PCI devices",
        ));
    }
    for (i, m) in spec.provides.iter().enumerate() {
        let problem = match (&m.content, m.kind) {
            (Content::File { offset: None, .. }, MemoryKind::SubjectBinary)
                if image == Image::Include =>
            {
                "the testbed loads an image region from its file offset, which is `none`"
            }
            // Solo5's boot info: written by Muen's mugensolo5, here by the testbed
            // (`crate::qemu::solo5`).
            (Content::File { .. }, MemoryKind::SubjectSolo5BootInfo) => continue,
            (Content::File { .. }, kind) if kind != MemoryKind::SubjectBinary => {
                "file-backed memory is only supported for the ELF image (subject_binary)"
            }
            _ => continue,
        };
        return Err(at(
            places.and_then(|p| p.provides.get(i)),
            format!("<memory \"{}\">", m.logical),
            problem,
        ));
    }
    let whole = |e: &dyn std::fmt::Display| at(component(), "<component>".into(), &e.to_string());
    let mut view = muen_spec::expand(spec).map_err(|e| whole(&e))?;
    if image == Image::Skip {
        // The ELF image: Linux loads the hosted executable instead.
        view.mappings
            .retain(|m| m.kind != MemoryKind::SubjectBinary);
    }
    World::new(view).map_err(|e| whole(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use muen_abi::names::Role;
    use muen_spec::Origin;

    const ECHO: &str = include_str!("../../policy-gen/tests/snapshots/2026-01/echo.xml");
    const ECHO_04: &str = include_str!("../../policy-gen/tests/snapshots/2026-04/echo.xml");
    const BLOCKSTORE: &str =
        include_str!("../../policy-gen/tests/snapshots/2026-01/blockstore.xml");
    const ECHO_ELF: &str =
        include_str!("../../policy-gen/tests/snapshots/2026-04/echo-with-elf.xml");

    fn names(w: &World) -> Vec<&str> {
        w.view.mappings.iter().map(|m| m.name.as_str()).collect()
    }

    fn hosted(text: &str, file: &str) -> Result<World, SpecError> {
        parse(text, Path::new(file), Image::Skip)
    }

    #[test]
    fn echo_world_in_toolchain_order() {
        let w = hosted(ECHO, "echo.xml").unwrap();
        assert_eq!(w.name(), "echo");
        // As mugensinfo orders them (libmutime's reader after the last reader,
        // libmudebuglog's writer after the last writer).
        assert_eq!(
            names(&w),
            [
                "ram",
                "service0|in",
                "time_info",
                "service0|out",
                "debuglog",
                "sinfo",
                "scheduling_info",
                "timed_event"
            ]
        );
        let v = &w.view;
        let ev: Vec<_> = v
            .events
            .iter()
            .map(|e| (e.name.as_str(), e.number))
            .collect();
        assert_eq!(ev, [("exit", 0), ("timer", 1), ("service0|out", 2)]);
        let vec: Vec<_> = v
            .vectors
            .iter()
            .map(|e| (e.name.as_str(), e.number))
            .collect();
        assert_eq!(vec, [("timer", 32), ("service0|in", 33)]);
        assert_eq!(w.net.len(), 1);
        assert_eq!(w.net[0].output_event, Some(2));
        assert_eq!(w.net[0].input_vector, Some(33));
        assert_eq!(
            (v.registers.rip, v.registers.rsp),
            (
                Some(muen_abi::VirtAddr::new(0x20_0000)),
                Some(muen_abi::VirtAddr::new(0x43ff_fff8))
            )
        );
        let ram = v.mapping("ram").unwrap();
        assert_eq!(
            (ram.region.address.as_u64(), ram.region.size, ram.kind),
            (0x4000_0000, 0x400_0000, MemoryKind::Subject)
        );
        let log = v.mapping("debuglog").unwrap();
        assert_eq!(
            (log.role, log.origin),
            (Role::Writer, Origin::Library(Library::Debuglog))
        );
        assert!(v.simd_exceptions);
    }

    #[test]
    fn both_generations_give_the_same_world() {
        assert_eq!(
            hosted(ECHO, "echo.xml").unwrap(),
            hosted(ECHO_04, "echo.xml").unwrap()
        );
    }

    #[test]
    fn blockstore_world_has_its_device() {
        let w = hosted(BLOCKSTORE, "b.xml").unwrap();
        assert_eq!(
            names(&w)[..6],
            [
                "ram",
                "storage|data",
                "storage|req",
                "debuglog",
                "storage|resp",
                "time_info"
            ]
        );
        let b = &w.block[0];
        assert_eq!(b.name, "storage");
        assert_eq!(w.view.mappings[b.data].region.size, 0x100_0000);
        assert_eq!(b.request_event, 2);
        assert_eq!(b.response_vector, Some(33));
    }

    #[test]
    fn the_elf_image_is_left_to_linux_in_hosted_mode_only() {
        let w = hosted(ECHO_ELF, "e.xml").unwrap();
        assert!(w
            .view
            .mappings
            .iter()
            .all(|m| m.kind != MemoryKind::SubjectBinary));
        assert_eq!(names(&w)[0], "ram");
        let q = parse(ECHO_ELF, Path::new("e.xml"), Image::Include).unwrap();
        assert_eq!(
            names(&q)[..6],
            ["text", "rodata", "data", "data|fill", "bss", "ram"]
        );
        let text = q.view.mapping("text").unwrap();
        assert_eq!(
            text.content,
            Content::File {
                filename: "echo".into(),
                offset: Some(0x1000)
            }
        );
        // The devices' indices follow the image regions.
        assert_eq!(q.view.mappings[q.net[0].input].name, "service0|in");
    }

    fn error(text: &str) -> String {
        hosted(text, "p.xml").unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_position_and_element() {
        assert!(
            error("<component").starts_with("p.xml:1:"),
            "{}",
            error("<component")
        );
        assert_eq!(
            error("<library name=\"x\"/>"),
            "p.xml:1:1: <library>: expected a <component> specification (as policy-gen writes it)"
        );
        let e = error(
            "<component name=\"c\">\n <depends><library ref=\"libfoo\"/></depends>\n</component>",
        );
        assert!(
            e.starts_with("p.xml:2:11: <library \"libfoo\">: the testbed does not know"),
            "{e}"
        );
        let e = error(
            "<component name=\"c\"><requires><memory>\n<memory logical=\"m\" virtualAddress=\"16#1000\" \
             size=\"16#1000#\" writable=\"true\" executable=\"false\"/></memory></requires></component>",
        );
        assert_eq!(
            e,
            "p.xml:2:1: <memory \"m\">: `virtualAddress`: `16#1000` is not a number"
        );
        let e = error(
            "<component name=\"c\"><requires><memory><memory logical=\"m\" virtualAddress=\"16#1000#\" \
             size=\"16#1000#\" writable=\"yes\" executable=\"false\"/></memory></requires></component>",
        );
        assert!(e.ends_with("`writable`: `yes` is not a boolean"), "{e}");
        let e = error(
            "<component name=\"c\"><requires><devices><device logical=\"nic\"/></devices>\
             </requires></component>",
        );
        assert!(
            e.contains("<device \"nic\">: the testbed cannot give a subject PCI devices"),
            "{e}"
        );
        let e = error(
            "<component name=\"c\"><requires><channels><writer logical=\"x\" \
             virtualAddress=\"16#1000#\" size=\"16#1000#\" event=\"300\"/></channels>\
             </requires></component>",
        );
        assert!(
            e.ends_with("<writer \"x\">: `event` is out of range"),
            "{e}"
        );
        let e = error(
            "<component name=\"c\"><requires><channels><writer logical=\"x\" \
             virtualAddress=\"16#1000#\" size=\"16#1000#\" event=\"64\"/></channels>\
             </requires></component>",
        );
        assert_eq!(
            e,
            "p.xml:1:1: <component>: event `x` has id 64; vmcall events are 0 to 63"
        );
    }

    #[test]
    fn what_the_testbed_cannot_emulate_is_named() {
        let e = error(
            "<component name=\"c\"><requires><memory>\n <array logical=\"bufs\" writable=\"true\" \
             executable=\"false\" virtualAddressBase=\"16#1000#\" elementSize=\"16#1000#\"/>\
             </memory></requires></component>",
        );
        assert_eq!(
            e,
            "p.xml:2:2: <array \"bufs\">: memory arrays are not supported"
        );
        let e = error(
            "<component name=\"c\"><requires><channels><array logical=\"out\" \
             virtualAddressBase=\"16#1000#\" elementSize=\"16#1000#\"><writer logical=\"o1\"/>\
             </array></channels></requires></component>",
        );
        assert!(
            e.ends_with("<array \"out\">: channel arrays are not supported"),
            "{e}"
        );
        let e = error(
            "<component name=\"c\"><provides><memory logical=\"blob\" virtualAddress=\"16#1000#\" \
             size=\"16#1000#\" writable=\"false\" executable=\"false\"><file filename=\"b\" \
             offset=\"16#0000#\"/></memory></provides></component>",
        );
        assert!(
            e.ends_with(
                "<memory \"blob\">: file-backed memory is only supported for the ELF \
                         image (subject_binary)"
            ),
            "{e}"
        );
        // A specification built in memory has no positions.
        let mut spec = muen_spec::parse(ECHO, Path::new("echo.xml")).unwrap();
        spec.depends.push("libmucontrol".into());
        let e = world(
            &spec,
            None,
            Path::new("app.toml (generated policy)"),
            Image::Skip,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "app.toml (generated policy): <library \"libmucontrol\">: the testbed does not \
             know library `libmucontrol` (it provides libmudebuglog and libmutime)"
        );
    }

    #[test]
    fn overlaps_with_the_toolchain_pages_are_reported() {
        let e = error(
            "<component name=\"c\"><requires><memory><memory logical=\"m\" \
             virtualAddress=\"16#000e_0000_0000#\" size=\"16#1000#\" writable=\"true\" \
             executable=\"false\"/></memory></requires></component>",
        );
        assert_eq!(e, "p.xml:1:1: <component>: regions `m` and `sinfo` overlap");
    }

    #[test]
    fn fill_and_hash_are_kept() {
        let w = hosted(
            "<component name=\"c\"><provides><memory logical=\"ram\" virtualAddress=\"16#1000#\" \
             size=\"16#2000#\" writable=\"true\" executable=\"false\" type=\"subject\">\
             <fill pattern=\"16#aa#\"/><hash value=\"16#00010203_04050607_08090a0b_0c0d0e0f_\
             10111213_14151617_18191a1b_1c1d1e1f#\"/></memory></provides></component>",
            "p.xml",
        )
        .unwrap();
        let ram = w.view.mapping("ram").unwrap();
        assert_eq!(ram.content, Content::Fill(0xaa));
        let hash = ram.hash.unwrap();
        assert_eq!((hash[0], hash[31]), (0, 0x1f));
        assert!(!w.view.has_library(Library::Debuglog));
    }
}
