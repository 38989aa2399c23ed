//! Writes a [`ComponentSpec`] as XML for one [`Generation`] of Muen's tools.
//!
//! The document is deterministic: elements in the schema's order, attributes in the
//! order Muen's own specifications use, one space of indentation per level, numbers
//! in the forms of [`crate::hex`]. Empty optional sections are left out (the schema
//! requires at least one entry in `<depends>`, `<provides>`, `<source>` and
//! `<target>`).

use std::io;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use crate::hex::{byte, digest, word64};
use crate::model::{
    ArrayElements, BitGroup, Channel, ChannelArray, ChannelEnd, ComponentSpec, Content, Device,
    Hash, MemoryArray, ProvidedMemory, RequiredMemory, SourceAction, TargetAction, Vcpu,
};
use crate::Generation;

/// The XML of `spec` for the tools of `generation`.
pub fn write(spec: &ComponentSpec, generation: Generation) -> String {
    document(spec, generation, None)
}

/// The XML of `spec` for the tools of `generation`, with `comment` after the XML
/// declaration (a `--` in it is written as `- -`, which XML requires).
pub fn write_with_comment(spec: &ComponentSpec, generation: Generation, comment: &str) -> String {
    document(spec, generation, Some(comment))
}

fn document(spec: &ComponentSpec, generation: Generation, comment: Option<&str>) -> String {
    let mut out = Out {
        w: Writer::new_with_indent(Vec::new(), b' ', 1),
        generation,
    };
    // Writing into a `Vec` cannot fail, and everything written is `&str`, so the
    // document is UTF-8; neither `expect` can fire.
    out.component(spec, comment)
        .expect("writing XML into memory cannot fail");
    let mut xml = out.w.into_inner();
    xml.push(b'\n');
    String::from_utf8(xml).expect("the document is built from UTF-8 strings")
}

struct Out {
    w: Writer<Vec<u8>>,
    generation: Generation,
}

type Attributes<'a> = &'a [(&'a str, &'a str)];

impl Out {
    fn start(&mut self, tag: &str, attributes: Attributes<'_>) -> io::Result<()> {
        let element = BytesStart::new(tag).with_attributes(attributes.iter().copied());
        self.w.write_event(Event::Start(element))
    }

    fn end(&mut self, tag: &str) -> io::Result<()> {
        self.w.write_event(Event::End(BytesEnd::new(tag)))
    }

    fn empty(&mut self, tag: &str, attributes: Attributes<'_>) -> io::Result<()> {
        let element = BytesStart::new(tag).with_attributes(attributes.iter().copied());
        self.w.write_event(Event::Empty(element))
    }

    fn text(&mut self, tag: &str, text: &str) -> io::Result<()> {
        self.w
            .create_element(tag)
            .write_text_content(BytesText::new(text))?;
        Ok(())
    }

    /// `<tag attributes>` with what `content` writes, or `<tag attributes/>` if it has
    /// no content.
    fn element(
        &mut self,
        tag: &str,
        attributes: Attributes<'_>,
        has_content: bool,
        content: impl FnOnce(&mut Out) -> io::Result<()>,
    ) -> io::Result<()> {
        if !has_content {
            return self.empty(tag, attributes);
        }
        self.start(tag, attributes)?;
        content(self)?;
        self.end(tag)
    }

    fn component(&mut self, spec: &ComponentSpec, comment: Option<&str>) -> io::Result<()> {
        self.w
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        if let Some(comment) = comment {
            let text = format!(" {} ", comment.replace("--", "- -"));
            self.w
                .write_event(Event::Comment(BytesText::from_escaped(text.as_str())))?;
        }
        self.start(
            "component",
            &[
                ("name", spec.name.as_str()),
                ("profile", spec.profile.policy_name()),
            ],
        )?;
        self.config(spec)?;
        if !spec.depends.is_empty() {
            self.start("depends", &[])?;
            for library in &spec.depends {
                self.empty("library", &[("ref", library)])?;
            }
            self.end("depends")?;
        }
        self.requires(spec)?;
        if !spec.provides.is_empty() {
            self.start("provides", &[])?;
            for m in &spec.provides {
                self.provided(m)?;
            }
            self.end("provides")?;
        }
        self.end("component")
    }

