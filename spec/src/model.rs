//! The component specification: what a `<component>` document of Muen's
//! `component.xsd` says, as typed values.
//!
//! Every value is resolved (the schema accepts no `auto`, `$variable`, `<include>` or
//! `<if>`). The model keeps what the schema orders and drops only what it does not:
//! the document order of `<memory>` and `<array>` entries among each other (arrays are
//! kept apart), and the order of the `<config>` kinds (booleans, integers, strings, as
//! the schema has them).

use std::collections::BTreeMap;

use muen_abi::layout::Region;
use muen_abi::names::Role;
use muen_abi::VirtAddr;
use muen_sinfo::MemoryKind;

/// A component specification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComponentSpec {
    /// The component name.
    pub name: String,
    /// The vCPU profile.
    pub profile: Profile,
    /// `<config>`: values for the component's own configuration.
    pub config: Config,
    /// `<depends>`: the libraries it depends on, by name, in document order.
    pub depends: Vec<String>,
    /// `<requires><vcpu>`: the vCPU settings.
    pub vcpu: Vcpu,
    /// `<requires><memory>`: memory regions it requires (`<memory>` entries).
    pub memory: Vec<RequiredMemory>,
    /// `<requires><memory>`: memory arrays (`<array>` entries).
    pub memory_arrays: Vec<MemoryArray>,
    /// `<requires><channels>`: channels (`<reader>` and `<writer>` entries).
    pub channels: Vec<Channel>,
    /// `<requires><channels>`: channel arrays (`<array>` entries).
    pub channel_arrays: Vec<ChannelArray>,
    /// `<requires><devices>`: devices.
    pub devices: Vec<Device>,
    /// `<requires><events>`: source (vmcall) and target events.
    pub events: Events,
    /// `<provides>`: memory regions the component brings (its image, its RAM).
    pub provides: Vec<ProvidedMemory>,
}

/// A component's vCPU profile (`componentProfileType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// `native`: a native subject (the profile of every app of this project).
    #[default]
    Native,
    /// `vm`: a virtual machine.
    Vm,
    /// `linux`: a Linux guest.
    Linux,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 3] = [Profile::Native, Profile::Vm, Profile::Linux];

    /// The name in the policy.
    pub fn policy_name(self) -> &'static str {
        match self {
            Profile::Native => "native",
            Profile::Vm => "vm",
            Profile::Linux => "linux",
        }
    }

    /// The profile named `name`.
    pub fn from_policy_name(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.policy_name() == name)
    }
}

/// `<config>`: named values, by kind in the schema's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `<boolean name value>` entries.
    pub booleans: Vec<ConfigValue<bool>>,
    /// `<integer name value>` entries.
    pub integers: Vec<ConfigValue<i64>>,
    /// `<string name value>` entries.
    pub strings: Vec<ConfigValue<String>>,
}

impl Config {
    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.booleans.is_empty() && self.integers.is_empty() && self.strings.is_empty()
    }
}

/// One configuration value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigValue<T> {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: T,
}

/// `<vcpu>`: the vCPU settings a component asks for (x86-64). What it leaves out, the
/// profile decides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vcpu {
    /// Single-bit settings by group, each group's bits in document order. A group
    /// is present only with at least one bit.
    pub bits: BTreeMap<BitGroup, Vec<Bit>>,
    /// `<msrs>`: MSR ranges the subject may access directly.
    pub msrs: Vec<MsrRange>,
    /// `<registers><gpr>`: initial general-purpose registers.
    pub registers: Registers,
    /// `<registers><segments>`: initial segment registers.
    pub segments: BTreeMap<SegmentRegister, Segment>,
}

