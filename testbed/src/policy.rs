//! Reads a component specification (Muen's `component.xsd`, as `policy-gen` writes it)
//! into a [`World`].
//!
//! The testbed plays Muen's toolchain here: it adds the resources of the libraries the
//! component depends on and the toolchain's own pages, and orders everything as the
//! toolchain does (see [`crate::world`]). What it cannot emulate (devices, memory and
//! channel arrays, file-backed regions other than the ELF image, unknown libraries) is
//! an error naming the element, not something silently left out. `subject_binary`
//! regions are skipped in hosted mode, where Linux loads the executable, and kept in QEMU
//! mode ([`Image::Include`]), where the testbed loads the ELF's segments.
//!
//! Errors have the form `FILE:LINE:COLUMN: <element>: problem`.

use std::fmt;
use std::path::{Path, PathBuf};

use muen_sinfo::MemoryKind;
use roxmltree::{Document, Node};

use crate::world::{self, Content, Library, Number, Origin, Region, Role, World, WorldError};

/// Why a policy cannot be used.
#[derive(Debug)]
pub struct PolicyError {
    file: PathBuf,
    position: Option<(u32, u32)>,
    message: String,
}

impl PolicyError {
    /// What is wrong, without the file and position.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for PolicyError {}

/// Whether the world includes the ELF image's `subject_binary` regions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image {
    /// Hosted mode: left out (Linux loads the executable).
    Skip,
    /// QEMU mode: included, with their content from the ELF file.
    Include,
}

/// Reads the component specification in `path` (hosted mode).
pub fn load(path: &Path) -> Result<World, PolicyError> {
    load_with(path, Image::Skip)
}

/// Reads the component specification in `path`.
pub fn load_with(path: &Path, image: Image) -> Result<World, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
        file: path.to_path_buf(),
        position: None,
        message: format!("cannot read the policy: {e}"),
    })?;
    parse_with(&text, path, image)
}

/// Reads the component specification `text` (hosted mode); `file` names it in errors.
pub fn parse(text: &str, file: &Path) -> Result<World, PolicyError> {
    parse_with(text, file, Image::Skip)
}

/// Reads the component specification `text`; `file` names it in errors.
pub fn parse_with(text: &str, file: &Path, image: Image) -> Result<World, PolicyError> {
    let doc = Document::parse(text).map_err(|e| {
        let pos = e.pos();
        PolicyError {
            file: file.to_path_buf(),
            position: Some((pos.row, pos.col)),
            message: format!("not well-formed XML: {e}"),
        }
    })?;
    Parser {
        doc: &doc,
        file,
        image,
    }
    .component()
}

struct Parser<'a, 'input> {
    doc: &'a Document<'input>,
    file: &'a Path,
    image: Image,
}

/// What the component declares, before the toolchain's additions.
#[derive(Default)]
struct Declared {
    provided: Vec<Region>,
    required: Vec<Region>,
    channels: Vec<(Region, Option<u8>)>,
    libraries: Vec<Library>,
    source_events: Vec<Number>,
    target_vectors: Vec<Number>,
    registers: (u64, u64),
    simd_exceptions: bool,
}

impl<'a, 'input> Parser<'a, 'input> {
    fn error(&self, node: Node, message: impl Into<String>) -> PolicyError {
        let pos = self.doc.text_pos_at(node.range().start);
        let message = message.into();
        let what = describe(node);
        PolicyError {
            file: self.file.to_path_buf(),
            position: Some((pos.row, pos.col)),
            message: if what.is_empty() {
                message
            } else {
                format!("{what}: {message}")
            },
        }
    }