    fn config(&mut self, spec: &ComponentSpec) -> io::Result<()> {
        let c = &spec.config;
        if c.is_empty() {
            return Ok(());
        }
        self.start("config", &[])?;
        for v in &c.booleans {
            let value = if v.value { "true" } else { "false" };
            self.empty("boolean", &[("name", &v.name), ("value", value)])?;
        }
        for v in &c.integers {
            self.empty(
                "integer",
                &[("name", &v.name), ("value", &v.value.to_string())],
            )?;
        }
        for v in &c.strings {
            self.empty("string", &[("name", &v.name), ("value", &v.value)])?;
        }
        self.end("config")
    }

    fn requires(&mut self, spec: &ComponentSpec) -> io::Result<()> {
        let memory = !spec.memory.is_empty() || !spec.memory_arrays.is_empty();
        let channels = !spec.channels.is_empty() || !spec.channel_arrays.is_empty();
        let events = !spec.events.source.is_empty() || !spec.events.target.is_empty();
        if spec.vcpu.is_empty() && !memory && !channels && spec.devices.is_empty() && !events {
            return Ok(());
        }
        self.start("requires", &[])?;
        if !spec.vcpu.is_empty() {
            self.start("vcpu", &[])?;
            if self.generation.vcpu_has_architecture() {
                self.start("x86_64", &[])?;
                self.vcpu(&spec.vcpu)?;
                self.end("x86_64")?;
            } else {
                self.vcpu(&spec.vcpu)?;
            }
            self.end("vcpu")?;
        }
        if memory {
            self.start("memory", &[])?;
            for m in &spec.memory {
                self.required("memory", m)?;
            }
            for a in &spec.memory_arrays {
                self.memory_array(a)?;
            }
            self.end("memory")?;
        }
        if channels {
            self.start("channels", &[])?;
            for c in &spec.channels {
                self.channel(c)?;
            }
            for a in &spec.channel_arrays {
                self.channel_array(a)?;
            }
            self.end("channels")?;
        }
        if !spec.devices.is_empty() {
            self.start("devices", &[])?;
            for d in &spec.devices {
                self.device(d)?;
            }
            self.end("devices")?;
        }
        if events {
            self.events(spec)?;
        }
        self.end("requires")
    }

    /// The vCPU's children: `<vmx>`, `<msrs>`, `<registers>`, each if it has content.
    fn vcpu(&mut self, vcpu: &Vcpu) -> io::Result<()> {
        let in_vmx = |g: &BitGroup| g.path()[0] == "vmx";
        if vcpu.bits.keys().any(in_vmx) {
            self.start("vmx", &[])?;
            for parent in ["controls", "masks"] {
                let groups: Vec<_> = vcpu
                    .bits
                    .iter()
                    .filter(|(g, bits)| g.path()[1] == parent && !bits.is_empty())
                    .collect();
                if groups.is_empty() {
                    continue;
                }
                self.start(parent, &[])?;
                for (group, bits) in groups {
                    self.bits(group.path()[2], bits)?;
                }
                self.end(parent)?;
            }
            self.end("vmx")?;
        }
        if !vcpu.msrs.is_empty() {
            self.start("msrs", &[])?;
            for m in &vcpu.msrs {
                self.empty(
                    "msr",
                    &[
                        ("start", &word64(u64::from(m.start))),
                        ("end", &word64(u64::from(m.end))),
                        ("mode", m.mode.policy_name()),
                    ],
                )?;
            }
            self.end("msrs")?;
        }
        let registers = vcpu.bits.keys().any(|g| !in_vmx(g));
        if registers || !vcpu.registers.is_empty() || !vcpu.segments.is_empty() {
            self.start("registers", &[])?;
            let r = &vcpu.registers;
            if !r.is_empty() {
                self.start("gpr", &[])?;
                if let Some(rip) = r.rip {
                    self.text("rip", &word64(rip.as_u64()))?;
                }
                if let Some(rsp) = r.rsp {
                    self.text("rsp", &word64(rsp.as_u64()))?;
                }
                for (gpr, value) in &r.others {
                    self.text(gpr.policy_name(), &word64(*value))?;
                }
                self.end("gpr")?;
            }
            for (group, bits) in vcpu.bits.iter().filter(|(g, _)| !in_vmx(g)) {
                if !bits.is_empty() {
                    self.bits(group.path()[1], bits)?;
                }
            }
            if !vcpu.segments.is_empty() {
                self.start("segments", &[])?;
                for (register, s) in &vcpu.segments {
                    self.empty(
                        register.policy_name(),
                        &[
                            ("selector", &word64(u64::from(s.selector))),
                            ("base", &word64(s.base)),
                            ("limit", &word64(u64::from(s.limit))),
                            ("access", &word64(u64::from(s.access))),
                        ],
                    )?;
                }
                self.end("segments")?;
            }
            self.end("registers")?;
        }
        Ok(())
    }

