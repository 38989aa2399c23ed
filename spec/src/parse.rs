//! Reads a component specification (XML) into a [`ComponentSpec`].
//!
//! Both generations of Muen's schema are accepted ([`crate::Generation`]): `<vcpu>`'s
//! settings directly inside it (2026-01) or inside `<x86_64>` (2026-04). The reader
//! checks what the model needs (every element known, numbers in range, required
//! attributes present); it is not a schema validator: `xmllint --schema` is.
//!
//! Errors have the form `FILE:LINE:COLUMN: <element "name">: problem`.

use std::fmt;
use std::path::{Path, PathBuf};

use muen_abi::layout::Region;
use muen_abi::VirtAddr;
use muen_sinfo::MemoryKind;
use roxmltree::{Document, Node};

use crate::hex::{parse_digest, parse_number};
use crate::model::{
    ArrayElements, BitGroup, Channel, ChannelArray, ChannelEnd, ComponentSpec, Config, ConfigValue,
    Content, Device, Gpr, Hash, IoPort, Irq, MemoryArray, MsrMode, MsrRange, Profile,
    ProvidedMemory, RequiredMemory, Segment, SegmentRegister, SourceAction, SourceEvent,
    TargetAction, TargetEvent, Vcpu,
};

/// Why a specification cannot be read (or used: other crates report their own
/// problems with a specification's elements through [`SpecError::at`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    file: PathBuf,
    position: Option<(u32, u32)>,
    message: String,
}

impl SpecError {
    /// A problem with the file `file` as a whole.
    pub fn new(file: &Path, message: impl Into<String>) -> SpecError {
        SpecError {
            file: file.to_path_buf(),
            position: None,
            message: message.into(),
        }
    }

    /// A problem with the element at `place` of `file`.
    pub fn at(file: &Path, place: &Place, message: impl fmt::Display) -> SpecError {
        SpecError {
            file: file.to_path_buf(),
            position: Some((place.line, place.column)),
            message: format!("{}: {message}", place.element),
        }
    }

    /// A problem at `line` and `column` of `file` that belongs to no element (the XML
    /// itself is malformed).
    pub(crate) fn at_position(
        file: &Path,
        (line, column): (u32, u32),
        message: String,
    ) -> SpecError {
        SpecError {
            file: file.to_path_buf(),
            position: Some((line, column)),
            message,
        }
    }

    /// What is wrong, without the file and position.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The line and column, if the problem has a place.
    pub fn position(&self) -> Option<(u32, u32)> {
        self.position
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for SpecError {}

/// Where an element is in the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The line (from 1).
    pub line: u32,
    /// The column (from 1).
    pub column: u32,
    /// The element as errors name it: `<tag>` or `<tag "logical name">`.
    pub element: String,
}

/// Where the parts of a specification are that a user of the model may reject (the
/// testbed cannot give a subject everything Muen can).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Places {
    /// The `<component>` element.
    pub component: Place,
    /// Each entry of [`ComponentSpec::depends`].
    pub depends: Vec<Place>,
    /// Each entry of [`ComponentSpec::memory_arrays`].
    pub memory_arrays: Vec<Place>,
    /// Each entry of [`ComponentSpec::channel_arrays`].
    pub channel_arrays: Vec<Place>,
    /// Each entry of [`ComponentSpec::devices`].
    pub devices: Vec<Place>,
    /// Each entry of [`ComponentSpec::provides`].
    pub provides: Vec<Place>,
}

/// Reads the specification `text`; `file` names it in errors.
pub fn parse(text: &str, file: &Path) -> Result<ComponentSpec> {
    parse_with_places(text, file).map(|(spec, _)| spec)
}

/// Reads the specification `text` and says where its parts are; `file` names it in
/// errors.
pub fn parse_with_places(text: &str, file: &Path) -> Result<(ComponentSpec, Places)> {
    let doc = Document::parse(text).map_err(|e| {
        let pos = e.pos();
        SpecError::at_position(
            file,
            (pos.row, pos.col),
            format!("not well-formed XML: {e}"),
        )
    })?;
    Reader { doc: &doc, file }.component()
}

