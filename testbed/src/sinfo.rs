//! The subject info page the testbed gives a subject, written with `muen-sinfo`'s
//! builder from the subject's view, one resource per mapping, event and vector in the
//! view's (the toolchain's) order: byte for byte the page Muen's `mugensinfo` writes
//! for the same subject, in the format asked for (`mugensinfo` writes format 4,
//! [`muen_spec::Generation::sinfo_version`]; Solo5's current bindings read format 5).
//! docs/testbed.md lists the fields where the two pages may still differ, and why.

use muen_sinfo::{BuildError, Builder, Content as SinfoContent, Memory, MemoryFlags, Version};
use muen_spec::{Content, SubjectView};

use crate::clock::TscRate;

/// The sinfo page for `view` with TSC rate `tsc`, in format `version`.
pub fn page(view: &SubjectView, tsc: TscRate, version: Version) -> Result<Vec<u8>, BuildError> {
    let mut b = Builder::new(version, &view.name, tsc.khz())?;
    for m in &view.mappings {
        let mut flags = MemoryFlags::empty();
        flags.set(MemoryFlags::WRITABLE, m.writable);
        flags.set(MemoryFlags::EXECUTABLE, m.executable);
        let (content, pattern) = match m.content {
            Content::Unspecified => (SinfoContent::Uninitialized, None),
            Content::Fill(byte) => (SinfoContent::Fill, Some(byte)),
            Content::File { .. } => (SinfoContent::File, None),
        };
        b.memory(
            &m.name,
            Memory {
                kind: m.kind,
                content,
                flags,
                pattern,
                address: m.region.address.as_u64(),
                size: m.region.size,
                hash: m.hash,
            },
        )?;
    }
    for e in &view.events {
        b.event(&e.name, e.number)?;
    }
    for v in &view.vectors {
        b.vector(&v.name, v.number)?;
    }
    Ok(b.build())
}

/// Where the page `given` differs from the page `expected` (both whole pages), one
/// line per difference: the header fields, then each resource (by its place in the
/// page); empty if they agree byte for byte.
pub fn differences(given: &[u8], expected: &[u8]) -> Vec<String> {
    if given == expected {
        return Vec::new();
    }
    let given_info = match muen_sinfo::SubjectInfo::new_checked(given) {
        Ok(info) => info,
        Err(e) => return vec![format!("it is not a valid sinfo page: {e:?}")],
    };
    let Ok(ours) = muen_sinfo::SubjectInfo::new_checked(expected) else {
        return vec!["the expected page is not valid (a testbed bug)".into()];
    };
    let mut out = Vec::new();
    let mut field = |what: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{what}: the page has {a}, the policy {b}"));
        }
    };
    field(
        "format",
        format!("{:?}", given_info.version()),
        format!("{:?}", ours.version()),
    );
    field(
        "name",
        format!("`{}`", given_info.name().as_str().unwrap_or("?")),
        format!("`{}`", ours.name().as_str().unwrap_or("?")),
    );
    field(
        "tsc_khz",
        given_info.tsc_khz().to_string(),
        ours.tsc_khz().to_string(),
    );
    let a: Vec<_> = given_info.resources().collect();
    let b: Vec<_> = ours.resources().collect();
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i), b.get(i));
        if x.map(|r| (r.index, r.name, r.data)) != y.map(|r| (r.index, r.name, r.data)) {
            out.push(format!(
                "resource #{i}: the page has {}, the policy {}",
                describe(x),
                describe(y)
            ));
        }
    }
    if out.is_empty() {
        // Same fields, other bytes (padding, records past the count).
        out.push("the pages decode alike but differ in bytes no field covers".into());
    }
    out
}

/// A resource in a sentence: `memory \`ram\` subject 0x40000000+0x4000000 rw- uninitialized`.
fn describe(r: Option<&muen_sinfo::Resource>) -> String {
    use muen_sinfo::ResourceData;
    let Some(r) = r else {
        return "nothing".into();
    };
    let name = r.name.as_str().unwrap_or("?");
    match r.data {
        ResourceData::Memory(m) => {
            let kind = m.kind.policy_name().unwrap_or("?");
            let rights = format!(
                "r{}{}",
                if m.writable() { "w" } else { "-" },
                if m.executable() { "x" } else { "-" }
            );
            let content = match (m.content, m.pattern) {
                (SinfoContent::Fill, Some(p)) => format!("fill {p:#04x}"),
                (c, _) => format!("{c:?}").to_lowercase(),
            };
            let hash = m.hash.map_or(String::new(), |h| {
                format!(
                    " hash {}",
                    h.iter().map(|b| format!("{b:02x}")).collect::<String>()
                )
            });
            format!(
                "memory `{name}` {kind} {:#x}+{:#x} {rights} {content}{hash}",
                m.address, m.size
            )
        }
        ResourceData::Event(n) => format!("event `{name}` {n}"),
        ResourceData::Vector(n) => format!("vector `{name}` {n}"),
        other => format!("`{name}` {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy;
    use muen_sinfo::{MemoryKind, ResourceData, SubjectInfo};
    use std::path::Path;

    #[test]
    fn the_page_names_every_region_event_and_vector_in_order() {
        let w = policy::parse(
            include_str!("../../policy-gen/tests/snapshots/2026-04/echo.xml"),
            Path::new("echo.xml"),
            policy::Image::Skip,
        )
        .unwrap()
        .view;
        let bytes = page(&w, TscRate::from_khz(2_000_000).unwrap(), Version::V4).unwrap();
        let info = SubjectInfo::new_checked(&bytes).unwrap();
        assert_eq!(info.version(), Version::V4);
        assert_eq!(info.name().as_bytes(), b"echo");
        assert_eq!(info.tsc_khz(), 2_000_000);
        let got: Vec<(String, ResourceData)> = info
            .resources()
            .map(|r| (r.name.to_string(), r.data))
            .collect();
        assert_eq!(
            got.len(),
            w.mappings.len() + w.events.len() + w.vectors.len()
        );
        for (r, (name, data)) in w.mappings.iter().zip(&got) {
            assert_eq!(&r.name, name);
            let ResourceData::Memory(m) = data else {
                panic!("{name} is not memory")
            };
            assert_eq!(
                (m.address, m.size, m.writable()),
                (r.region.address.as_u64(), r.region.size, r.writable)
            );
        }
        // Channels as Muen gives them: zero-filled.
        let log = info.memory("debuglog").unwrap();
        assert_eq!(
            (log.kind, log.content, log.pattern),
            (MemoryKind::SubjectChannel, SinfoContent::Fill, Some(0))
        );
        let sinfo = info.memory("sinfo").unwrap();
        assert_eq!(
            (sinfo.kind, sinfo.content),
            (MemoryKind::SubjectInfo, SinfoContent::File)
        );
        assert_eq!(info.event("service0|out"), Some(2));
        assert_eq!(info.vector("service0|in"), Some(33));
        assert_eq!(info.vector("timer"), Some(32));
        assert_eq!(info.event("exit"), Some(0));

        // Format 5 (Solo5's bindings) names the same resources.
        let v5 = page(&w, TscRate::from_khz(2_000_000).unwrap(), Version::V5).unwrap();
        let info5 = SubjectInfo::new_checked(&v5).unwrap();
        assert_eq!(info5.version(), Version::V5);
        let got5: Vec<(String, ResourceData)> = info5
            .resources()
            .map(|r| (r.name.to_string(), r.data))
            .collect();
        assert_eq!(got5, got);
    }
}
