//! `app.toml`: the raw serde model, and its validation into an [`App`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::error::{Format, ManifestError, NameKind, Position, Problem};
use crate::size::RawSize;
use crate::suggest::suggest;
use crate::{
    App, BlockDevice, Channel, Direction, NetDevice, DEFAULT_APP_CHANNEL_SIZE, DEFAULT_BUFFER_SIZE,
    DEFAULT_CHANNEL_SIZE, DEFAULT_RAM,
};
use muen_abi::layout::RAM_MAX;
use muen_abi::names::{check_channel_name, check_component_name, check_device_name, NameError};
use muen_channel::HEADER_SIZE;

/// `app.toml` as written. Everything is optional here so that validation, not serde,
/// reports missing keys, with the field name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    name: Option<Spanned<String>>,
    ram: Option<Spanned<RawSize>>,
    elf: Option<Spanned<String>>,
    #[serde(default)]
    net: BTreeMap<Spanned<String>, RawNet>,
    #[serde(default)]
    block: BTreeMap<Spanned<String>, RawBlock>,
    #[serde(default)]
    channel: BTreeMap<Spanned<String>, RawChannel>,
}

/// `[net.<name>]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNet {
    channel_size: Option<Spanned<RawSize>>,
}

/// `[block.<name>]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlock {
    buffer_size: Option<Spanned<RawSize>>,
}

/// `[channel.<name>]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    direction: Option<Spanned<String>>,
    size: Option<Spanned<RawSize>>,
    element_size: Option<Spanned<i64>>,
    protocol: Option<Spanned<RawProtocol>>,
    event: Option<bool>,
}

/// A protocol id as written: an integer, or a string of decimal digits or of hex
/// digits after `0x` (with `_` between digits allowed), since TOML integers stop at
/// 2^63 - 1 and protocol ids use all 64 bits.
enum RawProtocol {
    Integer(i64),
    Text(String),
}

impl RawProtocol {
    /// The id, if it is a non-zero 64-bit number.
    fn value(&self) -> Option<u64> {
        let value = match self {
            RawProtocol::Integer(v) => u64::try_from(*v).ok()?,
            RawProtocol::Text(text) => {
                let (digits, radix) = match text.strip_prefix("0x") {
                    Some(hex) => (hex, 16),
                    None => (text.as_str(), 10),
                };
                let bare: String = digits.chars().filter(|&c| c != '_').collect();
                let well_placed =
                    !digits.starts_with('_') && !digits.ends_with('_') && !digits.contains("__");
                if bare.is_empty() || !well_placed || !bare.chars().all(|c| c.is_digit(radix)) {
                    return None;
                }
                u64::from_str_radix(&bare, radix).ok()?
            }
        };
        (value != 0).then_some(value)
    }

    fn as_written(&self) -> String {
        match self {
            RawProtocol::Integer(v) => v.to_string(),
            RawProtocol::Text(t) => std::format!("{t:?}"),
        }
    }
}