/// The element reader shared by the component reader here and the system policy reader
/// ([`crate::system`]): positions, attributes, numbers and the parts both formats have.
pub(crate) struct Reader<'a, 'input> {
    pub(crate) doc: &'a Document<'input>,
    pub(crate) file: &'a Path,
}

pub(crate) type Result<T> = std::result::Result<T, SpecError>;

impl<'a, 'input> Reader<'a, 'input> {
    pub(crate) fn place(&self, node: Node) -> Place {
        let pos = self.doc.text_pos_at(node.range().start);
        Place {
            line: pos.row,
            column: pos.col,
            element: describe(node),
        }
    }

    pub(crate) fn error(&self, node: Node, message: impl fmt::Display) -> SpecError {
        SpecError::at(self.file, &self.place(node), message)
    }

    fn component(&self) -> Result<(ComponentSpec, Places)> {
        let root = self.doc.root_element();
        if root.tag_name().name() != "component" {
            return Err(self.error(
                root,
                "expected a <component> specification (as policy-gen writes it)",
            ));
        }
        let mut spec = ComponentSpec {
            name: self.attr(root, "name")?.to_string(),
            ..ComponentSpec::default()
        };
        if let Some(p) = root.attribute("profile") {
            spec.profile = Profile::from_policy_name(p)
                .ok_or_else(|| self.error(root, format!("unknown profile `{p}`")))?;
        }
        let mut places = Places {
            component: self.place(root),
            depends: Vec::new(),
            memory_arrays: Vec::new(),
            channel_arrays: Vec::new(),
            devices: Vec::new(),
            provides: Vec::new(),
        };
        for child in elements(root) {
            match child.tag_name().name() {
                "config" => spec.config = self.config(child)?,
                "depends" => {
                    for lib in elements(child) {
                        self.expect(lib, "library")?;
                        spec.depends.push(self.attr(lib, "ref")?.to_string());
                        places.depends.push(self.place(lib));
                    }
                }
                "requires" => self.requires(child, &mut spec, &mut places)?,
                "provides" => {
                    for m in elements(child) {
                        self.expect(m, "memory")?;
                        spec.provides.push(self.provided(m)?);
                        places.provides.push(self.place(m));
                    }
                }
                _ => return Err(self.error(child, "unexpected element")),
            }
        }
        Ok((spec, places))
    }

    fn config(&self, node: Node) -> Result<Config> {
        let mut config = Config::default();
        for v in elements(node) {
            let name = self.attr(v, "name")?.to_string();
            let text = self.attr(v, "value")?;
            match v.tag_name().name() {
                "boolean" => config.booleans.push(ConfigValue {
                    name,
                    value: self.boolean(v, "value")?,
                }),
                "integer" => config.integers.push(ConfigValue {
                    name,
                    value: text.parse().map_err(|_| {
                        self.error(v, format!("`value`: `{text}` is not a 64-bit integer"))
                    })?,
                }),
                "string" => config.strings.push(ConfigValue {
                    name,
                    value: text.to_string(),
                }),
                _ => return Err(self.error(v, "unexpected element")),
            }
        }
        Ok(config)
    }