impl Vcpu {
    /// Whether nothing is set (then `<vcpu>` is left out).
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
            && self.msrs.is_empty()
            && self.registers.is_empty()
            && self.segments.is_empty()
    }

    /// The value of bit `name` in `group`, if set.
    pub fn bit(&self, group: BitGroup, name: &str) -> Option<bool> {
        self.bits
            .get(&group)?
            .iter()
            .find(|b| b.name == name)
            .map(|b| b.value)
    }

    /// Sets bit `name` in `group` (replacing an earlier value, else appending).
    pub fn set_bit(&mut self, group: BitGroup, name: &str, value: bool) {
        let bits = self.bits.entry(group).or_default();
        match bits.iter_mut().find(|b| b.name == name) {
            Some(bit) => bit.value = value,
            None => bits.push(Bit {
                name: name.to_string(),
                value,
            }),
        }
    }

    /// Whether CR4.OSXMMEXCPT is set (`<registers><cr4><OSSupportSIMDExceptions>`), so
    /// that SIMD floating-point exceptions raise #XM.
    pub fn simd_exceptions(&self) -> bool {
        self.bit(BitGroup::Cr4, bits::OS_SUPPORT_SIMD_EXCEPTIONS) == Some(true)
    }
}

/// Names of the vCPU bits this project sets (Muen's schema element names).
pub mod bits {
    /// Processor control: HLT exits (a halted subject sleeps until an event).
    pub const HLT_EXITING: &str = "HLTExiting";
    /// Processor control: RDTSC exits.
    pub const RDTSC_EXITING: &str = "RDTSCExiting";
    /// CR4 bit OSXMMEXCPT.
    pub const OS_SUPPORT_SIMD_EXCEPTIONS: &str = "OSSupportSIMDExceptions";
    /// The exception-bitmap entries a component may give (`component.xsd`'s
    /// `exceptionType`, in schema order). `MachineCheck` is not among them: it stays
    /// with the kernel.
    pub const COMPONENT_EXCEPTIONS: [&str; 17] = [
        "DivideError",
        "Debug",
        "Breakpoint",
        "Overflow",
        "BOUNDRangeExceeded",
        "InvalidOpcode",
        "DeviceNotAvailable",
        "DoubleFault",
        "CoprocessorSegmentOverrun",
        "InvalidTSS",
        "SegmentNotPresent",
        "StackSegmentFault",
        "GeneralProtection",
        "PageFault",
        "x87FPUFloatingPointError",
        "AlignmentCheck",
        "SIMDFloatingPointException",
    ];
}

/// Where a single-bit vCPU setting lives, in schema order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BitGroup {
    /// `<vmx><controls><pin>`.
    PinControls,
    /// `<vmx><controls><proc>`.
    ProcControls,
    /// `<vmx><controls><proc2>`.
    Proc2Controls,
    /// `<vmx><controls><entry>`.
    EntryControls,
    /// `<vmx><controls><exit>`.
    ExitControls,
    /// `<vmx><masks><exception>`.
    ExceptionMask,
    /// `<vmx><masks><cr0>`.
    Cr0Mask,
    /// `<vmx><masks><cr4>`.
    Cr4Mask,
    /// `<registers><cr0>`.
    Cr0,
    /// `<registers><cr0Shadow>`.
    Cr0Shadow,
    /// `<registers><cr4>`.
    Cr4,
    /// `<registers><cr4Shadow>`.
    Cr4Shadow,
}

impl BitGroup {
    /// Every group, in schema order.
    pub const ALL: [BitGroup; 12] = [
        BitGroup::PinControls,
        BitGroup::ProcControls,
        BitGroup::Proc2Controls,
        BitGroup::EntryControls,
        BitGroup::ExitControls,
        BitGroup::ExceptionMask,
        BitGroup::Cr0Mask,
        BitGroup::Cr4Mask,
        BitGroup::Cr0,
        BitGroup::Cr0Shadow,
        BitGroup::Cr4,
        BitGroup::Cr4Shadow,
    ];

