//! Runs every accessor of the checked view on arbitrary input and asserts what must hold
//! for any page the check accepts. Shared by the property tests and the fuzz target
//! (`sinfo/fuzz`), which includes this file by path.

use muen_sinfo::layout::{NAME_MAX, PAGE_SIZE, RESOURCE_MAX};
use muen_sinfo::{Builder, MemoryKind, ResourceData, SubjectInfo};

/// Checks `bytes`; if the page is accepted, uses every accessor, rebuilds the page from
/// the decoded values and checks that the rebuilt page decodes to the same values.
/// Returns whether the page was accepted.
pub fn exercise(bytes: &[u8]) -> bool {
    let info = match SubjectInfo::new_checked(bytes) {
        Ok(info) => info,
        Err(error) => {
            // Errors must format without panicking too.
            assert!(!error.to_string().is_empty());
            return false;
        }
    };
    use_every_accessor(&info);

    let rebuilt = Builder::from_info(&info)
        .expect("a checked page can be rebuilt")
        .build();
    assert_eq!(rebuilt.len(), PAGE_SIZE);
    let again = SubjectInfo::new_checked(&rebuilt).expect("a rebuilt page is valid");
    assert_eq!(again.version(), info.version());
    assert_eq!(again.name(), info.name());
    assert_eq!(again.tsc_khz(), info.tsc_khz());
    assert_eq!(again.resource_count(), info.resource_count());
    assert!(again.resources().eq(info.resources()));

    let page: &[u8; PAGE_SIZE] = rebuilt.as_slice().try_into().unwrap();
    let unchecked = SubjectInfo::new_unchecked(page);
    assert!(unchecked.resources().eq(info.resources()));
    true
}

/// Views `bytes`, padded or cut to a page, without the check: must not panic.
pub fn exercise_unchecked(bytes: &[u8]) {
    let mut page = vec![0u8; PAGE_SIZE];
    let len = bytes.len().min(PAGE_SIZE);
    page[..len].copy_from_slice(&bytes[..len]);
    let page: &[u8; PAGE_SIZE] = page.as_slice().try_into().unwrap();
    let info = SubjectInfo::new_unchecked(page);
    assert!(info.resource_count() <= RESOURCE_MAX);
    assert!(info.name().len() <= NAME_MAX);
    for resource in info.resources() {
        assert!(resource.name.len() <= NAME_MAX);
        let _ = format!("{} {:?}", resource.name, resource.data);
    }
}

fn use_every_accessor(info: &SubjectInfo<'_>) {
    let _ = format!("{info:?} {} {:?}", info.name(), info.version());
    let _ = info.name().as_str();
    let _ = info.tsc_khz();
    assert!(info.name().len() <= NAME_MAX);
    assert!(info.resource_count() <= RESOURCE_MAX);

    let mut previous: Option<usize> = None;
    for resource in info.resources() {
        assert!(resource.index < info.resource_count());
        assert!(
            previous.is_none_or(|p| resource.index > p),
            "indices increase"
        );
        previous = Some(resource.index);
        assert!(resource.name.len() <= NAME_MAX);
        let _ = format!("{} {:?} {:?}", resource.name, resource.name, resource.data);

        match resource.data {
            ResourceData::Memory(memory) => {
                let _ = (memory.writable(), memory.executable(), memory.end());
                let _ = format!("{} {}", memory.kind, memory.content);
                let _ = memory.kind.policy_name();
            }
            ResourceData::Device(device) => {
                let _ = device.msi_capable();
                if let Some(pci) = device.pci {
                    let _ = pci.reset_method.to_string();
                }
                let first = info
                    .device_by_sid(device.sid)
                    .expect("a device is found by SID");
                assert_eq!(first.sid, device.sid);
            }
            ResourceData::DeviceMemory(region) => {
                let _ = (region.writable(), region.executable());
            }
            _ => {}
        }

        // Lookups by (name, kind) find this resource or an earlier one of the same name.
        let Ok(name) = resource.name.as_str() else {
            continue;
        };
        let first = info
            .resource(name, resource.data.kind())
            .expect("every resource can be looked up");
        assert!(first.index <= resource.index);
        assert_eq!(first.name, resource.name);
        match resource.data {
            ResourceData::Memory(memory) => {
                assert!(info.memory(name).is_some());
                if memory.kind == MemoryKind::SubjectChannel {
                    assert!(info.channel(name).is_some());
                }
            }
            ResourceData::Event(_) => assert!(info.event(name).is_some()),
            ResourceData::Vector(_) => assert!(info.vector(name).is_some()),
            _ => {}
        }
    }
    assert!(info.resources().count() <= info.resource_count());
}
