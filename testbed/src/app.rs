//! An app as `muen-testbed run APP` takes it: a directory with `Cargo.toml` and
//! `app.toml` (or the `app.toml` itself). The testbed builds the package for the host
//! with cargo (the runtime then uses its hosted platform) and makes the component
//! specification with `policy-gen`'s library, without an ELF: in hosted mode Linux
//! loads the executable. In QEMU mode it builds the package for `x86_64-unknown-none`
//! (and the boot stage) and makes the specification from the ELF, as for Muen. The
//! specification goes to the testbed as a `muen_spec::ComponentSpec`, not as XML.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use muen_manifest::{App, Plan};
use muen_spec::{ComponentSpec, Generation};

/// Why an app cannot be used.
#[derive(Debug)]
pub enum AppError {
    /// The path is neither a directory with `app.toml` nor a manifest file.
    NotAnApp(PathBuf),
    /// The manifest or its plan is invalid (policy-gen's message).
    Policy(policy_gen::Error),
    /// cargo could not be started, failed or built no executable.
    Build(String),
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::NotAnApp(p) => write!(
                f,
                "{}: not an app (expected a directory with app.toml and Cargo.toml, or an app.toml)",
                p.display()
            ),
            AppError::Policy(e) => e.fmt(f),
            AppError::Build(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for AppError {}

/// Where an app's files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppPaths {
    /// The manifest (`app.toml`).
    pub manifest: PathBuf,
    /// The directory of the manifest, which holds the package's `Cargo.toml`.
    pub package: PathBuf,
}

/// Finds the manifest and package of `app` (a directory or a manifest file).
pub fn locate(app: &Path) -> Result<AppPaths, AppError> {
    let manifest = if app.is_dir() {
        app.join("app.toml")
    } else {
        app.to_path_buf()
    };
    if !manifest.is_file() || manifest.file_name().is_some_and(|n| n == "Cargo.toml") {
        return Err(AppError::NotAnApp(app.to_path_buf()));
    }
    let package = manifest
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    Ok(AppPaths { manifest, package })
}

/// The component specification of the app in `manifest`, as `policy-gen` makes it
/// without an ELF (the manifest's `elf` key is ignored: hosted mode has no image).
pub fn spec(manifest: &Path) -> Result<ComponentSpec, AppError> {
    let mut app = App::load(manifest, None).map_err(|e| AppError::Policy(e.into()))?;
    app.elf = None;
    let plan = Plan::new(&app).map_err(|error| {
        AppError::Policy(policy_gen::Error::Plan {
            file: manifest.to_path_buf(),
            error,
        })
    })?;
    policy_gen::spec::component_spec(&plan, None).map_err(|error| {
        AppError::Policy(policy_gen::Error::Spec {
            file: manifest.to_path_buf(),
            error,
        })
    })
}

/// The app's name (from its manifest).
pub fn name(manifest: &Path) -> Result<String, AppError> {
    App::load(manifest, None)
        .map(|a| a.name)
        .map_err(|e| AppError::Policy(e.into()))
}

/// The component specification of the app in `manifest` for its ELF image `elf`, as
/// `policy-gen --elf` makes it (QEMU mode: the image's segments are regions).
pub fn spec_with_image(manifest: &Path, elf: &Path) -> Result<ComponentSpec, AppError> {
    policy_gen::component_spec(manifest, None, Some(elf)).map_err(AppError::Policy)
}

/// [`spec_with_image`] as the XML `policy-gen --elf` prints (for the newest Muen
/// tools).
pub fn policy_with_image(manifest: &Path, elf: &Path) -> Result<String, AppError> {
    spec_with_image(manifest, elf).map(|spec| policy_gen::document(&spec, Generation::default()))
}

/// The Muen target: what QEMU mode builds apps and the boot stage for.
pub const MUEN_TARGET: &str = "x86_64-unknown-none";

/// The boot stage's package (`qemu-boot/` beside this crate in the repository).
pub fn boot_stage_package() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../qemu-boot")
}

