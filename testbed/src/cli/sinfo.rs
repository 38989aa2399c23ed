//! `muen-testbed sinfo`: inspect subject info pages.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use muen_sinfo::{Device, DeviceMemory, Memory, ResourceData, SubjectInfo};
use serde::Serialize;

use super::{print, Failure};

/// `sinfo` subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Print the contents of a sinfo page (any format version this tool reads: 3, 4, 5).
    Dump(DumpArgs),
}

/// Arguments of `sinfo dump`.
#[derive(Args)]
pub struct DumpArgs {
    /// The page, as written by Muen's toolchain or the testbed.
    file: PathBuf,
    /// Print one JSON object instead of a listing.
    #[arg(long)]
    json: bool,
}

impl Command {
    /// Runs the subcommand.
    pub fn run(self) -> Result<(), Failure> {
        match self {
            Command::Dump(args) => dump(&args),
        }
    }
}

fn dump(args: &DumpArgs) -> Result<(), Failure> {
    let file = args.file.display();
    let bytes = fs::read(&args.file).map_err(|e| Failure::BadInput(format!("{file}: {e}")))?;
    let info = SubjectInfo::new_checked(&bytes)
        .map_err(|e| Failure::BadInput(format!("{file}: not a sinfo page: {e}")))?;
    let output = if args.json {
        let mut json = serde_json::to_string_pretty(&PageJson::new(&info))
            .map_err(|e| Failure::Other(format!("encoding JSON: {e}")))?;
        json.push('\n');
        json
    } else {
        listing(&info)
    };
    print(&output)
}

// ---- JSON ----

/// The JSON object of a page. Field order is output order.
#[derive(Serialize)]
struct PageJson {
    version: u8,
    name: String,
    tsc_khz: u32,
    resources: Vec<ResourceJson>,
}

#[derive(Serialize)]
struct ResourceJson {
    name: String,
    #[serde(flatten)]
    data: DataJson,
}

/// Per-kind fields; `kind` is the tag.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum DataJson {
    Memory {
        memory_kind: String,
        content: String,
        writable: bool,
        executable: bool,
        pattern: Option<u8>,
        address: u64,
        size: u64,
        hash: Option<String>,
    },
    Event {
        number: u8,
    },
    Vector {
        number: u8,
    },
    Device {
        sid: u16,
        irte_start: u16,
        irq_start: u8,
        ir_count: u8,
        msi_capable: bool,
        #[serde(flatten)]
        v5: Option<DeviceV5Json>,
    },
    DeviceMemory {
        address: u64,
        size: u64,
        writable: bool,
        executable: bool,
        #[serde(flatten)]
        v5: Option<DeviceMemoryV5Json>,
    },
    DevicePort {
        sid: u16,
        address: u16,
        size: u16,
    },
    Unknown,
}

#[derive(Serialize)]
struct DeviceV5Json {
    vendor_id: u16,
    device_id: u16,
    class_code: u16,
    reset_method: String,
}

#[derive(Serialize)]
struct DeviceMemoryV5Json {
    sid: u16,
    bar_index: u8,
    io_mem_flags: u8,
    bar_address: u64,
}

impl PageJson {
    fn new(info: &SubjectInfo<'_>) -> Self {
        PageJson {
            version: info.version().number(),
            name: info.name().to_string(),
            tsc_khz: info.tsc_khz(),
            resources: info
                .resources()
                .map(|r| ResourceJson {
                    name: r.name.to_string(),
                    data: DataJson::new(&r.data),
                })
                .collect(),
        }
    }
}