    fn component(&self) -> Result<World, PolicyError> {
        let root = self.doc.root_element();
        if root.tag_name().name() != "component" {
            return Err(self.error(
                root,
                "expected a <component> specification (as policy-gen writes it)",
            ));
        }
        let name = self.attr(root, "name")?.to_string();
        let mut d = Declared::default();
        for child in elements(root) {
            match child.tag_name().name() {
                "config" => {}
                "depends" => self.depends(child, &mut d)?,
                "requires" => self.requires(child, &mut d)?,
                "provides" => self.provides(child, &mut d)?,
                _ => return Err(self.error(child, "unexpected element")),
            }
        }
        self.world(root, name, d)
    }

    /// Orders the declared resources as Muen's toolchain does.
    fn world(&self, root: Node, name: String, d: Declared) -> Result<World, PolicyError> {
        let mut regions = d.provided;
        regions.extend(d.required);
        let mut events = d.source_events;
        let mut vectors = d.target_vectors;
        let mut channel_events = Vec::new();
        let mut channel_vectors = Vec::new();
        let library_channels = d.libraries.iter().map(|l| (l.region(), None));
        for (region, number) in d.channels.into_iter().chain(library_channels) {
            if let Some(number) = number {
                let n = Number {
                    name: region.name.clone(),
                    number,
                };
                match region.role {
                    Role::Writer => channel_events.push(n),
                    _ => channel_vectors.push(n),
                }
            }
            regions.push(region);
        }
        regions.extend(world::toolchain_regions());
        events.extend(channel_events);
        vectors.extend(channel_vectors);
        let mut world = World::new(name, d.registers, regions, events, vectors)
            .map_err(|e: WorldError| self.error(root, e.to_string()))?;
        world.simd_exceptions = d.simd_exceptions;
        Ok(world)
    }

    fn depends(&self, node: Node, d: &mut Declared) -> Result<(), PolicyError> {
        for lib in elements(node) {
            if lib.tag_name().name() != "library" {
                return Err(self.error(lib, "unexpected element"));
            }
            let name = self.attr(lib, "ref")?;
            let library = Library::from_policy_name(name).ok_or_else(|| {
                self.error(
                    lib,
                    format!(
                        "the testbed does not know library `{name}` (it provides \
                         libmudebuglog and libmutime)"
                    ),
                )
            })?;
            if !d.libraries.contains(&library) {
                d.libraries.push(library);
            }
        }
        Ok(())
    }

    fn requires(&self, node: Node, d: &mut Declared) -> Result<(), PolicyError> {
        for child in elements(node) {
            match child.tag_name().name() {
                "vcpu" => {
                    d.registers = self.registers(child)?;
                    d.simd_exceptions = self.simd_exceptions(child)?;
                }
                "memory" => {
                    for m in elements(child) {
                        self.expect(m, "memory", "memory arrays are not supported")?;
                        d.required.push(self.memory(m, MemoryKind::Subject)?);
                    }
                }
                "channels" => {
                    for c in elements(child) {
                        d.channels.push(self.channel(c)?);
                    }
                }
                "events" => self.events(child, d)?,
                "devices" => {
                    return Err(self.error(child, "the testbed cannot give a subject PCI devices"))
                }
                _ => return Err(self.error(child, "unexpected element")),
            }
        }
        Ok(())
    }

    fn provides(&self, node: Node, d: &mut Declared) -> Result<(), PolicyError> {
        for m in elements(node) {
            self.expect(m, "memory", "unexpected element")?;
            let kind = match m.attribute("type") {
                None => MemoryKind::Subject,
                Some(t) => MemoryKind::from_policy_name(t)
                    .ok_or_else(|| self.error(m, format!("unknown memory type `{t}`")))?,
            };
            let region = self.memory(m, kind)?;
            if kind == MemoryKind::SubjectBinary {
                // The ELF image: Linux loads the hosted executable instead; QEMU mode
                // loads its segments into guest memory.
                if self.image == Image::Include {
                    d.provided.push(region);
                }
                continue;
            }
            if region.content == Content::File {
                return Err(self.error(
                    m,
                    "file-backed memory is only supported for the ELF image (subject_binary)",
                ));
            }
            d.provided.push(region);
        }
        Ok(())
    }