    fn bits(&mut self, tag: &str, bits: &[crate::model::Bit]) -> io::Result<()> {
        self.start(tag, &[])?;
        for b in bits {
            self.text(&b.name, if b.value { "1" } else { "0" })?;
        }
        self.end(tag)
    }

    fn required(&mut self, tag: &str, m: &RequiredMemory) -> io::Result<()> {
        self.empty(
            tag,
            &[
                ("logical", &m.logical),
                ("writable", bool_text(m.writable)),
                ("executable", bool_text(m.executable)),
                ("size", &word64(m.region.size)),
                ("virtualAddress", &word64(m.region.address.as_u64())),
            ],
        )
    }

    fn memory_array(&mut self, a: &MemoryArray) -> io::Result<()> {
        let attributes = [
            ("logical", a.logical.as_str()),
            ("writable", bool_text(a.writable)),
            ("executable", bool_text(a.executable)),
            ("virtualAddressBase", &word64(a.address.as_u64())),
            ("elementSize", &word64(a.element_size)),
        ];
        let inner = |out: &mut Out| {
            for e in &a.elements {
                out.empty("memory", &[("logical", e)])?;
            }
            Ok(())
        };
        let has_elements = !a.elements.is_empty();
        self.element("array", &attributes, has_elements, inner)
    }

    fn channel(&mut self, c: &Channel) -> io::Result<()> {
        let address = word64(c.region.address.as_u64());
        let size = word64(c.region.size);
        let mut attributes = vec![
            ("logical", c.logical.as_str()),
            ("virtualAddress", address.as_str()),
            ("size", size.as_str()),
        ];
        let (tag, number) = match c.end {
            ChannelEnd::Reader { vector } => ("reader", vector.map(|v| ("vector", v))),
            ChannelEnd::Writer { event } => ("writer", event.map(|e| ("event", e))),
        };
        let number = number.map(|(key, n)| (key, n.to_string()));
        if let Some((key, n)) = &number {
            attributes.push((key, n.as_str()));
        }
        self.empty(tag, &attributes)
    }

    fn channel_array(&mut self, a: &ChannelArray) -> io::Result<()> {
        let address = word64(a.address.as_u64());
        let size = word64(a.element_size);
        let event_base = a.event_base.map(|e| e.to_string());
        let vector_base = a.vector_base.map(|v| v.to_string());
        let mut attributes = vec![
            ("logical", a.logical.as_str()),
            ("virtualAddressBase", address.as_str()),
            ("elementSize", size.as_str()),
        ];
        if let Some(e) = &event_base {
            attributes.push(("eventBase", e));
        }
        if let Some(v) = &vector_base {
            attributes.push(("vectorBase", v));
        }
        let (tag, elements) = match &a.elements {
            ArrayElements::Readers(e) => ("reader", e),
            ArrayElements::Writers(e) => ("writer", e),
        };
        let inner = |out: &mut Out| {
            for e in elements {
                out.empty(tag, &[("logical", e)])?;
            }
            Ok(())
        };
        self.element("array", &attributes, !elements.is_empty(), inner)
    }