    fn requires(&self, node: Node, spec: &mut ComponentSpec, places: &mut Places) -> Result<()> {
        for child in elements(node) {
            match child.tag_name().name() {
                "vcpu" => spec.vcpu = self.vcpu(child)?,
                "memory" => {
                    for m in elements(child) {
                        match m.tag_name().name() {
                            "memory" => spec.memory.push(self.required(m)?),
                            "array" => {
                                spec.memory_arrays.push(self.memory_array(m)?);
                                places.memory_arrays.push(self.place(m));
                            }
                            _ => return Err(self.error(m, "unexpected element")),
                        }
                    }
                }
                "channels" => {
                    for c in elements(child) {
                        match c.tag_name().name() {
                            "reader" | "writer" => spec.channels.push(self.channel(c)?),
                            "array" => {
                                spec.channel_arrays.push(self.channel_array(c)?);
                                places.channel_arrays.push(self.place(c));
                            }
                            _ => return Err(self.error(c, "unexpected element")),
                        }
                    }
                }
                "devices" => {
                    for d in elements(child) {
                        self.expect(d, "device")?;
                        spec.devices.push(self.device(d)?);
                        places.devices.push(self.place(d));
                    }
                }
                "events" => self.events(child, spec)?,
                _ => return Err(self.error(child, "unexpected element")),
            }
        }
        Ok(())
    }

    /// `<vcpu>`, with its settings directly inside (2026-01) or in `<x86_64>` (2026-04).
    pub(crate) fn vcpu(&self, node: Node) -> Result<Vcpu> {
        let mut vcpu = Vcpu::default();
        let children: Vec<Node> = elements(node).collect();
        let body = match children.iter().find(|c| c.has_tag_name("x86_64")) {
            Some(&arch) => {
                if let Some(other) = children.iter().find(|c| !c.has_tag_name("x86_64")) {
                    return Err(self.error(*other, "unexpected element beside <x86_64>"));
                }
                arch
            }
            None => node,
        };
        for c in elements(body) {
            match c.tag_name().name() {
                "vmx" => {
                    for part in elements(c) {
                        let parent = part.tag_name().name();
                        if parent != "controls" && parent != "masks" {
                            return Err(self.error(part, "unexpected element"));
                        }
                        for group in elements(part) {
                            let path = ["vmx", parent, group.tag_name().name()];
                            self.bit_group(group, &path, &mut vcpu)?;
                        }
                    }
                }
                "msrs" => {
                    for m in elements(c) {
                        self.expect(m, "msr")?;
                        let mode = self.attr(m, "mode")?;
                        vcpu.msrs.push(MsrRange {
                            start: self.sized(m, "start")?,
                            end: self.sized(m, "end")?,
                            mode: MsrMode::from_policy_name(mode).ok_or_else(|| {
                                self.error(m, format!("`mode`: `{mode}` is not r, w or rw"))
                            })?,
                        });
                    }
                }
                "registers" => {
                    for r in elements(c) {
                        match r.tag_name().name() {
                            "gpr" => self.gpr(r, &mut vcpu)?,
                            "segments" => self.segments(r, &mut vcpu)?,
                            name => self.bit_group(r, &["registers", name], &mut vcpu)?,
                        }
                    }
                }
                "arm64" => {
                    return Err(self.error(c, "arm64 vCPU settings are not supported"));
                }
                _ => return Err(self.error(c, "unexpected element")),
            }
        }
        Ok(vcpu)
    }

    fn bit_group(&self, node: Node, path: &[&str], vcpu: &mut Vcpu) -> Result<()> {
        let group = BitGroup::ALL
            .into_iter()
            .find(|g| g.path() == path)
            .ok_or_else(|| self.error(node, "unexpected element"))?;
        for b in elements(node) {
            let value = match b.text().unwrap_or("").trim() {
                "0" => false,
                "1" => true,
                other => return Err(self.error(b, format!("`{other}` is not 0 or 1"))),
            };
            vcpu.set_bit(group, b.tag_name().name(), value);
        }
        Ok(())
    }

    fn gpr(&self, node: Node, vcpu: &mut Vcpu) -> Result<()> {
        for r in elements(node) {
            let text = r.text().unwrap_or("").trim();
            let value = parse_number(text)
                .ok_or_else(|| self.error(r, format!("`{text}` is not a number")))?;
            let registers = &mut vcpu.registers;
            match r.tag_name().name() {
                "rip" => registers.rip = Some(VirtAddr::new(value)),
                "rsp" => registers.rsp = Some(VirtAddr::new(value)),
                name => {
                    let gpr = Gpr::from_policy_name(name)
                        .ok_or_else(|| self.error(r, "unexpected element"))?;
                    registers.others.insert(gpr, value);
                }
            }
        }
        Ok(())
    }