    /// The element path below `<vcpu>` (or `<vcpu><x86_64>`): parents, then the group
    /// element.
    pub fn path(self) -> &'static [&'static str] {
        match self {
            BitGroup::PinControls => &["vmx", "controls", "pin"],
            BitGroup::ProcControls => &["vmx", "controls", "proc"],
            BitGroup::Proc2Controls => &["vmx", "controls", "proc2"],
            BitGroup::EntryControls => &["vmx", "controls", "entry"],
            BitGroup::ExitControls => &["vmx", "controls", "exit"],
            BitGroup::ExceptionMask => &["vmx", "masks", "exception"],
            BitGroup::Cr0Mask => &["vmx", "masks", "cr0"],
            BitGroup::Cr4Mask => &["vmx", "masks", "cr4"],
            BitGroup::Cr0 => &["registers", "cr0"],
            BitGroup::Cr0Shadow => &["registers", "cr0Shadow"],
            BitGroup::Cr4 => &["registers", "cr4"],
            BitGroup::Cr4Shadow => &["registers", "cr4Shadow"],
        }
    }
}

/// One single-bit setting (`bitValueType`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bit {
    /// The element name, e.g. `HLTExiting`.
    pub name: String,
    /// 1 or 0.
    pub value: bool,
}

/// `<msr start end mode>`: MSRs the subject may access directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsrRange {
    /// The first MSR.
    pub start: u32,
    /// The last MSR (inclusive).
    pub end: u32,
    /// The access allowed.
    pub mode: MsrMode,
}

/// The access an [`MsrRange`] allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrMode {
    /// `r`.
    Read,
    /// `w`.
    Write,
    /// `rw`.
    ReadWrite,
}

impl MsrMode {
    /// Every mode.
    pub const ALL: [MsrMode; 3] = [MsrMode::Read, MsrMode::Write, MsrMode::ReadWrite];

    /// The name in the policy.
    pub fn policy_name(self) -> &'static str {
        match self {
            MsrMode::Read => "r",
            MsrMode::Write => "w",
            MsrMode::ReadWrite => "rw",
        }
    }

    /// The mode named `name`.
    pub fn from_policy_name(name: &str) -> Option<MsrMode> {
        MsrMode::ALL.into_iter().find(|m| m.policy_name() == name)
    }
}

/// `<registers><gpr>`: initial general-purpose registers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    /// The instruction pointer: the entry point.
    pub rip: Option<VirtAddr>,
    /// The stack pointer.
    pub rsp: Option<VirtAddr>,
    /// The other registers given (values, not necessarily addresses).
    pub others: BTreeMap<Gpr, u64>,
}

impl Registers {
    /// Whether no register is given.
    pub fn is_empty(&self) -> bool {
        self.rip.is_none() && self.rsp.is_none() && self.others.is_empty()
    }
}

/// A general-purpose register other than RIP and RSP, in schema order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)] // the variants are the registers of their names
pub enum Gpr {
    Rax,
    Rbx,
    Rcx,
    Rdx,
    Rdi,
    Rsi,
    Rbp,
    R08,
    R09,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
}

impl Gpr {
    /// Every register, in schema order.
    pub const ALL: [Gpr; 15] = [
        Gpr::Rax,
        Gpr::Rbx,
        Gpr::Rcx,
        Gpr::Rdx,
        Gpr::Rdi,
        Gpr::Rsi,
        Gpr::Rbp,
        Gpr::R08,
        Gpr::R09,
        Gpr::R10,
        Gpr::R11,
        Gpr::R12,
        Gpr::R13,
        Gpr::R14,
        Gpr::R15,
    ];

    /// The element name.
    pub fn policy_name(self) -> &'static str {
        match self {
            Gpr::Rax => "rax",
            Gpr::Rbx => "rbx",
            Gpr::Rcx => "rcx",
            Gpr::Rdx => "rdx",
            Gpr::Rdi => "rdi",
            Gpr::Rsi => "rsi",
            Gpr::Rbp => "rbp",
            Gpr::R08 => "r08",
            Gpr::R09 => "r09",
            Gpr::R10 => "r10",
            Gpr::R11 => "r11",
            Gpr::R12 => "r12",
            Gpr::R13 => "r13",
            Gpr::R14 => "r14",
            Gpr::R15 => "r15",
        }
    }

    /// The register named `name`.
    pub fn from_policy_name(name: &str) -> Option<Gpr> {
        Gpr::ALL.into_iter().find(|g| g.policy_name() == name)
    }
}

