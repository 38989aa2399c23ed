//! Solo5's manifest JSON, as printed by `solo5-elftool query-manifest`.

use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use serde::Deserialize;

use crate::error::{Format, ManifestError, NameKind, Position, Problem};
use crate::suggest::suggest;
use crate::{App, BlockDevice, NetDevice, DEFAULT_BUFFER_SIZE, DEFAULT_CHANNEL_SIZE, DEFAULT_RAM};
use muen_abi::names::{check_component_name, check_device_name};

/// The manifest as written. Everything is optional so that validation reports missing
/// keys with their field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(rename = "type")]
    kind: Option<String>,
    version: Option<u64>,
    devices: Option<Vec<RawDevice>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

const MANIFEST_KEYS: &[&str] = &["type", "version", "devices"];
const DEVICE_KEYS: &[&str] = &["name", "type"];
const MANIFEST_TYPE: &str = "solo5.manifest";
const MANIFEST_VERSION: u64 = 1;
const NET_BASIC: &str = "NET_BASIC";
const BLOCK_BASIC: &str = "BLOCK_BASIC";

pub(super) fn parse(text: &str, path: &Path, name: &str) -> Result<App, ManifestError> {
    let raw: RawManifest = serde_json::from_str(text).map_err(|e| json_error(text, path, &e))?;
    let error = |problem, field: String| ManifestError::new(path, problem).with_field(field);

    check_component_name(name).map_err(|e| {
        ManifestError::new(
            path,
            Problem::Name {
                name: name.to_string(),
                error: e,
                kind: NameKind::Component,
            },
        )
    })?;
    let kind = raw
        .kind
        .ok_or_else(|| error(Problem::Missing, "type".into()))?;
    if kind != MANIFEST_TYPE {
        return Err(error(
            Problem::NotSolo5Manifest { found: kind },
            "type".into(),
        ));
    }
    let version = raw
        .version
        .ok_or_else(|| error(Problem::Missing, "version".into()))?;
    if version != MANIFEST_VERSION {
        return Err(error(
            Problem::Solo5Version { found: version },
            "version".into(),
        ));
    }
    let devices = raw
        .devices
        .ok_or_else(|| error(Problem::Missing, "devices".into()))?;

    let mut net = Vec::new();
    let mut block = Vec::new();
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (i, device) in devices.into_iter().enumerate() {
        let field = |key: &str| format!("devices[{i}].{key}");
        let name = device
            .name
            .ok_or_else(|| error(Problem::Missing, field("name")))?;
        check_device_name(&name).map_err(|e| {
            error(
                Problem::Name {
                    name: name.clone(),
                    error: e,
                    kind: NameKind::Device,
                },
                field("name"),
            )
        })?;
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            return Err(error(
                Problem::DuplicateDevice {
                    name,
                    first: format!("devices[{first}].name"),
                },
                field("name"),
            ));
        }
        seen.push((name.clone(), i));
        let kind = device
            .kind
            .ok_or_else(|| error(Problem::Missing, field("type")))?;
        match kind.as_str() {
            NET_BASIC => net.push(NetDevice {
                name,
                channel_size: DEFAULT_CHANNEL_SIZE,
            }),
            BLOCK_BASIC => block.push(BlockDevice {
                name,
                buffer_size: DEFAULT_BUFFER_SIZE,
            }),
            _ => {
                let suggestion = suggest(&kind, &[NET_BASIC, BLOCK_BASIC]);
                return Err(error(
                    Problem::DeviceType {
                        found: kind,
                        suggestion,
                    },
                    field("type"),
                ));
            }
        }
    }
    // Allocation order is name order, whatever the manifest's order.
    net.sort_by(|a, b| a.name.cmp(&b.name));
    block.sort_by(|a, b| a.name.cmp(&b.name));

    Ok(App {
        name: name.to_string(),
        ram: DEFAULT_RAM,
        elf: None,
        net,
        block,
        channel: Vec::new(),
    })
}

/// Turns a serde_json error into a [`ManifestError`]. serde_json gives the line and
/// column but no field; for an unknown key the field is found in the parsed document.
fn json_error(text: &str, path: &Path, e: &serde_json::Error) -> ManifestError {
    // serde_json counts columns from 1 but reports 0 at the start of a line (at EOF
    // after a newline, say).
    let position = (e.line() > 0).then(|| Position {
        line: e.line(),
        column: e.column().max(1),
    });
    // serde_json appends the position to its message; it is reported separately.
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    if !e.is_data() {
        return ManifestError::new(
            path,
            Problem::Syntax {
                format: Format::Json,
                message,
            },
        )
        .at(position);
    }
    let unknown = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .map(|doc| unknown_keys(&doc))
        .unwrap_or_default();
    // Of several unknown keys, report the one serde stopped at: its name is quoted in
    // the message ("unknown field `nmae`, expected ...").
    let hit = unknown
        .iter()
        .find(|(_, key, _)| message.contains(&format!("`{key}`")))
        .or(unknown.first());
    match hit {
        Some((field, key, keys)) => ManifestError::new(
            path,
            Problem::UnknownKey {
                suggestion: suggest(key, keys),
            },
        )
        .with_field(field.clone()),
        None => ManifestError::new(path, Problem::Invalid(message)),
    }
    .at(position)
}

/// Every key of `doc` that the manifest format does not have: (field path, key, the
/// keys allowed there).
fn unknown_keys(doc: &serde_json::Value) -> Vec<(String, String, &'static [&'static str])> {
    let mut out = vec![];
    let Some(top) = doc.as_object() else {
        return out;
    };
    for key in top.keys() {
        if !MANIFEST_KEYS.contains(&key.as_str()) {
            out.push((key.clone(), key.clone(), MANIFEST_KEYS));
        }
    }
    let devices = top.get("devices").and_then(|d| d.as_array());
    for (i, device) in devices.into_iter().flatten().enumerate() {
        for key in device.as_object().into_iter().flat_map(|o| o.keys()) {
            if !DEVICE_KEYS.contains(&key.as_str()) {
                out.push((format!("devices[{i}].{key}"), key.clone(), DEVICE_KEYS));
            }
        }
    }
    out
}
