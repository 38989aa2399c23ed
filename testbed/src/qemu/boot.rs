//! The boot stage (`qemu-boot/`): its image split into the ROM QEMU maps below 4 GiB
//! (`-bios`) and the RAM part the testbed writes into guest memory, and the boot
//! configuration (`muen_testbed_abi::qemu::BootConfig`) written beside it.

use std::path::Path;

use muen_testbed_abi::qemu::{
    BootConfig, BOOT_AREA, BOOT_CONFIG_ADDRESS, BOOT_CONFIG_MAGIC, BOOT_CONFIG_VERSION,
    BOOT_IMAGE_BASE, CR4_OSXMMEXCPT, ROM_BASE, ROM_SIZE,
};
use zerocopy::IntoBytes;

use crate::memory::{GuestMemory, Memory};
use crate::qemu::elf::Elf;
use muen_spec::model::Gpr;
use muen_spec::SubjectView;

/// The 8254 PIT's input clock, Hz.
pub const PIT_HZ: u64 = 1_193_182;

/// A boot stage image, checked and split.
#[derive(Debug)]
pub struct BootStage {
    rom: Vec<u8>,
    ram: Vec<(u64, Vec<u8>)>,
}

impl BootStage {
    /// Reads the boot stage ELF at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Splits the boot stage ELF `bytes`: every segment must lie in the ROM (the last
    /// `ROM_SIZE` bytes below 4 GiB) or in the boot area from `BOOT_IMAGE_BASE`.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let elf = Elf::parse(bytes)?;
        if elf.entry() != BOOT_IMAGE_BASE {
            return Err(format!(
                "entry point {:#x}, expected {BOOT_IMAGE_BASE:#x} (not a boot stage image)",
                elf.entry()
            ));
        }
        let mut rom = vec![0u8; ROM_SIZE as usize];
        let mut ram = Vec::new();
        let mut has_rom = false;
        for s in elf.segments()? {
            let end = s.paddr.checked_add(s.memsz);
            if s.paddr >= ROM_BASE && end.is_some_and(|e| e <= 1 << 32) {
                let at = (s.paddr - ROM_BASE) as usize;
                rom[at..at + s.bytes.len()].copy_from_slice(&s.bytes);
                has_rom = true;
            } else if s.paddr >= BOOT_IMAGE_BASE && end.is_some_and(|e| e <= BOOT_AREA.end) {
                // Zero-filled parts need no bytes: the memory file starts zeroed.
                ram.push((s.paddr, s.bytes));
            } else {
                return Err(format!(
                    "segment at {:#x} ({:#x} bytes) lies neither in the ROM below 4 GiB nor \
                     in the boot area {BOOT_IMAGE_BASE:#x}..{:#x}",
                    s.paddr, s.memsz, BOOT_AREA.end
                ));
            }
        }
        if !has_rom {
            return Err("no ROM segment (reset vector) below 4 GiB".into());
        }
        Ok(BootStage { rom, ram })
    }

    /// The ROM image for QEMU's `-bios`.
    pub fn rom(&self) -> &[u8] {
        &self.rom
    }

    /// Writes the RAM part and `config` into a guest's low memory.
    pub fn install(&self, memory: &Memory, config: &BootConfig) -> std::io::Result<()> {
        for (paddr, bytes) in &self.ram {
            memory.write_at(*paddr, bytes)?;
        }
        memory.write_at(BOOT_CONFIG_ADDRESS, config.as_bytes())
    }
}

/// The vector of the periodic tick for `view`: the highest block of 8 vectors (the
/// PIC's base must be a multiple of 8) of which the subject uses none, so that the
/// tick does not look like one of its own vectors; 248 if every block has one (the
/// runtime treats any vector as a wake-up only, so a shared one is harmless).
pub fn tick_vector(view: &SubjectView) -> u8 {
    (4..32u8)
        .rev()
        .map(|block| block * 8)
        .find(|&base| {
            !view
                .vectors
                .iter()
                .any(|v| (base..=base + 7).contains(&v.number))
        })
        .unwrap_or(248)
}

/// The PIT divisor for a tick of `hz` (at least 19 Hz, the PIT's slowest).
pub fn tick_divisor(hz: u32) -> u16 {
    let d = PIT_HZ / u64::from(hz.max(1));
    u16::try_from(d.clamp(1, u64::from(u16::MAX))).unwrap_or(u16::MAX)
}

