//! Which QEMU accelerator runs the guest: KVM when `/dev/kvm` works, TCG (QEMU's own
//! binary translator) otherwise or when asked.

use std::fmt;
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::Path;

/// What the command line asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM if `/dev/kvm` is usable, else TCG.
    #[default]
    Auto,
    /// KVM; an error if `/dev/kvm` is not usable.
    Kvm,
    /// TCG, even where KVM would work.
    Tcg,
}

/// The accelerator a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation through `/dev/kvm`.
    Kvm,
    /// QEMU's binary translator.
    Tcg,
}

impl Accel {
    /// The value of QEMU's `-accel`.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// The CPU model: the host's for KVM (without `arch-capabilities`, which some nested
    /// hosts announce but refuse to set), QEMU's default for TCG.
    pub fn cpu(self) -> &'static str {
        match self {
            Accel::Kvm => "host,-arch-capabilities",
            Accel::Tcg => "qemu64",
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.qemu_name())
    }
}

/// `KVM_GET_API_VERSION`: `_IO(0xae, 0x00)`.
const KVM_GET_API_VERSION: libc::c_ulong = 0xae00;
/// The only KVM API version there has ever been.
const KVM_API_VERSION: libc::c_int = 12;

/// Why KVM cannot be used, or `Ok` if it can: `device` opens read-write and answers
/// the API version query with the stable version.
pub fn kvm_usable(device: &Path) -> Result<(), String> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .map_err(|e| format!("{}: {e}", device.display()))?;
    // SAFETY: an ioctl on a descriptor we own; its argument is an integer. Linux
    // refuses a non-zero one (EINVAL), so it is passed explicitly rather than left to
    // whatever the register holds.
    let version = unsafe { libc::ioctl(file.as_raw_fd(), KVM_GET_API_VERSION, 0) };
    if version != KVM_API_VERSION {
        let why = if version == -1 {
            format!(" ({})", std::io::Error::last_os_error())
        } else {
            String::new()
        };
        return Err(format!(
            "{}: KVM API version {version}{why}, expected {KVM_API_VERSION}",
            device.display()
        ));
    }
    Ok(())
}

/// The accelerator for `choice`; for [`AccelChoice::Kvm`] an error saying why KVM is
/// not usable.
pub fn select(choice: AccelChoice, device: &Path) -> Result<Accel, String> {
    match choice {
        AccelChoice::Tcg => Ok(Accel::Tcg),
        AccelChoice::Kvm => kvm_usable(device).map(|()| Accel::Kvm),
        AccelChoice::Auto => Ok(if kvm_usable(device).is_ok() {
            Accel::Kvm
        } else {
            Accel::Tcg
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_wrong_device_means_tcg_or_an_error() {
        let none = Path::new("/nonexistent/kvm");
        assert_eq!(select(AccelChoice::Auto, none), Ok(Accel::Tcg));
        assert_eq!(select(AccelChoice::Tcg, none), Ok(Accel::Tcg));
        let e = select(AccelChoice::Kvm, none).unwrap_err();
        assert!(e.starts_with("/nonexistent/kvm: "), "{e}");
        // A device that is not KVM answers the ioctl with an error.
        let e = kvm_usable(Path::new("/dev/null")).unwrap_err();
        assert!(e.contains("KVM API version -1 ("), "{e}");
        assert_eq!(Accel::Kvm.qemu_name(), "kvm");
        assert_eq!(Accel::Tcg.to_string(), "tcg");
    }
}
