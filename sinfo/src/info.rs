//! The checked view of a subject info page.

use core::fmt;
use core::iter::{Enumerate, FusedIterator};
use core::slice;

use muen_abi::layout::SINFO;
use zerocopy::{transmute_ref, FromBytes};

use crate::layout::{
    HeaderV4, HeaderV5, RawName, RawPage, RawResource, MAGIC_PREFIX, NAME_MAX, PAGE_SIZE,
    RESOURCE_MAX,
};
use crate::resource::{Device, Memory, MemoryKind, Name, Resource, ResourceData, ResourceKind};
use crate::{Error, Version};

// The fixed mapping must hold the whole structure.
const _: () = assert!(SINFO.size as usize >= PAGE_SIZE);

/// A read-only view of a subject info page.
///
/// Build it with [`SubjectInfo::new_checked`], which validates the page once; after that
/// no method can panic or read outside the buffer, whatever the page contains. The view
/// borrows the page: resource names point into it and every value is decoded on demand.
///
/// Resources are the first `resource_count` records of the page. Empty (NONE) records
/// among them are skipped, not treated as the end of the list; see
/// [`SubjectInfo::resources`].
#[derive(Clone, Copy)]
pub struct SubjectInfo<'a> {
    version: Version,
    tsc_khz: u32,
    name: &'a RawName,
    /// Exactly the first `resource_count` records.
    records: &'a [RawResource],
}