    fn segments(&self, node: Node, vcpu: &mut Vcpu) -> Result<()> {
        for s in elements(node) {
            let register = SegmentRegister::from_policy_name(s.tag_name().name())
                .ok_or_else(|| self.error(s, "unexpected element"))?;
            let segment = Segment {
                selector: self.sized(s, "selector")?,
                base: self.number(s, "base")?,
                limit: self.sized(s, "limit")?,
                access: self.sized(s, "access")?,
            };
            vcpu.segments.insert(register, segment);
        }
        Ok(())
    }

    fn region(&self, node: Node, address: &str) -> Result<Region> {
        Ok(Region {
            address: VirtAddr::new(self.number(node, address)?),
            size: self.number(node, "size")?,
        })
    }

    fn required(&self, m: Node) -> Result<RequiredMemory> {
        if let Some(child) = elements(m).next() {
            return Err(self.error(child, "unexpected element"));
        }
        Ok(RequiredMemory {
            logical: self.attr(m, "logical")?.to_string(),
            region: self.region(m, "virtualAddress")?,
            writable: self.boolean(m, "writable")?,
            executable: self.boolean(m, "executable")?,
        })
    }

    fn memory_array(&self, a: Node) -> Result<MemoryArray> {
        let mut elements_ = Vec::new();
        for e in elements(a) {
            self.expect(e, "memory")?;
            elements_.push(self.attr(e, "logical")?.to_string());
        }
        Ok(MemoryArray {
            logical: self.attr(a, "logical")?.to_string(),
            writable: self.boolean(a, "writable")?,
            executable: self.boolean(a, "executable")?,
            address: VirtAddr::new(self.number(a, "virtualAddressBase")?),
            element_size: self.number(a, "elementSize")?,
            elements: elements_,
        })
    }

    fn channel(&self, c: Node) -> Result<Channel> {
        let end = match c.tag_name().name() {
            "reader" => ChannelEnd::Reader {
                vector: self.optional_sized(c, "vector")?,
            },
            _ => ChannelEnd::Writer {
                event: self.optional_sized(c, "event")?,
            },
        };
        Ok(Channel {
            logical: self.attr(c, "logical")?.to_string(),
            region: self.region(c, "virtualAddress")?,
            end,
        })
    }

    fn channel_array(&self, a: Node) -> Result<ChannelArray> {
        let mut readers = Vec::new();
        let mut writers = Vec::new();
        for e in elements(a) {
            let list = match e.tag_name().name() {
                "reader" => &mut readers,
                "writer" => &mut writers,
                _ => return Err(self.error(e, "unexpected element")),
            };
            list.push(self.attr(e, "logical")?.to_string());
        }
        let elements_ = match (readers.is_empty(), writers.is_empty()) {
            (_, true) => ArrayElements::Readers(readers),
            (true, false) => ArrayElements::Writers(writers),
            (false, false) => {
                return Err(self.error(a, "an array holds readers or writers, not both"))
            }
        };
        Ok(ChannelArray {
            logical: self.attr(a, "logical")?.to_string(),
            address: VirtAddr::new(self.number(a, "virtualAddressBase")?),
            element_size: self.number(a, "elementSize")?,
            event_base: match a.attribute("eventBase") {
                None => None,
                Some(_) => Some(self.number(a, "eventBase")?),
            },
            vector_base: self.optional_sized(a, "vectorBase")?,
            elements: elements_,
        })
    }