    fn registers(&self, vcpu: Node) -> Result<(u64, u64), PolicyError> {
        let gpr = vcpu.descendants().find(|n| {
            n.has_tag_name("gpr") && n.parent().is_some_and(|p| p.has_tag_name("registers"))
        });
        let mut regs = (0, 0);
        if let Some(gpr) = gpr {
            for r in elements(gpr) {
                let value = || {
                    let text = r.text().unwrap_or("").trim();
                    parse_number(text)
                        .ok_or_else(|| self.error(r, format!("`{text}` is not a number")))
                };
                match r.tag_name().name() {
                    "rip" => regs.0 = value()?,
                    "rsp" => regs.1 = value()?,
                    _ => {}
                }
            }
        }
        Ok(regs)
    }

    /// `<registers><cr4><OSSupportSIMDExceptions>` of the vCPU, if given.
    fn simd_exceptions(&self, vcpu: Node) -> Result<bool, PolicyError> {
        let bit = vcpu.descendants().find(|n| {
            n.has_tag_name("OSSupportSIMDExceptions")
                && n.parent().is_some_and(|p| {
                    p.has_tag_name("cr4") && p.parent().is_some_and(|r| r.has_tag_name("registers"))
                })
        });
        match bit.map(|b| b.text().unwrap_or("").trim()) {
            None | Some("0") => Ok(false),
            Some("1") => Ok(true),
            Some(other) => Err(self.error(bit.unwrap_or(vcpu), format!("`{other}` is not 0 or 1"))),
        }
    }

    fn memory(&self, m: Node, kind: MemoryKind) -> Result<Region, PolicyError> {
        let mut content = Content::Uninitialized;
        let mut hash = None;
        for c in elements(m) {
            match c.tag_name().name() {
                "fill" => {
                    let p = self.number(c, "pattern")?;
                    let p = u8::try_from(p)
                        .map_err(|_| self.error(c, "fill pattern must be a byte"))?;
                    content = Content::Fill(p);
                }
                "file" if kind == MemoryKind::SubjectBinary => {
                    content = Content::Image {
                        offset: self.number(c, "offset")?,
                    }
                }
                "file" => content = Content::File,
                "hash" => hash = self.hash(c)?,
                "hashRef" => {}
                _ => return Err(self.error(c, "unexpected element")),
            }
        }
        Ok(Region {
            name: self.attr(m, "logical")?.to_string(),
            address: self.number(m, "virtualAddress")?,
            size: self.number(m, "size")?,
            writable: self.boolean(m, "writable")?,
            executable: self.boolean(m, "executable")?,
            kind,
            content,
            hash,
            role: Role::Memory,
            origin: Origin::Component,
        })
    }

    fn channel(&self, c: Node) -> Result<(Region, Option<u8>), PolicyError> {
        let (role, attr) = match c.tag_name().name() {
            "reader" => (Role::Reader, "vector"),
            "writer" => (Role::Writer, "event"),
            "array" => return Err(self.error(c, "channel arrays are not supported")),
            _ => return Err(self.error(c, "unexpected element")),
        };
        let region = Region::channel(
            self.attr(c, "logical")?,
            self.number(c, "virtualAddress")?,
            self.number(c, "size")?,
            role,
            Origin::Component,
        );
        let number = match c.attribute(attr) {
            None => None,
            Some(_) => Some(
                u8::try_from(self.number(c, attr)?)
                    .map_err(|_| self.error(c, format!("`{attr}` is out of range")))?,
            ),
        };
        Ok((region, number))
    }