impl<'a> SubjectInfo<'a> {
    /// Validates `bytes` as a subject info page and returns a view of it.
    ///
    /// The checks, in order (each failure has its own [`Error`] variant):
    /// the buffer holds the 80-byte header; the magic is `"muinfo\0"` followed by
    /// version 3, 4 or 5; `resource_count` is at most 255 and the buffer holds that many
    /// records; the subject name and every counted record's name are at most 63 bytes.
    ///
    /// Muen writes the page as [`PAGE_SIZE`] bytes, but nothing after the last counted
    /// record is ever read, so a shorter buffer that holds all counted records (a
    /// trimmed file, a fuzzer's input) is accepted. Bytes past [`PAGE_SIZE`] are
    /// ignored. Values inside records (memory kinds, content, flags) are not
    /// restricted: unknown values are reported as `Unknown`.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, Error> {
        let (header, rest) =
            HeaderV4::ref_from_prefix(bytes).map_err(|_| Error::Truncated { len: bytes.len() })?;
        if header.magic[..MAGIC_PREFIX.len()] != MAGIC_PREFIX {
            return Err(Error::BadMagic {
                found: header.magic,
            });
        }
        let version_byte = header.magic[MAGIC_PREFIX.len()];
        let version = Version::from_number(version_byte).ok_or(Error::UnsupportedVersion {
            version: version_byte,
        })?;
        let (name, count) = name_and_count(version, header);
        if usize::from(count) > RESOURCE_MAX {
            return Err(Error::TooManyResources { count });
        }
        let (records, _) = <[RawResource]>::ref_from_prefix_with_elems(rest, usize::from(count))
            .map_err(|_| Error::ResourcesPastEnd {
                count,
                len: bytes.len(),
            })?;
        if usize::from(name.length) > NAME_MAX {
            return Err(Error::NameTooLong {
                length: name.length,
            });
        }
        if let Some((index, record)) = records
            .iter()
            .enumerate()
            .find(|(_, record)| usize::from(record.name.length) > NAME_MAX)
        {
            return Err(Error::ResourceNameTooLong {
                index,
                length: record.name.length,
            });
        }
        Ok(SubjectInfo {
            version,
            tsc_khz: header.tsc_khz.get(),
            name,
            records,
        })
    }

    /// A view of a whole page without validation.
    ///
    /// For a page that is known to be valid (for example one this program built). On an
    /// invalid page the values are meaningless, but the view still cannot panic or read
    /// outside `page`: the array type fixes the length, an unknown version byte is read
    /// with the v4 layout, the count is capped at 255 and name lengths at 63.
    pub fn new_unchecked(page: &'a [u8; PAGE_SIZE]) -> Self {
        let page: &RawPage = transmute_ref!(page);
        let header: &HeaderV4 = transmute_ref!(&page.header);
        let version = Version::from_number(header.magic[MAGIC_PREFIX.len()]).unwrap_or(Version::V4);
        let (name, count) = name_and_count(version, header);
        let count = usize::from(count).min(RESOURCE_MAX);
        SubjectInfo {
            version,
            tsc_khz: header.tsc_khz.get(),
            name,
            records: page.resources.get(..count).unwrap_or(&[]),
        }
    }

    /// Validates and views the page Muen maps at [`SINFO`] (`0xe_0000_0000`).
    ///
    /// # Safety
    ///
    /// [`PAGE_SIZE`] bytes at `SINFO.address` must be mapped readable for the rest of
    /// the program and never be written, which is how Muen maps the page into every
    /// subject (read-only, generated at integration time). Calling this anywhere else
    /// (a hosted process that has not mapped the page) is undefined behaviour.
    pub unsafe fn from_fixed_address() -> Result<SubjectInfo<'static>, Error> {
        let page = SINFO.address.as_u64() as usize as *const [u8; PAGE_SIZE];
        // SAFETY: the caller guarantees that PAGE_SIZE bytes at this address are mapped,
        // readable and immutable for 'static; a byte array has alignment 1.
        let page = unsafe { &*page };
        SubjectInfo::new_checked(page)
    }

    /// The page's format version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The subject's name.
    pub fn name(&self) -> Name<'a> {
        Name::new(self.name.bytes())
    }

    /// The TSC rate in kHz (Muen copies the processor's `speed` from the policy).
    pub fn tsc_khz(&self) -> u32 {
        self.tsc_khz
    }

    /// The page's `resource_count`: the number of records in use, empty ones included.
    pub fn resource_count(&self) -> usize {
        self.records.len()
    }

    /// The resources, in page order.
    ///
    /// The iterator visits the first `resource_count` records and skips empty (NONE)
    /// ones. Solo5's C bindings stop at the first empty record instead; Muen's own
    /// library does not, and Muen's generator test page `subject_info` has ten empty
    /// records before its two resources, which Solo5 would therefore never see.
    pub fn resources(&self) -> Resources<'a> {
        Resources {
            version: self.version,
            records: self.records.iter().enumerate(),
        }
    }

    /// The first resource with this name and kind.
    ///
    /// Names are not unique across kinds: a channel writer sees a memory region and an
    /// event with the same name, so every lookup names the kind.
    pub fn resource(&self, name: &str, kind: ResourceKind) -> Option<Resource<'a>> {
        self.resources()
            .find(|resource| resource.data.kind() == kind && resource.name == name)
    }

    /// The memory region with this name.
    pub fn memory(&self, name: &str) -> Option<Memory> {
        match self.resource(name, ResourceKind::Memory)?.data {
            ResourceData::Memory(memory) => Some(memory),
            _ => None,
        }
    }

    /// The channel with this name: a memory region of kind `subject_channel`.
    pub fn channel(&self, name: &str) -> Option<Memory> {
        self.resources().find_map(|resource| match resource.data {
            ResourceData::Memory(memory)
                if memory.kind == MemoryKind::SubjectChannel && resource.name == name =>
            {
                Some(memory)
            }
            _ => None,
        })
    }

    /// The number of the event with this name (what to pass to `vmcall` in RAX).
    pub fn event(&self, name: &str) -> Option<u8> {
        match self.resource(name, ResourceKind::Event)?.data {
            ResourceData::Event(number) => Some(number),
            _ => None,
        }
    }

    /// The interrupt vector with this name.
    pub fn vector(&self, name: &str) -> Option<u8> {
        match self.resource(name, ResourceKind::Vector)?.data {
            ResourceData::Vector(number) => Some(number),
            _ => None,
        }
    }

    /// The first PCI device with this source ID.
    pub fn device_by_sid(&self, sid: u16) -> Option<Device> {
        self.resources().find_map(|resource| match resource.data {
            ResourceData::Device(device) if device.sid == sid => Some(device),
            _ => None,
        })
    }
}

impl fmt::Debug for SubjectInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubjectInfo")
            .field("version", &self.version)
            .field("name", &self.name())
            .field("tsc_khz", &self.tsc_khz)
            .field("resource_count", &self.resource_count())
            .finish()
    }
}

/// The name and resource count of a header, by version.
fn name_and_count(version: Version, header: &HeaderV4) -> (&RawName, u16) {
    match version {
        Version::V3 | Version::V4 => (&header.name, header.resource_count.get()),
        Version::V5 => {
            let header: &HeaderV5 = transmute_ref!(header);
            (&header.name, header.resource_count.get())
        }
    }
}

/// Iterator over the non-empty resources of a page; see [`SubjectInfo::resources`].
#[derive(Clone)]
pub struct Resources<'a> {
    version: Version,
    records: Enumerate<slice::Iter<'a, RawResource>>,
}

impl<'a> Iterator for Resources<'a> {
    type Item = Resource<'a>;

    fn next(&mut self) -> Option<Resource<'a>> {
        let version = self.version;
        self.records.find_map(|(index, record)| {
            let data = ResourceData::decode(version, record)?;
            Some(Resource {
                index,
                name: Name::new(record.name.bytes()),
                data,
            })
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.records.size_hint().1)
    }
}

impl FusedIterator for Resources<'_> {}

#[cfg(test)]
mod tests;