impl<'de> Deserialize<'de> for RawProtocol {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawProtocol;

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a protocol id (an integer, or a string like \"0x6775_6573\")")
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawProtocol, E> {
                Ok(RawProtocol::Integer(v))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawProtocol, E> {
                Ok(RawProtocol::Text(v.to_string()))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawProtocol, E> {
                Ok(RawProtocol::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

// The keys of each table, for "did you mean" hints; `known_keys_are_accepted` checks
// that serde accepts every one of them.
pub(super) const APP_KEYS: &[&str] = &["name", "ram", "elf", "net", "block", "channel"];
pub(super) const NET_KEYS: &[&str] = &["channel_size"];
pub(super) const BLOCK_KEYS: &[&str] = &["buffer_size"];
pub(super) const CHANNEL_KEYS: &[&str] =
    &["direction", "size", "element_size", "protocol", "event"];

/// The keys allowed in the table at `parent`, if it is one of the manifest's tables.
fn known_keys(parent: &[String]) -> Option<&'static [&'static str]> {
    match parent {
        [] => Some(APP_KEYS),
        [kind, _] if kind == "net" => Some(NET_KEYS),
        [kind, _] if kind == "block" => Some(BLOCK_KEYS),
        [kind, _] if kind == "channel" => Some(CHANNEL_KEYS),
        _ => None,
    }
}

pub(super) fn parse(text: &str, path: &Path) -> Result<App, ManifestError> {
    let raw: RawApp = toml::from_str(text).map_err(|e| serde_error(text, path, &e))?;
    let at = |span: Range<usize>| Some(Position::of_offset(text, span.start));
    let error = |problem, field: String, span: Option<Range<usize>>| {
        ManifestError::new(path, problem)
            .with_field(field)
            .at(span.and_then(at))
    };
    let name_error = |name: &str, error: NameError, kind, field: String, span| {
        ManifestError::new(
            path,
            Problem::Name {
                name: name.to_string(),
                error,
                kind,
            },
        )
        .with_field(field)
        .at(at(span))
    };
    let size = |raw: Option<Spanned<RawSize>>, default: u64, field: String| match raw {
        None => Ok(default),
        Some(raw) => raw
            .get_ref()
            .bytes()
            .map_err(|e| error(Problem::Size(e), field, Some(raw.span()))),
    };

    let name = raw
        .name
        .ok_or_else(|| error(Problem::Missing, "name".into(), None))?;
    check_component_name(name.get_ref()).map_err(|e| {
        name_error(
            name.get_ref(),
            e,
            NameKind::Component,
            "name".into(),
            name.span(),
        )
    })?;

    let ram_span = raw.ram.as_ref().map(|r| r.span());
    let ram = size(raw.ram, DEFAULT_RAM, "ram".into())?;
    let ram_max = RAM_MAX;
    if ram > ram_max {
        return Err(error(
            Problem::RamTooLarge {
                size: ram,
                max: ram_max,
            },
            "ram".into(),
            ram_span,
        ));
    }

    let elf = match raw.elf {
        None => None,
        Some(elf) if elf.get_ref().is_empty() => {
            return Err(error(Problem::EmptyPath, "elf".into(), Some(elf.span())))
        }
        Some(elf) => Some(match path.parent() {
            Some(dir) => dir.join(elf.get_ref()),
            None => elf.get_ref().into(),
        }),
    };

    // Device names prefix every device region, so they must be unique across kinds.
    let mut used: BTreeMap<String, String> = BTreeMap::new();
    let mut device = |kind: &str, key: &Spanned<String>| {
        let name = key.get_ref();
        let field = field_path(&[kind, name]);
        check_device_name(name)
            .map_err(|e| name_error(name, e, NameKind::Device, field.clone(), key.span()))?;
        if let Some(first) = used.get(name) {
            return Err(error(
                Problem::DuplicateDevice {
                    name: name.clone(),
                    first: first.clone(),
                },
                field,
                Some(key.span()),
            ));
        }
        used.insert(name.clone(), field);
        Ok(())
    };

    let mut net = Vec::with_capacity(raw.net.len());
    for (key, value) in raw.net {
        device("net", &key)?;
        let field = field_path(&["net", key.get_ref(), "channel_size"]);
        net.push(NetDevice {
            channel_size: size(value.channel_size, DEFAULT_CHANNEL_SIZE, field)?,
            name: key.into_inner(),
        });
    }
    let mut block = Vec::with_capacity(raw.block.len());
    for (key, value) in raw.block {
        device("block", &key)?;
        let field = field_path(&["block", key.get_ref(), "buffer_size"]);
        block.push(BlockDevice {
            buffer_size: size(value.buffer_size, DEFAULT_BUFFER_SIZE, field)?,
            name: key.into_inner(),
        });
    }

    let mut channel = Vec::with_capacity(raw.channel.len());
    for (key, value) in raw.channel {
        let name = key.get_ref();
        let field = |leaf: Option<&str>| match leaf {
            Some(leaf) => field_path(&["channel", name, leaf]),
            None => field_path(&["channel", name]),
        };
        check_channel_name(name)
            .map_err(|e| name_error(name, e, NameKind::Channel, field(None), key.span()))?;
        if let Some(first) = used.get(name) {
            return Err(error(
                Problem::DuplicateChannel {
                    name: name.clone(),
                    first: first.clone(),
                },
                field(None),
                Some(key.span()),
            ));
        }
        used.insert(name.clone(), field(None));
        let direction = match value.direction {
            None => return Err(error(Problem::Missing, field(Some("direction")), None)),
            Some(d) => match d.get_ref().as_str() {
                "in" => Direction::In,
                "out" => Direction::Out,
                other => {
                    return Err(error(
                        Problem::Direction {
                            found: other.to_string(),
                        },
                        field(Some("direction")),
                        Some(d.span()),
                    ))
                }
            },
        };
        let channel_size = size(value.size, DEFAULT_APP_CHANNEL_SIZE, field(Some("size")))?;
        let Some(element) = value.element_size else {
            return Err(error(Problem::Missing, field(Some("element_size")), None));
        };
        let element_size = u64::try_from(*element.get_ref()).map_err(|_| {
            error(
                Problem::Invalid(std::format!(
                    "the element size {} is negative",
                    element.get_ref()
                )),
                field(Some("element_size")),
                Some(element.span()),
            )
        })?;
        if element_size == 0 || element_size > channel_size.saturating_sub(HEADER_SIZE as u64) {
            return Err(error(
                Problem::ElementSize {
                    element_size,
                    channel_size,
                },
                field(Some("element_size")),
                Some(element.span()),
            ));
        }
        let Some(protocol) = value.protocol else {
            return Err(error(Problem::Missing, field(Some("protocol")), None));
        };
        let protocol_id = protocol.get_ref().value().ok_or_else(|| {
            error(
                Problem::Protocol {
                    found: protocol.get_ref().as_written(),
                },
                field(Some("protocol")),
                Some(protocol.span()),
            )
        })?;
        channel.push(Channel {
            name: key.get_ref().clone(),
            direction,
            size: channel_size,
            element_size,
            protocol: protocol_id,
            event: value.event.unwrap_or(true),
        });
    }

    Ok(App {
        name: name.into_inner(),
        ram,
        elf,
        net,
        block,
        channel,
    })
}

/// Turns a TOML parser or serde error into a [`ManifestError`]: a syntax error, an
/// unknown key (with a hint) or a value of the wrong type, located by its span.
fn serde_error(text: &str, path: &Path, e: &toml::de::Error) -> ManifestError {
    let position = e.span().map(|s| Position::of_offset(text, s.start));
    // One line: the parser's message may span several.
    let mut message = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(_) => {
            // Show what the parser stopped at when it is a short piece of one line
            // (a duplicate key, say).
            let found = e
                .span()
                .and_then(|s| text.get(s))
                .map(str::trim)
                .filter(|f| !f.is_empty() && f.len() <= 40 && !f.contains('\n'));
            if let Some(found) = found {
                message.push_str(&std::format!(" (at `{found}`)"));
            }
            return ManifestError::new(
                path,
                Problem::Syntax {
                    format: Format::Toml,
                    message,
                },
            )
            .at(position);
        }
    };
    let hit = e.span().and_then(|span| {
        let mut best = None;
        locate(doc.get_ref(), &span, &mut Vec::new(), &mut best);
        best
    });
    let Some(hit) = hit else {
        return ManifestError::new(path, Problem::Invalid(message)).at(position);
    };
    let parts: Vec<&str> = hit.path.iter().map(String::as_str).collect();
    let field = field_path(&parts);
    let (key, parent) = hit.path.split_last().expect("a hit has a non-empty path");
    let problem = match known_keys(parent) {
        Some(keys) if hit.on_key && !keys.contains(&key.as_str()) => Problem::UnknownKey {
            suggestion: suggest(key, keys),
        },
        _ => Problem::Invalid(message),
    };
    ManifestError::new(path, problem)
        .with_field(field)
        .at(position)
}

/// Where an error span lies in the document: the key path, and whether the span is the
/// key itself (an unknown key) rather than inside its value.
struct Hit {
    path: Vec<String>,
    on_key: bool,
}

fn locate(
    table: &DeTable<'_>,
    span: &Range<usize>,
    prefix: &mut Vec<String>,
    best: &mut Option<Hit>,
) {
    let inside = |outer: Range<usize>| outer.start <= span.start && span.end <= outer.end;
    for (key, value) in table.iter() {
        prefix.push(key.get_ref().to_string());
        if inside(key.span()) {
            *best = Some(Hit {
                path: prefix.clone(),
                on_key: true,
            });
        } else if inside(value.span())
            && best
                .as_ref()
                .is_none_or(|b| !b.on_key && b.path.len() < prefix.len())
        {
            *best = Some(Hit {
                path: prefix.clone(),
                on_key: false,
            });
        }
        // Implicit tables (`net` of `[net.x]`) may have spans that do not cover their
        // entries, so always look inside.
        if let DeValue::Table(inner) = value.get_ref() {
            locate(inner, span, prefix, best);
        }
        prefix.pop();
    }
}

/// A TOML key path as written in a file: bare keys joined by `.`, other keys quoted.
pub(super) fn field_path(parts: &[&str]) -> String {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        let bare = !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if bare {
            out.push_str(part);
        } else {
            out.push_str(&std::format!("{part:?}"));
        }
    }
    out
}