/// Checks that `view` sets no general-purpose register the boot stage cannot give the
/// subject: it sets RIP, RSP and RDI from the policy ([`BootConfig::rdi`]) and starts
/// every other at 0 (RAX carries the subject's CR3 into the handover, `docs/qemu.md`).
pub fn check_registers(view: &SubjectView) -> Result<(), String> {
    match view.registers.others.iter().find(|(&r, _)| r != Gpr::Rdi) {
        Some((register, value)) => Err(format!(
            "the policy sets {} to {value:#x}; QEMU mode sets RIP, RSP and RDI from the \
             policy and starts every other general-purpose register at 0 (RAX holds the \
             page tables' address)",
            register.policy_name()
        )),
        None => Ok(()),
    }
}

/// The boot configuration for `view` in `guest`, with a tick of `tick_hz` (0: none).
pub fn config(view: &SubjectView, guest: &GuestMemory, tick_hz: u32) -> BootConfig {
    let pool = guest.pool.clone();
    let (vector, divisor) = match tick_hz {
        0 => (0, 0),
        hz => (tick_vector(view), tick_divisor(hz)),
    };
    BootConfig {
        magic: BOOT_CONFIG_MAGIC.into(),
        version: BOOT_CONFIG_VERSION.into(),
        tick_vector: u16::from(vector).into(),
        tick_divisor: divisor.into(),
        pool_start: pool.start.into(),
        pool_end: pool.end.into(),
        cr4_extra: if view.simd_exceptions {
            CR4_OSXMMEXCPT
        } else {
            0
        }
        .into(),
        go: 0.into(),
        rdi: view
            .registers
            .others
            .get(&Gpr::Rdi)
            .copied()
            .unwrap_or(0)
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy;
    use muen_spec::NamedNumber;

    fn echo() -> SubjectView {
        policy::parse(
            include_str!("../../../policy-gen/tests/snapshots/2026-04/echo.xml"),
            Path::new("echo.xml"),
            policy::Image::Skip,
        )
        .unwrap()
        .view
    }

    #[test]
    fn the_tick_avoids_the_subjects_vectors() {
        let mut w = echo();
        assert_eq!(tick_vector(&w), 248);
        w.vectors.push(NamedNumber {
            name: "x".into(),
            number: 250,
        });
        assert_eq!(tick_vector(&w), 240);
        w.vectors = (32..=255)
            .map(|n| NamedNumber {
                name: format!("v{n}"),
                number: n,
            })
            .collect();
        assert_eq!(tick_vector(&w), 248);
        assert_eq!(tick_divisor(1000), 1193);
        assert_eq!(tick_divisor(1), u16::MAX);
        assert_eq!(tick_divisor(u32::MAX), 1);
    }

    #[test]
    fn a_config_names_the_pool_and_the_policy_cr4() {
        let w = echo();
        let shared = Memory::with_regions(
            &crate::memory::Backing::of_view(&w),
            crate::memory::Layout::Guest,
        )
        .unwrap();
        let offsets: Vec<u64> = (0..w.mappings.len())
            .map(|i| shared.placement(i).offset)
            .collect();
        let g = GuestMemory::new(&w, &offsets, &shared).unwrap();
        let c = config(&w, &g, 1000);
        assert_eq!(
            (c.pool_start.get(), c.pool_end.get()),
            (g.pool.start, g.pool.end)
        );
        assert_eq!(c.pool_end.get(), g.ram);
        assert_eq!(c.cr4_extra.get(), CR4_OSXMMEXCPT);
        assert_eq!((c.tick_vector.get(), c.tick_divisor.get()), (248, 1193));
        assert_eq!(config(&w, &g, 0).tick_divisor.get(), 0);
        assert_eq!(c.rdi.get(), 0);
        let mut solo5 = w.clone();
        solo5.registers.others.insert(Gpr::Rdi, 0x1000);
        assert_eq!(config(&solo5, &g, 0).rdi.get(), 0x1000);
        assert!(check_registers(&solo5).is_ok());
        solo5.registers.others.insert(Gpr::Rbx, 1);
        let e = check_registers(&solo5).unwrap_err();
        assert!(e.starts_with("the policy sets rbx to 0x1"), "{e}");
    }

    #[test]
    fn images_outside_rom_and_boot_area_are_refused() {
        assert!(BootStage::parse(b"not an elf").is_err());
        let e = BootStage::load(Path::new("/nonexistent/boot")).unwrap_err();
        assert!(e.starts_with("/nonexistent/boot: "), "{e}");
    }
}