/// A segment register, in schema order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)] // the variants are the registers of their names
pub enum SegmentRegister {
    Cs,
    Ds,
    Es,
    Fs,
    Gs,
    Ss,
    Tr,
    Ldtr,
}

impl SegmentRegister {
    /// Every segment register, in schema order.
    pub const ALL: [SegmentRegister; 8] = [
        SegmentRegister::Cs,
        SegmentRegister::Ds,
        SegmentRegister::Es,
        SegmentRegister::Fs,
        SegmentRegister::Gs,
        SegmentRegister::Ss,
        SegmentRegister::Tr,
        SegmentRegister::Ldtr,
    ];

    /// The element name.
    pub fn policy_name(self) -> &'static str {
        match self {
            SegmentRegister::Cs => "cs",
            SegmentRegister::Ds => "ds",
            SegmentRegister::Es => "es",
            SegmentRegister::Fs => "fs",
            SegmentRegister::Gs => "gs",
            SegmentRegister::Ss => "ss",
            SegmentRegister::Tr => "tr",
            SegmentRegister::Ldtr => "ldtr",
        }
    }

    /// The register named `name`.
    pub fn from_policy_name(name: &str) -> Option<SegmentRegister> {
        SegmentRegister::ALL
            .into_iter()
            .find(|s| s.policy_name() == name)
    }
}

/// The initial state of a segment register (`segmentType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The selector.
    pub selector: u16,
    /// The base address.
    pub base: u64,
    /// The limit.
    pub limit: u32,
    /// The access rights.
    pub access: u32,
}

/// `<requires><memory><memory>`: a region the component requires; the system maps
/// some physical memory there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequiredMemory {
    /// The logical name.
    pub logical: String,
    /// Virtual address and size.
    pub region: Region,
    /// Whether the subject may write it.
    pub writable: bool,
    /// Whether the subject may execute it.
    pub executable: bool,
}

/// `<requires><memory><array>`: equal regions one after another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryArray {
    /// The array's logical name.
    pub logical: String,
    /// Whether the subject may write the elements.
    pub writable: bool,
    /// Whether the subject may execute them.
    pub executable: bool,
    /// The address of the first element.
    pub address: VirtAddr,
    /// The size of each element.
    pub element_size: u64,
    /// The elements' logical names, in order.
    pub elements: Vec<String>,
}

/// `<requires><channels>` `<reader>` or `<writer>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    /// The logical name.
    pub logical: String,
    /// Virtual address and size.
    pub region: Region,
    /// Which end the subject is, with its notification.
    pub end: ChannelEnd,
}

impl Channel {
    /// How the subject maps the channel ([`Role::Reader`] or [`Role::Writer`]).
    pub fn role(&self) -> Role {
        match self.end {
            ChannelEnd::Reader { .. } => Role::Reader,
            ChannelEnd::Writer { .. } => Role::Writer,
        }
    }
}

/// Which end of a channel a component is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelEnd {
    /// `<reader>`: the subject reads (read-only mapping).
    Reader {
        /// The vector injected when the writer signals (`None`: the subject polls).
        vector: Option<u8>,
    },
    /// `<writer>`: the subject writes.
    Writer {
        /// The vmcall event it triggers after writing (`None`: it does not signal).
        event: Option<u8>,
    },
}

/// `<requires><channels><array>`: equal channels one after another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelArray {
    /// The array's logical name.
    pub logical: String,
    /// The address of the first element.
    pub address: VirtAddr,
    /// The size of each element.
    pub element_size: u64,
    /// `eventBase`: the first writer's event.
    pub event_base: Option<u64>,
    /// `vectorBase`: the first reader's vector.
    pub vector_base: Option<u8>,
    /// The elements.
    pub elements: ArrayElements,
}

/// The elements of a [`ChannelArray`]: all readers or all writers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArrayElements {
    /// `<reader logical>` entries.
    Readers(Vec<String>),
    /// `<writer logical>` entries.
    Writers(Vec<String>),
}

/// `<requires><devices><device>`: a device the component drives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The logical name.
    pub logical: String,
    /// Its interrupts.
    pub irqs: Vec<Irq>,
    /// Its memory (MMIO) regions.
    pub memory: Vec<RequiredMemory>,
    /// Its I/O port ranges.
    pub io_ports: Vec<IoPort>,
}