/// Builds the package in `package` for the host (or for `target`) and returns its
/// executable. With several binaries, the one named like the app (`app_name`) is
/// taken. Cargo's messages go to stderr.
pub fn build(
    package: &Path,
    app_name: &str,
    release: bool,
    target: Option<&str>,
) -> Result<PathBuf, AppError> {
    let cargo_toml = package.join("Cargo.toml");
    let wanted = cargo_toml
        .canonicalize()
        .map_err(|e| AppError::Build(format!("{}: {e}", cargo_toml.display())))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .arg("build")
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(&wanted)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if release {
        command.arg("--release");
    }
    if let Some(target) = target {
        command.args(["--target", target]);
    }
    let mut child = command
        .spawn()
        .map_err(|e| AppError::Build(format!("cannot run {}: {e}", Path::new(&cargo).display())))?;
    let mut executables = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if let Some(found) = executable(&line, &wanted) {
                executables.push(found);
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| AppError::Build(format!("waiting for cargo: {e}")))?;
    if !status.success() {
        return Err(AppError::Build(format!(
            "cargo build of {} failed ({status})",
            wanted.display()
        )));
    }
    pick(executables, app_name, &wanted)
}

/// The `(target name, executable)` of a cargo `compiler-artifact` message for a binary
/// of the package whose manifest is `manifest`.
fn executable(line: &str, manifest: &Path) -> Option<(String, PathBuf)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v["reason"] != "compiler-artifact" || Path::new(v["manifest_path"].as_str()?) != manifest {
        return None;
    }
    let kinds = v["target"]["kind"].as_array()?;
    if !kinds.iter().any(|k| k == "bin") {
        return None;
    }
    let exe = v["executable"].as_str()?;
    Some((
        v["target"]["name"].as_str()?.to_string(),
        PathBuf::from(exe),
    ))
}

fn pick(
    mut found: Vec<(String, PathBuf)>,
    app_name: &str,
    manifest: &Path,
) -> Result<PathBuf, AppError> {
    match found.len() {
        0 => Err(AppError::Build(format!(
            "{}: the package has no binary to run",
            manifest.display()
        ))),
        1 => Ok(found.remove(0).1),
        _ => match found.iter().position(|(name, _)| name == app_name) {
            Some(i) => Ok(found.remove(i).1),
            None => Err(AppError::Build(format!(
                "{}: several binaries ({}) and none is named like the app (`{app_name}`)",
                manifest.display(),
                found
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_messages_are_filtered_by_package_and_kind() {
        let m = Path::new("/w/app/Cargo.toml");
        let line = |manifest: &str, kind: &str, exe: &str| {
            format!(
                r#"{{"reason":"compiler-artifact","manifest_path":"{manifest}","target":{{"kind":["{kind}"],"name":"hello"}},"executable":{exe}}}"#
            )
        };
        assert_eq!(
            executable(&line("/w/app/Cargo.toml", "bin", "\"/t/hello\""), m),
            Some(("hello".into(), "/t/hello".into()))
        );
        assert_eq!(
            executable(&line("/w/dep/Cargo.toml", "bin", "\"/t/x\""), m),
            None
        );
        assert_eq!(
            executable(&line("/w/app/Cargo.toml", "lib", "null"), m),
            None
        );
        assert_eq!(
            executable(r#"{"reason":"build-finished","success":true}"#, m),
            None
        );
        assert_eq!(executable("not json", m), None);
    }

    #[test]
    fn one_binary_or_the_one_named_like_the_app() {
        let m = Path::new("Cargo.toml");
        let a = ("a".to_string(), PathBuf::from("/a"));
        let b = ("hello".to_string(), PathBuf::from("/b"));
        assert_eq!(
            pick(vec![a.clone()], "hello", m).unwrap(),
            PathBuf::from("/a")
        );
        assert_eq!(
            pick(vec![a.clone(), b], "hello", m).unwrap(),
            PathBuf::from("/b")
        );
        assert!(pick(vec![], "hello", m).is_err());
        let e = pick(vec![a.clone(), a], "hello", m)
            .unwrap_err()
            .to_string();
        assert!(e.contains("several binaries (a, a)"), "{e}");
    }

    #[test]
    fn policies_come_from_policy_gen_without_an_elf() {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/echo/app.toml");
        let spec = spec(&manifest).unwrap();
        let snapshot = include_str!("../../policy-gen/tests/snapshots/2026-04/echo.xml");
        assert_eq!(policy_gen::document(&spec, Generation::V2026_04), snapshot);
        assert_eq!(
            spec,
            muen_spec::parse(snapshot, Path::new("echo.xml")).unwrap()
        );
        assert!(matches!(
            locate(Path::new("/nonexistent")),
            Err(AppError::NotAnApp(_))
        ));
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/echo");
        assert_eq!(locate(&dir).unwrap().manifest, dir.join("app.toml"));
    }
}