    fn device(&self, d: Node) -> Result<Device> {
        let mut device = Device {
            logical: self.attr(d, "logical")?.to_string(),
            irqs: Vec::new(),
            memory: Vec::new(),
            io_ports: Vec::new(),
        };
        for c in elements(d) {
            match c.tag_name().name() {
                "irq" => {
                    let mut msis = Vec::new();
                    for m in elements(c) {
                        self.expect(m, "msi")?;
                        msis.push(self.attr(m, "logical")?.to_string());
                    }
                    device.irqs.push(Irq {
                        logical: self.attr(c, "logical")?.to_string(),
                        vector: self.sized(c, "vector")?,
                        msis,
                    });
                }
                "memory" => device.memory.push(self.required(c)?),
                "ioPort" => device.io_ports.push(IoPort {
                    logical: self.attr(c, "logical")?.to_string(),
                    start: self.sized(c, "start")?,
                    end: self.sized(c, "end")?,
                }),
                _ => return Err(self.error(c, "unexpected element")),
            }
        }
        Ok(device)
    }

    fn events(&self, node: Node, spec: &mut ComponentSpec) -> Result<()> {
        for group in elements(node) {
            match group.tag_name().name() {
                "source" => {
                    for e in elements(group) {
                        self.expect(e, "event")?;
                        let id = self.number(e, "id")?;
                        let id = u8::try_from(id)
                            .ok()
                            .filter(|n| *n <= muen_sinfo::EVENT_NUMBER_MAX)
                            .ok_or_else(|| self.error(e, "vmcall event ids are 0 to 63"))?;
                        spec.events.source.push(SourceEvent {
                            logical: self.attr(e, "logical")?.to_string(),
                            id,
                            action: self.source_action(e)?,
                        });
                    }
                }
                "target" => {
                    for e in elements(group) {
                        self.expect(e, "event")?;
                        spec.events.target.push(TargetEvent {
                            logical: self.attr(e, "logical")?.to_string(),
                            id: match e.attribute("id") {
                                None => None,
                                Some(_) => Some(self.number(e, "id")?),
                            },
                            action: self.target_action(e)?,
                        });
                    }
                }
                _ => return Err(self.error(group, "unexpected element")),
            }
        }
        Ok(())
    }