/// `<irq logical vector>` of a [`Device`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Irq {
    /// The logical name.
    pub logical: String,
    /// The vector it is injected as.
    pub vector: u8,
    /// Its MSI entries, by logical name.
    pub msis: Vec<String>,
}

/// `<ioPort logical start end>` of a [`Device`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoPort {
    /// The logical name.
    pub logical: String,
    /// The first port.
    pub start: u16,
    /// The last port (inclusive).
    pub end: u16,
}

/// `<requires><events>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Events {
    /// `<source>`: events the subject triggers with `vmcall`.
    pub source: Vec<SourceEvent>,
    /// `<target>`: events the subject receives.
    pub target: Vec<TargetEvent>,
}

/// `<source><event id logical>`: a vmcall event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceEvent {
    /// The logical name.
    pub logical: String,
    /// The vmcall number (0..=63).
    pub id: u8,
    /// What the kernel does besides delivering it.
    pub action: Option<SourceAction>,
}

/// What the kernel does when a source event fires (`sourceEventActionsGroup`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceAction {
    /// `<subject_sleep/>`.
    SubjectSleep,
    /// `<subject_yield/>`.
    SubjectYield,
    /// `<system_reboot/>`.
    SystemReboot,
    /// `<system_panic/>`.
    SystemPanic,
    /// `<system_poweroff/>`.
    SystemPoweroff,
    /// `<unmask_irq number>`.
    UnmaskIrq(u8),
}

impl SourceAction {
    /// The actions without a parameter.
    pub const PLAIN: [SourceAction; 5] = [
        SourceAction::SubjectSleep,
        SourceAction::SubjectYield,
        SourceAction::SystemReboot,
        SourceAction::SystemPanic,
        SourceAction::SystemPoweroff,
    ];

    /// The element name.
    pub fn policy_name(self) -> &'static str {
        match self {
            SourceAction::SubjectSleep => "subject_sleep",
            SourceAction::SubjectYield => "subject_yield",
            SourceAction::SystemReboot => "system_reboot",
            SourceAction::SystemPanic => "system_panic",
            SourceAction::SystemPoweroff => "system_poweroff",
            SourceAction::UnmaskIrq(_) => "unmask_irq",
        }
    }
}

/// `<target><event logical>`: an event the subject receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetEvent {
    /// The logical name.
    pub logical: String,
    /// `id`, if given.
    pub id: Option<u64>,
    /// What the kernel does to the subject when it arrives.
    pub action: Option<TargetAction>,
}

/// What the kernel does to a subject that receives a target event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetAction {
    /// `<inject_interrupt vector>`.
    InjectInterrupt {
        /// The vector.
        vector: u8,
    },
    /// `<reset/>`: the subject is restarted.
    Reset,
}

/// `<provides><memory>`: a region the component brings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvidedMemory {
    /// The logical name.
    pub logical: String,
    /// Virtual address and size.
    pub region: Region,
    /// Whether the subject may write it.
    pub writable: bool,
    /// Whether the subject may execute it.
    pub executable: bool,
    /// Its kind (`type`; `subject` when the attribute is left out).
    pub kind: MemoryKind,
    /// Its initial content.
    pub content: Content,
    /// Its hash.
    pub hash: Option<Hash>,
}

/// The initial content of a region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Content {
    /// None stated.
    #[default]
    Unspecified,
    /// `<file filename offset>`: bytes of a file.
    File {
        /// The file's name (Muen's toolchain looks it up in its input directory).
        filename: String,
        /// Where in the file the region's bytes start (`None`: `offset="none"`).
        offset: Option<u64>,
    },
    /// `<fill pattern>`: every byte is this value.
    Fill(u8),
}

/// The hash of a region's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hash {
    /// `<hash value="16#…#">`: this SHA-256 digest.
    Sha256([u8; 32]),
    /// `<hash value="none">`: no hash.
    Omitted,
    /// `<hashRef memory>`: the hash of the named region.
    Ref(String),
}
