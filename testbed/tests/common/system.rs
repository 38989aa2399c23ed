//! Muen systems made by Muen's own tool chain, for the `--system` tests:
//! `../shared/muen/pipeline.sh` on Muen's demo system with the five examples (hello,
//! echo, blockstore and the guestbook's pair web and vault) added as subjects
//! (policy-gen's specifications), run once per test binary, tool generation and kind
//! of specification.
//!
//! The system additions (the subjects, their channels, events, peers and place in the
//! scheduling plan) are policy-gen's (`--system-additions`): [`additions`] is the one
//! place that says so. Muen's kit is found and run with policy-gen's tests' `muen_kit`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use muen_spec::Generation;

use super::muen_kit::{Kit, Run};

/// The examples the systems hold, each as a subject of its name.
pub const APPS: [&str; 5] = ["hello", "echo", "blockstore", "web", "vault"];

/// What the specifications given to the pipeline describe.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Specs {
    /// No image (what the testbed's hosted mode generates): policy B maps none.
    WithoutImage,
    /// The apps' release ELFs in this directory (`policy-gen --elf`, pipeline.sh
    /// `--files`): policy B maps the images, and the pipeline also writes the hashed
    /// policy and its pages.
    Elf(PathBuf),
}

/// The outputs of one pipeline run.
#[derive(Debug)]
pub struct System {
    /// pipeline.sh's `--out` directory.
    pub out: PathBuf,
    /// What the specifications described.
    pub specs: Specs,
}

impl System {
    /// Policy B (unhashed).
    pub fn policy_b(&self) -> PathBuf {
        self.out.join("policy_b.xml")
    }

    /// mugensinfo's pages for [`System::policy_b`].
    pub fn sinfo(&self) -> PathBuf {
        self.out.join("sinfo")
    }

    /// Policy B after mucfgmemhashes (only with [`Specs::Elf`]).
    pub fn hashed_policy_b(&self) -> PathBuf {
        self.out.join("demo_system_vtd_plus_b_hash.xml")
    }

    /// mugensinfo's pages for [`System::hashed_policy_b`].
    pub fn hashed_sinfo(&self) -> PathBuf {
        self.out.join("sinfo_hashed")
    }
}

/// The system additions for the examples, written into `dir`: policy-gen's
/// (`policy-gen --system-additions`), passed to pipeline.sh as `--additions`. (`None`
/// would leave them to pipeline.sh, which derives its own with
/// `helpers/make-additions.py`.)
pub fn additions(dir: &Path) -> Option<PathBuf> {
    let manifests: Vec<PathBuf> = APPS
        .iter()
        .map(|app| super::example(app).join("app.toml"))
        .collect();
    let file = dir.join("additions.xml");
    let xml = policy_gen::system_additions(&manifests, None)
        .unwrap_or_else(|e| panic!("policy-gen's system additions: {e}"));
    std::fs::write(&file, xml).unwrap();
    Some(file)
}

/// The system of `generation`'s tools with the examples described as `specs`: made
/// once per test binary (later calls wait for it and share it).
pub fn system(generation: Generation, specs: Specs) -> &'static System {
    type Key = (Generation, Specs);
    static MADE: Mutex<Option<HashMap<Key, &'static System>>> = Mutex::new(None);
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    let made = made.get_or_insert_with(HashMap::new);
    let key = (generation, specs.clone());
    if let Some(system) = made.get(&key) {
        return system;
    }
    let system: &'static System = Box::leak(Box::new(make(generation, specs)));
    made.insert(key, system);
    system
}

fn make(generation: Generation, specs: Specs) -> System {
    let kit = Kit::beside(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    let tag = match &specs {
        Specs::WithoutImage => "noimage",
        Specs::Elf(_) => "elf",
    };
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    // Systems of test binaries that ended are not needed any more.
    for entry in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.rsplit('-').next().unwrap_or("");
        if name.starts_with("muen-system-") && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = tmp.join(format!(
        "muen-system-{generation}-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let input = dir.join("specs");
    std::fs::create_dir_all(&input).unwrap();
    let mut files = Vec::new();
    for app in APPS {
        let manifest = super::example(app).join("app.toml");
        let spec = match &specs {
            Specs::WithoutImage => muen_testbed::app::spec(&manifest),
            Specs::Elf(elfs) => muen_testbed::app::spec_with_image(&manifest, &elfs.join(app)),
        }
        .unwrap_or_else(|e| panic!("the specification of examples/{app}: {e}"));
        let file = input.join(format!("{app}.xml"));
        std::fs::write(&file, policy_gen::document(&spec, generation)).unwrap();
        files.push(file);
    }
    let outcome = kit.run(&Run {
        generation: generation.name(),
        out: dir.join("out"),
        additions: additions(&dir),
        files: match &specs {
            Specs::WithoutImage => None,
            Specs::Elf(elfs) => Some(elfs.clone()),
        },
        specs: files,
    });
    outcome.assert_passed();
    eprintln!(
        "pipeline.sh --tools {generation} ({tag}): {:.1} s, outputs in {}",
        outcome.elapsed.as_secs_f64(),
        outcome.out.display()
    );
    System {
        out: outcome.out,
        specs,
    }
}