impl DataJson {
    fn new(data: &ResourceData) -> Self {
        match *data {
            ResourceData::Memory(m) => DataJson::Memory {
                memory_kind: m.kind.to_string(),
                content: m.content.to_string(),
                writable: m.writable(),
                executable: m.executable(),
                pattern: m.pattern,
                address: m.address,
                size: m.size,
                hash: m.hash.map(|h| hex(&h)),
            },
            ResourceData::Event(number) => DataJson::Event { number },
            ResourceData::Vector(number) => DataJson::Vector { number },
            ResourceData::Device(d) => DataJson::Device {
                sid: d.sid,
                irte_start: d.irte_start,
                irq_start: d.irq_start,
                ir_count: d.ir_count,
                msi_capable: d.msi_capable(),
                v5: d.pci.map(|pci| DeviceV5Json {
                    vendor_id: pci.vendor_id,
                    device_id: pci.device_id,
                    class_code: pci.class_code,
                    reset_method: pci.reset_method.to_string(),
                }),
            },
            ResourceData::DeviceMemory(m) => DataJson::DeviceMemory {
                address: m.address,
                size: m.size,
                writable: m.writable(),
                executable: m.executable(),
                v5: m.bar.map(|bar| DeviceMemoryV5Json {
                    sid: bar.sid,
                    bar_index: bar.index,
                    io_mem_flags: bar.io_mem_flags,
                    bar_address: bar.address,
                }),
            },
            ResourceData::DevicePort(p) => DataJson::DevicePort {
                sid: p.sid,
                address: p.address,
                size: p.size,
            },
            ResourceData::Unknown(_) => DataJson::Unknown,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

// ---- listing ----

fn listing(info: &SubjectInfo<'_>) -> String {
    let mut out = String::new();
    let used = info.resources().count();
    let _ = writeln!(out, "version    {}", info.version().number());
    let _ = writeln!(out, "name       {}", info.name());
    let _ = writeln!(out, "tsc_khz    {}", info.tsc_khz());
    let _ = writeln!(
        out,
        "resources  {used} ({} records, {} empty)",
        info.resource_count(),
        info.resource_count() - used
    );
    if used == 0 {
        return out;
    }
    let width = info
        .resources()
        .map(|r| r.name.to_string().len())
        .max()
        .unwrap_or(0)
        .max("name".len());
    let _ = writeln!(
        out,
        "\n{:>3}  {:<13}  {:<width$}  values",
        "#", "kind", "name"
    );
    for r in info.resources() {
        let (kind, values) = match r.data {
            ResourceData::Memory(m) => ("memory", memory_values(&m)),
            ResourceData::Event(n) => ("event", n.to_string()),
            ResourceData::Vector(n) => ("vector", n.to_string()),
            ResourceData::Device(d) => ("device", device_values(&d)),
            ResourceData::DeviceMemory(m) => ("device_memory", device_memory_values(&m)),
            ResourceData::DevicePort(p) => (
                "device_port",
                format!(
                    "{} bar {} ports {:#x} +{}",
                    sid(p.sid),
                    p.bar_index,
                    p.address,
                    p.size
                ),
            ),
            ResourceData::Unknown(kind) => ("unknown", format!("kind {kind}")),
        };
        let name = r.name.to_string();
        let _ = writeln!(out, "{:>3}  {kind:<13}  {name:<width$}  {values}", r.index);
    }
    out
}

fn access(writable: bool, executable: bool) -> String {
    format!(
        "r{}{}",
        if writable { 'w' } else { '-' },
        if executable { 'x' } else { '-' }
    )
}

fn memory_values(m: &Memory) -> String {
    let mut s = format!(
        "{} {:#x} +{:#x} {} {}",
        m.kind,
        m.address,
        m.size,
        access(m.writable(), m.executable()),
        m.content
    );
    if let Some(pattern) = m.pattern {
        let _ = write!(s, " pattern {pattern:#04x}");
    }
    if let Some(hash) = m.hash {
        let _ = write!(s, " sha256 {}", hex(&hash));
    }
    s
}

fn sid(sid: u16) -> String {
    format!(
        "sid {sid:#06x} ({:02x}:{:02x}.{})",
        sid >> 8,
        (sid >> 3) & 0x1f,
        sid & 7
    )
}

fn device_values(d: &Device) -> String {
    let mut s = sid(d.sid);
    if d.ir_count > 0 {
        let _ = write!(
            s,
            " irte {} vectors {}+{}",
            d.irte_start, d.irq_start, d.ir_count
        );
    }
    if d.msi_capable() {
        s.push_str(" msi");
    }
    if let Some(pci) = d.pci {
        let _ = write!(
            s,
            " id {:04x}:{:04x} class {:#06x} reset {}",
            pci.vendor_id, pci.device_id, pci.class_code, pci.reset_method
        );
    }
    s
}

fn device_memory_values(m: &DeviceMemory) -> String {
    let mut s = format!(
        "{:#x} +{:#x} {}",
        m.address,
        m.size,
        access(m.writable(), m.executable())
    );
    if let Some(bar) = m.bar {
        let _ = write!(
            s,
            " {} bar {} at {:#x} flags {:#04x}",
            sid(bar.sid),
            bar.index,
            bar.address,
            bar.io_mem_flags
        );
    }
    s
}
