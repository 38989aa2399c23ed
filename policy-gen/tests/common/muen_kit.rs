//! Muen's own policy tool chain beside the repository (`../shared/muen`, see its
//! README.md): finding it, and running its `pipeline.sh` on component specifications.
//!
//! Shared by policy-gen's and muen-testbed's tests (the testbed includes this file with
//! `#[path]`), so it uses nothing but std. A missing or unusable kit fails the test
//! with a message naming what is missing, never a skip; a run that Muen's tools reject
//! fails it with the tools' own messages (pipeline.sh prints them).

#![allow(dead_code)] // each test binary uses a part

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The tools `pipeline.sh` runs, in each generation's `bin/`.
pub const TOOLS: [&str; 11] = [
    "mucfgmerge",
    "mucfgcvresalloc",
    "muxmlfilter",
    "mucgenspec",
    "mucfgcjoin",
    "mucfgvresalloc",
    "mucfgexpand",
    "mucfgalloc",
    "mucfgvalidate",
    "mugensinfo",
    "mucfgmemhashes",
];

/// The generations of Muen's tools in the kit (`muen_spec::Generation` names).
pub const GENERATIONS: [&str; 2] = ["2026-01", "2026-04"];

/// The kit: `../shared/muen` with its `pipeline.sh` and the tools of both generations.
#[derive(Clone, Debug)]
pub struct Kit {
    root: PathBuf,
}

fn executable(path: &Path) -> Result<(), String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("{} is missing ({e})", path.display()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{} is not an executable file", path.display()));
    }
    Ok(())
}

impl Kit {
    /// The kit beside the repository at `repo_root` (`<repo_root>/../shared/muen`);
    /// panics naming what is missing.
    pub fn beside(repo_root: &Path) -> Kit {
        Kit::find(repo_root).unwrap_or_else(|message| panic!("{message}"))
    }

    /// The kit beside the repository at `repo_root`, or the message [`Kit::beside`]
    /// fails with.
    pub fn find(repo_root: &Path) -> Result<Kit, String> {
        let root = repo_root.join("../shared/muen");
        let root = root.canonicalize().unwrap_or(root);
        Kit::check(&root).map_err(|problem| {
            format!(
                "Muen's policy tool chain is not usable: {problem}. The tests run Muen's \
                 tools from ../shared/muen beside the repository (see its README.md; \
                 scripts/setup.sh installs the Debian packages they need)"
            )
        })
    }

    /// The kit at `root`, if `pipeline.sh` and every tool of both generations are
    /// there and executable; else what is missing.
    pub fn check(root: &Path) -> Result<Kit, String> {
        if !root.is_dir() {
            return Err(format!("{} is not a directory", root.display()));
        }
        executable(&root.join("pipeline.sh"))?;
        for generation in GENERATIONS {
            for tool in TOOLS {
                executable(&root.join(generation).join("bin").join(tool))?;
            }
            let schema = root.join(generation).join("schema/component.xsd");
            if !schema.is_file() {
                return Err(format!("{} is missing", schema.display()));
            }
        }
        Ok(Kit {
            root: root.to_path_buf(),
        })
    }

    /// The kit's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs `pipeline.sh` as `run` says.
    pub fn run(&self, run: &Run) -> Outcome {
        let mut command = Command::new(self.root.join("pipeline.sh"));
        command.args(["--tools", run.generation]);
        command.arg("--out").arg(&run.out);
        if let Some(additions) = &run.additions {
            command.arg("--additions").arg(additions);
        }
        if let Some(files) = &run.files {
            command.arg("--files").arg(files);
        }
        command.args(&run.specs);
        let shown = format!("{command:?}").replace('"', "");
        let start = Instant::now();
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
        Outcome {
            command: shown,
            status: out.status.code(),
            console: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            elapsed: start.elapsed(),
            out: run.out.clone(),
        }
    }
}

/// One `pipeline.sh` run.
#[derive(Clone, Debug)]
pub struct Run {
    /// `--tools`: the generation.
    pub generation: &'static str,
    /// `--out`: the output folder (emptied by pipeline.sh).
    pub out: PathBuf,
    /// `--additions`: the system additions file.
    pub additions: Option<PathBuf>,
    /// `--files`: the folder with the files the specifications name.
    pub files: Option<PathBuf>,
    /// The component specifications.
    pub specs: Vec<PathBuf>,
}

/// What a run printed and how it ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The command line.
    pub command: String,
    /// The exit status (`None`: killed by a signal).
    pub status: Option<i32>,
    /// stdout and stderr.
    pub console: String,
    /// Wall time.
    pub elapsed: Duration,
    /// The output folder.
    pub out: PathBuf,
}

impl Outcome {
    /// Prints the run: the command, its time and every step pipeline.sh printed (seen
    /// with `--nocapture`).
    pub fn print(&self) {
        println!(
            "\n===== {} ({:.1} s, exit status {})\n{}",
            self.command,
            self.elapsed.as_secs_f64(),
            self.status.map_or("none".to_string(), |s| s.to_string()),
            self.console
        );
    }

    /// Whether every step passed and mucfgvalidate validated the policy.
    pub fn passed(&self) -> bool {
        self.status == Some(0)
            && self.console.contains("### ALL STEPS PASSED")
            && self.console.contains("Successfully validated")
    }

    /// Why the run failed, with the tools' messages; `None` if every step passed.
    pub fn failure(&self) -> Option<String> {
        (!self.passed()).then(|| {
            format!(
                "Muen's tool chain rejects it: {} ended with status {:?}. What the tools \
                 said (full logs in {}/logs):\n{}",
                self.command,
                self.status,
                self.out.display(),
                self.console
            )
        })
    }

    /// Panics with [`Outcome::failure`]'s message unless every step passed.
    pub fn assert_passed(&self) {
        if let Some(message) = self.failure() {
            panic!("{message}");
        }
    }

    /// A file of the output folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }
}
