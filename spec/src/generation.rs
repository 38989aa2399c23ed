//! The generations of Muen's tool chain whose component schema the writer targets.

use std::fmt;
use std::str::FromStr;

use muen_sinfo::Version;

/// A generation of Muen's policy tools (muen-tools), named by the month of its
/// revision. They differ, for a component specification, only in `<vcpu>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Generation {
    /// muen-tools `devel` ddece096 (2026-01-22) and earlier: `<vcpu><vmx>…`.
    V2026_01,
    /// muen-tools `main` b7d6da0e (2026-04-28) and later: `<vcpu><x86_64><vmx>…`
    /// (muen-tools eb7b089b made the vCPU architecture-specific).
    #[default]
    V2026_04,
}

impl Generation {
    /// Every generation, oldest first.
    pub const ALL: [Generation; 2] = [Generation::V2026_01, Generation::V2026_04];

    /// The generation's name, e.g. `2026-04`.
    pub fn name(self) -> &'static str {
        match self {
            Generation::V2026_01 => "2026-01",
            Generation::V2026_04 => "2026-04",
        }
    }

    /// The subject info page format this generation's `mugensinfo` writes: format 4
    /// for both (`mugensinfo/src/c/musinfo.h`, magic `0x04006f666e69756d`; checked
    /// against the pages of `../shared/muen/pipeline.sh`).
    pub fn sinfo_version(self) -> Version {
        match self {
            Generation::V2026_01 | Generation::V2026_04 => Version::V4,
        }
    }

    /// Whether `<vcpu>`'s children sit in an architecture element (`<x86_64>`).
    pub fn vcpu_has_architecture(self) -> bool {
        self >= Generation::V2026_04
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A generation name that is not one of [`Generation::ALL`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownGeneration(pub String);

impl fmt::Display for UnknownGeneration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown Muen tool-chain generation `{}`; known: {}",
            self.0,
            Generation::ALL.map(Generation::name).join(", ")
        )
    }
}

impl std::error::Error for UnknownGeneration {}

impl FromStr for Generation {
    type Err = UnknownGeneration;

    fn from_str(s: &str) -> Result<Generation, UnknownGeneration> {
        Generation::ALL
            .into_iter()
            .find(|g| g.name() == s)
            .ok_or_else(|| UnknownGeneration(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for g in Generation::ALL {
            assert_eq!(g.to_string().parse::<Generation>(), Ok(g));
        }
        assert_eq!(Generation::default(), Generation::V2026_04);
        assert!(!Generation::V2026_01.vcpu_has_architecture());
        assert!(Generation::V2026_04.vcpu_has_architecture());
        for g in Generation::ALL {
            assert_eq!(g.sinfo_version(), Version::V4);
        }
        let e = "2025-12".parse::<Generation>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown Muen tool-chain generation `2025-12`; known: 2026-01, 2026-04"
        );
    }
}