    fn events(&self, node: Node, d: &mut Declared) -> Result<(), PolicyError> {
        for group in elements(node) {
            match group.tag_name().name() {
                "source" => {
                    for e in elements(group) {
                        self.expect(e, "event", "unexpected element")?;
                        let id = self.number(e, "id")?;
                        let number = u8::try_from(id)
                            .ok()
                            .filter(|n| *n <= muen_sinfo::EVENT_NUMBER_MAX)
                            .ok_or_else(|| self.error(e, "vmcall event ids are 0 to 63"))?;
                        d.source_events.push(Number {
                            name: self.attr(e, "logical")?.to_string(),
                            number,
                        });
                    }
                }
                "target" => {
                    for e in elements(group) {
                        self.expect(e, "event", "unexpected element")?;
                        let name = self.attr(e, "logical")?;
                        for action in elements(e) {
                            if action.has_tag_name("inject_interrupt") {
                                let v = u8::try_from(self.number(action, "vector")?)
                                    .map_err(|_| self.error(action, "vectors are 0 to 255"))?;
                                d.target_vectors.push(Number {
                                    name: name.to_string(),
                                    number: v,
                                });
                            }
                        }
                    }
                }
                _ => return Err(self.error(group, "unexpected element")),
            }
        }
        Ok(())
    }

    fn expect(&self, node: Node, tag: &str, otherwise: &str) -> Result<(), PolicyError> {
        if node.tag_name().name() == tag {
            Ok(())
        } else {
            Err(self.error(node, otherwise))
        }
    }

    fn attr<'n>(&self, node: Node<'n, 'input>, name: &str) -> Result<&'n str, PolicyError> {
        node.attribute(name)
            .ok_or_else(|| self.error(node, format!("attribute `{name}` is missing")))
    }

    fn number(&self, node: Node, name: &str) -> Result<u64, PolicyError> {
        let text = self.attr(node, name)?;
        parse_number(text)
            .ok_or_else(|| self.error(node, format!("`{name}`: `{text}` is not a number")))
    }

    fn boolean(&self, node: Node, name: &str) -> Result<bool, PolicyError> {
        match self.attr(node, name)? {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(self.error(node, format!("`{name}`: `{other}` is not a boolean"))),
        }
    }

    fn hash(&self, node: Node) -> Result<Option<[u8; 32]>, PolicyError> {
        let text = self.attr(node, "value")?;
        if text == "none" {
            return Ok(None);
        }
        let hex = text
            .strip_prefix("16#")
            .and_then(|t| t.strip_suffix('#'))
            .map(|t| t.replace('_', ""))
            .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error(node, "hash must be 16#<64 hex digits># or none"))?;
        let mut hash = [0u8; 32];
        for (i, byte) in hash.iter_mut().enumerate() {
            // Validated above: 64 ASCII hex digits.
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        Ok(Some(hash))
    }
}

/// The element children of `node`.
fn elements<'a, 'input>(node: Node<'a, 'input>) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(|n| n.is_element())
}

/// `<tag logical="...">`, for error messages.
fn describe(node: Node) -> String {
    if !node.is_element() {
        return String::new();
    }
    let tag = node.tag_name().name();
    match node.attribute("logical").or_else(|| node.attribute("ref")) {
        Some(name) => format!("<{tag} \"{name}\">"),
        None => format!("<{tag}>"),
    }
}