    /// The one action element of an event, if any.
    fn action<'n>(&self, event: Node<'n, 'input>) -> Result<Option<Node<'n, 'input>>> {
        let mut actions = elements(event);
        let first = actions.next();
        if let Some(second) = actions.next() {
            return Err(self.error(second, "an event has at most one action"));
        }
        Ok(first)
    }

    pub(crate) fn source_action(&self, event: Node) -> Result<Option<SourceAction>> {
        let Some(a) = self.action(event)? else {
            return Ok(None);
        };
        let name = a.tag_name().name();
        if name == "unmask_irq" {
            return Ok(Some(SourceAction::UnmaskIrq(self.sized(a, "number")?)));
        }
        SourceAction::PLAIN
            .into_iter()
            .find(|p| p.policy_name() == name)
            .map(Some)
            .ok_or_else(|| self.error(a, "unexpected element"))
    }

    pub(crate) fn target_action(&self, event: Node) -> Result<Option<TargetAction>> {
        let Some(a) = self.action(event)? else {
            return Ok(None);
        };
        match a.tag_name().name() {
            "inject_interrupt" => {
                let vector = u8::try_from(self.number(a, "vector")?)
                    .map_err(|_| self.error(a, "vectors are 0 to 255"))?;
                Ok(Some(TargetAction::InjectInterrupt { vector }))
            }
            "reset" => Ok(Some(TargetAction::Reset)),
            _ => Err(self.error(a, "unexpected element")),
        }
    }

    fn provided(&self, m: Node) -> Result<ProvidedMemory> {
        let kind = match m.attribute("type") {
            None => MemoryKind::Subject,
            Some(t) => MemoryKind::from_policy_name(t)
                .ok_or_else(|| self.error(m, format!("unknown memory type `{t}`")))?,
        };
        let (content, hash) = self.content(m)?;
        Ok(ProvidedMemory {
            logical: self.attr(m, "logical")?.to_string(),
            region: self.region(m, "virtualAddress")?,
            writable: self.boolean(m, "writable")?,
            executable: self.boolean(m, "executable")?,
            kind,
            content,
            hash,
        })
    }

    /// The content (`<fill>`, `<file>`) and hash (`<hash>`, `<hashRef>`) children of a
    /// memory region; any other child is an error.
    pub(crate) fn content(&self, m: Node) -> Result<(Content, Option<Hash>)> {
        let mut content = Content::Unspecified;
        let mut hash = None;
        for c in elements(m) {
            match c.tag_name().name() {
                "fill" => {
                    let p = self.number(c, "pattern")?;
                    let p = u8::try_from(p)
                        .map_err(|_| self.error(c, "fill pattern must be a byte"))?;
                    content = Content::Fill(p);
                }
                "file" => {
                    let offset = match self.attr(c, "offset")? {
                        "none" => None,
                        _ => Some(self.number(c, "offset")?),
                    };
                    content = Content::File {
                        filename: self.attr(c, "filename")?.to_string(),
                        offset,
                    };
                }
                "hash" => {
                    let text = self.attr(c, "value")?;
                    hash = Some(match text {
                        "none" => Hash::Omitted,
                        _ => Hash::Sha256(parse_digest(text).ok_or_else(|| {
                            self.error(c, "hash must be 16#<64 hex digits># or none")
                        })?),
                    });
                }
                "hashRef" => hash = Some(Hash::Ref(self.attr(c, "memory")?.to_string())),
                _ => return Err(self.error(c, "unexpected element")),
            }
        }
        Ok((content, hash))
    }

    pub(crate) fn expect(&self, node: Node, tag: &str) -> Result<()> {
        if node.tag_name().name() == tag {
            Ok(())
        } else {
            Err(self.error(node, "unexpected element"))
        }
    }

    pub(crate) fn attr<'n>(&self, node: Node<'n, 'input>, name: &str) -> Result<&'n str> {
        node.attribute(name)
            .ok_or_else(|| self.error(node, format!("attribute `{name}` is missing")))
    }

    pub(crate) fn number(&self, node: Node, name: &str) -> Result<u64> {
        let text = self.attr(node, name)?;
        parse_number(text)
            .ok_or_else(|| self.error(node, format!("`{name}`: `{text}` is not a number")))
    }

    /// A number that must fit `T` (a vector, an MSR, a port ...).
    pub(crate) fn sized<T: TryFrom<u64>>(&self, node: Node, name: &str) -> Result<T> {
        T::try_from(self.number(node, name)?)
            .map_err(|_| self.error(node, format!("`{name}` is out of range")))
    }

    pub(crate) fn optional_sized<T: TryFrom<u64>>(
        &self,
        node: Node,
        name: &str,
    ) -> Result<Option<T>> {
        match node.attribute(name) {
            None => Ok(None),
            Some(_) => self.sized(node, name).map(Some),
        }
    }

    pub(crate) fn boolean(&self, node: Node, name: &str) -> Result<bool> {
        match self.attr(node, name)? {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(self.error(node, format!("`{name}`: `{other}` is not a boolean"))),
        }
    }
}

/// The element children of `node`.
pub(crate) fn elements<'a, 'input>(
    node: Node<'a, 'input>,
) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(|n| n.is_element())
}

