//! The subject info page the testbed gives a subject: format v5 (or the format a Solo5
//! unikernel's bindings read), written with `muen-sinfo`'s builder from the subject's
//! view, one resource per mapping, event and vector in the view's (the toolchain's)
//! order.

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
        let bytes = page(&w, TscRate::from_khz(2_000_000).unwrap(), Version::V5).unwrap();
        let info = SubjectInfo::new_checked(&bytes).unwrap();
        assert_eq!(info.version(), Version::V5);
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
        let log = info.memory("debuglog").unwrap();
        assert_eq!(log.kind, MemoryKind::SubjectChannel);
        let sinfo = info.memory("sinfo").unwrap();
        assert_eq!(
            (sinfo.kind, sinfo.content),
            (MemoryKind::SubjectInfo, SinfoContent::File)
        );
        assert_eq!(info.event("service0|out"), Some(2));
        assert_eq!(info.vector("service0|in"), Some(33));
        assert_eq!(info.vector("timer"), Some(32));
        assert_eq!(info.event("exit"), Some(0));
    }
}