/// Parses a number as Muen's schemas write them: `16#0010_0000#` (hexadecimal) or
/// decimal digits, with optional `_` separators.
pub fn parse_number(text: &str) -> Option<u64> {
    let (digits, radix) = match text.strip_prefix("16#") {
        Some(rest) => (rest.strip_suffix('#')?, 16),
        None => (text, 10),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(&clean, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECHO: &str = include_str!("../../policy-gen/tests/snapshots/2026-01/echo.xml");
    const BLOCKSTORE: &str =
        include_str!("../../policy-gen/tests/snapshots/2026-01/blockstore.xml");
    const ECHO_ELF: &str =
        include_str!("../../policy-gen/tests/snapshots/2026-01/echo-with-elf.xml");

    fn names(w: &World) -> Vec<&str> {
        w.regions.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn numbers_in_muen_format() {
        assert_eq!(parse_number("16#0010_0000#"), Some(0x10_0000));
        assert_eq!(parse_number("16#ff#"), Some(255));
        assert_eq!(parse_number("42"), Some(42));
        assert_eq!(parse_number("1_000"), Some(1000));
        for bad in [
            "", "16#", "16##", "16#fg#", "0x10", "16#10", "-1", "_1", "1_",
        ] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
        assert_eq!(parse_number("16#1_0000_0000_0000_0000#"), None);
    }

    #[test]
    fn echo_world_in_toolchain_order() {
        let w = parse(ECHO, Path::new("echo.xml")).unwrap();
        assert_eq!(w.name, "echo");
        assert_eq!(
            names(&w),
            [
                "ram",
                "service0|in",
                "service0|out",
                "debuglog",
                "time_info",
                "sinfo",
                "scheduling_info",
                "timed_event"
            ]
        );
        let ev: Vec<_> = w
            .events
            .iter()
            .map(|e| (e.name.as_str(), e.number))
            .collect();
        assert_eq!(ev, [("exit", 0), ("timer", 1), ("service0|out", 2)]);
        let vec: Vec<_> = w
            .vectors
            .iter()
            .map(|e| (e.name.as_str(), e.number))
            .collect();
        assert_eq!(vec, [("timer", 32), ("service0|in", 33)]);
        assert_eq!(w.net.len(), 1);
        assert_eq!(w.net[0].output_event, 2);
        assert_eq!(w.net[0].input_vector, Some(33));
        assert_eq!((w.rip, w.rsp), (0x20_0000, 0x43ff_fff8));
        let ram = w.region("ram").unwrap();
        assert_eq!(
            (ram.address, ram.size, ram.kind),
            (0x4000_0000, 0x400_0000, MemoryKind::Subject)
        );
        let log = w.region("debuglog").unwrap();
        assert_eq!(
            (log.role, log.origin),
            (Role::Writer, Origin::Library(Library::Debuglog))
        );
    }

    #[test]
    fn blockstore_world_has_its_device() {
        let w = parse(BLOCKSTORE, Path::new("b.xml")).unwrap();
        assert_eq!(
            names(&w)[..5],
            [
                "ram",
                "storage|data",
                "storage|req",
                "storage|resp",
                "debuglog"
            ]
        );
        let b = &w.block[0];
        assert_eq!(b.name, "storage");
        assert_eq!(w.regions[b.data].size, 0x100_0000);
        assert_eq!(b.request_event, 2);
        assert_eq!(b.response_vector, Some(33));
    }

    #[test]
    fn the_elf_image_is_left_to_linux() {
        let w = parse(ECHO_ELF, Path::new("e.xml")).unwrap();
        assert!(w
            .regions
            .iter()
            .all(|r| r.kind != MemoryKind::SubjectBinary));
        assert_eq!(names(&w)[0], "ram");
    }

    fn error(text: &str) -> String {
        parse(text, Path::new("p.xml")).unwrap_err().to_string()
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
        let e = error("<component name=\"c\"><requires><devices/></requires></component>");
        assert!(
            e.contains("<devices>: the testbed cannot give a subject PCI devices"),
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
        let w = parse(
            "<component name=\"c\"><provides><memory logical=\"ram\" virtualAddress=\"16#1000#\" \
             size=\"16#2000#\" writable=\"true\" executable=\"false\" type=\"subject\">\
             <fill pattern=\"16#aa#\"/><hash value=\"16#00010203_04050607_08090a0b_0c0d0e0f_\
             10111213_14151617_18191a1b_1c1d1e1f#\"/></memory></provides></component>",
            Path::new("p.xml"),
        )
        .unwrap();
        let ram = w.region("ram").unwrap();
        assert_eq!(ram.content, Content::Fill(0xaa));
        let hash = ram.hash.unwrap();
        assert_eq!((hash[0], hash[31]), (0, 0x1f));
        assert!(!w.has_library(Library::Debuglog));
    }
}