/// `<tag "logical">` (or the `ref` of a library), for error messages.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::bits;
    use crate::{write, Generation};

    fn error(text: &str) -> String {
        parse(text, Path::new("p.xml")).unwrap_err().to_string()
    }

    fn component(requires: &str) -> String {
        format!(
            "<component name=\"c\" profile=\"native\"><requires>{requires}</requires></component>"
        )
    }

    #[test]
    fn both_generations_of_vcpu_read_the_same() {
        let old = component(
            "<vcpu><vmx><controls><proc><HLTExiting>1</HLTExiting></proc></controls></vmx>\
             <msrs><msr start=\"16#c000_0100#\" end=\"16#c000_0100#\" mode=\"rw\"/></msrs>\
             <registers><gpr><rip>16#0020_0000#</rip><rdi>16#1000#</rdi></gpr>\
             <cr4><OSSupportSIMDExceptions>1</OSSupportSIMDExceptions></cr4></registers></vcpu>",
        );
        let new = old
            .replace("<vcpu>", "<vcpu><x86_64>")
            .replace("</vcpu>", "</x86_64></vcpu>");
        let a = parse(&old, Path::new("old.xml")).unwrap();
        let b = parse(&new, Path::new("new.xml")).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.vcpu.bit(BitGroup::ProcControls, bits::HLT_EXITING),
            Some(true)
        );
        assert!(a.vcpu.simd_exceptions());
        assert_eq!(a.vcpu.registers.rip, Some(VirtAddr::new(0x20_0000)));
        assert_eq!(a.vcpu.registers.others.get(&Gpr::Rdi), Some(&0x1000));
        assert_eq!(
            a.vcpu.msrs,
            [MsrRange {
                start: 0xc000_0100,
                end: 0xc000_0100,
                mode: MsrMode::ReadWrite
            }]
        );
        assert_eq!(
            write(&a, Generation::V2026_04),
            write(&b, Generation::V2026_04)
        );
        // An empty <vcpu/> and an empty <x86_64/> ask for nothing.
        for empty in ["<vcpu/>", "<vcpu><x86_64/></vcpu>"] {
            let s = parse(&component(empty), Path::new("p.xml")).unwrap();
            assert!(s.vcpu.is_empty());
        }
    }

    #[test]
    fn errors_name_the_element() {
        assert_eq!(
            error("<library name=\"x\"/>"),
            "p.xml:1:1: <library>: expected a <component> specification (as policy-gen writes it)"
        );
        assert!(error("<component").starts_with("p.xml:1:"));
        let e = error(&component("<vcpu><arm64/></vcpu>"));
        assert!(
            e.ends_with("<arm64>: arm64 vCPU settings are not supported"),
            "{e}"
        );
        let e = error(&component("<vcpu><x86_64/><vmx/></vcpu>"));
        assert!(
            e.ends_with("<vmx>: unexpected element beside <x86_64>"),
            "{e}"
        );
        let e = error(&component(
            "<vcpu><registers><cr4><OSSupportSIMDExceptions>2</OSSupportSIMDExceptions>\
             </cr4></registers></vcpu>",
        ));
        assert!(
            e.ends_with("<OSSupportSIMDExceptions>: `2` is not 0 or 1"),
            "{e}"
        );
        let e = error(&component(
            "<vcpu><registers><gpr><rip>0x10</rip></gpr></registers></vcpu>",
        ));
        assert!(e.ends_with("<rip>: `0x10` is not a number"), "{e}");
        let e = error(&component(
            "<vcpu><registers><gpr><rzz>1</rzz></gpr></registers></vcpu>",
        ));
        assert!(e.ends_with("<rzz>: unexpected element"), "{e}");
        let e = error(&component(
            "<vcpu><vmx><controls><pin2/></controls></vmx></vcpu>",
        ));
        assert!(e.ends_with("<pin2>: unexpected element"), "{e}");
        let e = error(&component(
            "<vcpu><msrs><msr start=\"16#0001_0000_0000#\" end=\"16#0000#\" mode=\"r\"/></msrs></vcpu>",
        ));
        assert!(e.ends_with("<msr>: `start` is out of range"), "{e}");
        let e = error(&component(
            "<events><source><event id=\"64\" logical=\"x\"/></source></events>",
        ));
        assert!(
            e.ends_with("<event \"x\">: vmcall event ids are 0 to 63"),
            "{e}"
        );
        let e = error(&component(
            "<events><target><event logical=\"x\"><reset/><reset/></event></target></events>",
        ));
        assert!(
            e.ends_with("<reset>: an event has at most one action"),
            "{e}"
        );
        let e = error(
            "<component name=\"c\"><config><integer name=\"n\" value=\"1.5\"/></config></component>",
        );
        assert!(
            e.ends_with("<integer>: `value`: `1.5` is not a 64-bit integer"),
            "{e}"
        );
        let e = error("<component name=\"c\" profile=\"rtos\"/>");
        assert_eq!(e, "p.xml:1:1: <component>: unknown profile `rtos`");
        let e = error(
            "<component name=\"c\"><provides><memory logical=\"m\" virtualAddress=\"16#1000#\" \
             size=\"16#1000#\" writable=\"true\" executable=\"false\" type=\"kernel\"/>\
             </provides></component>",
        );
        assert!(
            e.ends_with("<memory \"m\">: unknown memory type `kernel`"),
            "{e}"
        );
        let e = error(
            "<component name=\"c\"><provides><memory logical=\"m\" virtualAddress=\"16#1000#\" \
             size=\"16#1000#\" writable=\"true\" executable=\"false\"><hash value=\"16#00#\"/>\
             </memory></provides></component>",
        );
        assert!(
            e.ends_with("<hash>: hash must be 16#<64 hex digits># or none"),
            "{e}"
        );
        let e = error(
            "<component name=\"c\"><requires><channels><array logical=\"a\" \
             virtualAddressBase=\"16#1000#\" elementSize=\"16#1000#\"><reader logical=\"r\"/>\
             <writer logical=\"w\"/></array></channels></requires></component>",
        );
        assert!(
            e.ends_with("<array \"a\">: an array holds readers or writers, not both"),
            "{e}"
        );
    }

    #[test]
    fn places_point_at_the_elements() {
        let text = "<component name=\"c\">\n <depends>\n  <library ref=\"a\"/>\n  \
                    <library ref=\"b\"/>\n </depends>\n</component>";
        let (spec, places) = parse_with_places(text, Path::new("p.xml")).unwrap();
        assert_eq!(spec.depends, ["a", "b"]);
        assert_eq!((places.component.line, places.component.column), (1, 1));
        let b = &places.depends[1];
        assert_eq!(
            (b.line, b.column, b.element.as_str()),
            (4, 3, "<library \"b\">")
        );
        let e = SpecError::at(Path::new("p.xml"), b, "not here");
        assert_eq!(e.to_string(), "p.xml:4:3: <library \"b\">: not here");
        assert_eq!(e.position(), Some((4, 3)));
        assert_eq!(
            SpecError::new(Path::new("q.xml"), "gone").to_string(),
            "q.xml: gone"
        );
    }

    #[test]
    fn content_and_hash_forms() {
        let spec = parse(
            "<component name=\"c\"><provides>\
             <memory logical=\"a\" virtualAddress=\"16#1000#\" size=\"16#1000#\" writable=\"false\" \
             executable=\"true\" type=\"subject_binary\"><file filename=\"muinit\" offset=\"none\"/>\
             <hash value=\"none\"/></memory>\
             <memory logical=\"b\" virtualAddress=\"16#2000#\" size=\"16#1000#\" writable=\"true\" \
             executable=\"false\"><fill pattern=\"16#ff#\"/><hashRef memory=\"a\"/></memory>\
             </provides></component>",
            Path::new("p.xml"),
        )
        .unwrap();
        let [a, b] = &spec.provides[..] else {
            panic!("two regions")
        };
        assert_eq!(
            a.content,
            Content::File {
                filename: "muinit".into(),
                offset: None
            }
        );
        assert_eq!(a.hash, Some(Hash::Omitted));
        assert_eq!(b.kind, MemoryKind::Subject);
        assert_eq!(b.content, Content::Fill(0xff));
        assert_eq!(b.hash, Some(Hash::Ref("a".into())));
        // Written back, the missing `type` is explicit.
        let again = parse(&write(&spec, Generation::V2026_01), Path::new("q.xml")).unwrap();
        assert_eq!(again, spec);
    }
}