    fn device(&mut self, d: &Device) -> io::Result<()> {
        let inner = |out: &mut Out| {
            for irq in &d.irqs {
                let vector = irq.vector.to_string();
                let attributes = [("logical", irq.logical.as_str()), ("vector", &vector)];
                let msis = |out: &mut Out| {
                    for msi in &irq.msis {
                        out.empty("msi", &[("logical", msi)])?;
                    }
                    Ok(())
                };
                out.element("irq", &attributes, !irq.msis.is_empty(), msis)?;
            }
            for m in &d.memory {
                out.required("memory", m)?;
            }
            for p in &d.io_ports {
                out.empty(
                    "ioPort",
                    &[
                        ("logical", &p.logical),
                        ("start", &word64(u64::from(p.start))),
                        ("end", &word64(u64::from(p.end))),
                    ],
                )?;
            }
            Ok(())
        };
        let has_inner = !d.irqs.is_empty() || !d.memory.is_empty() || !d.io_ports.is_empty();
        self.element("device", &[("logical", &d.logical)], has_inner, inner)
    }

    fn events(&mut self, spec: &ComponentSpec) -> io::Result<()> {
        self.start("events", &[])?;
        if !spec.events.source.is_empty() {
            self.start("source", &[])?;
            for e in &spec.events.source {
                let id = e.id.to_string();
                let attributes = [("id", id.as_str()), ("logical", &e.logical)];
                let inner = |out: &mut Out| match e.action {
                    Some(SourceAction::UnmaskIrq(number)) => out.empty(
                        SourceAction::UnmaskIrq(number).policy_name(),
                        &[("number", &number.to_string())],
                    ),
                    Some(action) => out.empty(action.policy_name(), &[]),
                    None => Ok(()),
                };
                self.element("event", &attributes, e.action.is_some(), inner)?;
            }
            self.end("source")?;
        }
        if !spec.events.target.is_empty() {
            self.start("target", &[])?;
            for e in &spec.events.target {
                let id = e.id.map(|id| id.to_string());
                let mut attributes = vec![("logical", e.logical.as_str())];
                if let Some(id) = &id {
                    attributes.push(("id", id));
                }
                let inner = |out: &mut Out| match e.action {
                    Some(TargetAction::InjectInterrupt { vector }) => {
                        out.empty("inject_interrupt", &[("vector", &vector.to_string())])
                    }
                    Some(TargetAction::Reset) => out.empty("reset", &[]),
                    None => Ok(()),
                };
                self.element("event", &attributes, e.action.is_some(), inner)?;
            }
            self.end("target")?;
        }
        self.end("events")
    }

    fn provided(&mut self, m: &ProvidedMemory) -> io::Result<()> {
        let size = word64(m.region.size);
        let address = word64(m.region.address.as_u64());
        let mut attributes = vec![
            ("logical", m.logical.as_str()),
            ("writable", bool_text(m.writable)),
            ("executable", bool_text(m.executable)),
            ("size", size.as_str()),
            ("virtualAddress", address.as_str()),
        ];
        // Kinds without a policy name (none comes from the reader) are left as
        // `subject`, the default.
        if let Some(kind) = m.kind.policy_name() {
            attributes.push(("type", kind));
        }
        let inner = |out: &mut Out| {
            match &m.content {
                Content::Unspecified => {}
                Content::File { filename, offset } => {
                    let offset = offset.map_or_else(|| "none".to_string(), word64);
                    out.empty("file", &[("filename", filename), ("offset", &offset)])?;
                }
                Content::Fill(pattern) => out.empty("fill", &[("pattern", &byte(*pattern))])?,
            }
            match &m.hash {
                None => Ok(()),
                Some(Hash::Sha256(d)) => out.empty("hash", &[("value", &digest(d))]),
                Some(Hash::Omitted) => out.empty("hash", &[("value", "none")]),
                Some(Hash::Ref(memory)) => out.empty("hashRef", &[("memory", memory)]),
            }
        };
        let has_inner = m.content != Content::Unspecified || m.hash.is_some();
        self.element("memory", &attributes, has_inner, inner)
    }
}

fn bool_text(value: bool) -> &'static str {
    if value {
        "true"
    } else {
        "false"
    }
}
