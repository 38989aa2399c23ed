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
use crate::{App, BlockDevice, NetDevice, DEFAULT_BUFFER_SIZE, DEFAULT_CHANNEL_SIZE, DEFAULT_RAM};
use muen_abi::layout::RAM_MAX;
use muen_abi::names::{check_component_name, check_device_name, NameError};

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

// The keys of each table, for "did you mean" hints; `known_keys_are_accepted` checks
// that serde accepts every one of them.
pub(super) const APP_KEYS: &[&str] = &["name", "ram", "elf", "net", "block"];
pub(super) const NET_KEYS: &[&str] = &["channel_size"];
pub(super) const BLOCK_KEYS: &[&str] = &["buffer_size"];

/// The keys allowed in the table at `parent`, if it is one of the manifest's tables.
fn known_keys(parent: &[String]) -> Option<&'static [&'static str]> {
    match parent {
        [] => Some(APP_KEYS),
        [kind, _] if kind == "net" => Some(NET_KEYS),
        [kind, _] if kind == "block" => Some(BLOCK_KEYS),
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

    Ok(App {
        name: name.into_inner(),
        ram,
        elf,
        net,
        block,
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
