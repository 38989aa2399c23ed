//! Model-based random operation sequences: [`net_random`] and [`block_random`].
//!
//! Each run generates `cases` sequences of `ops` operations with proptest, from one
//! seed, executes them on the device and its peer, and checks every result against an
//! in-memory model of what the contract allows. A failing sequence is shrunk to a
//! minimal one, which the failure prints together with the seed that reproduces the
//! run. The device is not recreated between sequences: each starts by bringing the
//! device to a known state (receiving and collecting what is queued; syncing and
//! reading the blocks it will use).
//!
//! Environment (for reproducing or for longer runs):
//!
//! - `COMPLIANCE_SEED`: the seed (decimal or `0x` hex); random if unset;
//! - `COMPLIANCE_CASES`: sequences per run;
//! - `COMPLIANCE_OPS`: operations per sequence.

mod block;
mod net;

pub use block::{block_random, BlockOp, Invalid};
pub use net::{net_random, NetOp};

use std::cell::{Cell, RefCell};
use std::fmt;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use crate::report::{Rule, Violation};

/// What a random run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RandomConfig {
    /// The seed of every sequence of the run.
    pub seed: u64,
    /// Number of sequences.
    pub cases: u32,
    /// Operations per sequence.
    pub ops: usize,
}

fn env_number(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim().replace('_', "");
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    match parsed {
        Ok(n) => Some(n),
        Err(e) => panic!("{name}={v}: not a number ({e})"),
    }
}

impl RandomConfig {
    /// `cases` sequences of `ops` operations, unless `COMPLIANCE_CASES` or
    /// `COMPLIANCE_OPS` say otherwise; the seed from `COMPLIANCE_SEED` or random.
    ///
    /// # Panics
    ///
    /// If a variable is set but not a number.
    pub fn from_env(cases: u32, ops: usize) -> Self {
        let seed = env_number("COMPLIANCE_SEED").unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ (u64::from(std::process::id()) << 32)
        });
        RandomConfig {
            seed,
            cases: env_number("COMPLIANCE_CASES").map_or(cases, |n| n as u32),
            ops: env_number("COMPLIANCE_OPS").map_or(ops, |n| n as usize),
        }
    }
}

/// A random run that passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RandomReport {
    /// What ran.
    pub name: String,
    /// Its configuration.
    pub config: RandomConfig,
    /// Operations executed on the device (each checked against the model).
    pub operations: u64,
}

impl fmt::Display for RandomReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "random {}: seed {:#x}, {} sequences x {} operations: {} operations checked, passed",
            self.name, self.config.seed, self.config.cases, self.config.ops, self.operations
        )
    }
}

/// A random run that found a violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RandomFailure<R> {
    /// What ran.
    pub name: String,
    /// Its configuration (the seed reproduces it).
    pub config: RandomConfig,
    /// The violation of the minimal sequence.
    pub violation: Violation<R>,
    /// The minimal failing sequence, one operation per line.
    pub minimal: Vec<String>,
    /// Operations executed before and while shrinking.
    pub operations: u64,
}

impl<R: Rule> fmt::Display for RandomFailure<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "random {}: VIOLATED {}\n  seed {:#x} ({} sequences x {} operations); rerun with \
             COMPLIANCE_SEED={:#x} COMPLIANCE_CASES={} COMPLIANCE_OPS={}\n  minimal sequence \
             ({} operations):",
            self.name,
            self.violation,
            self.config.seed,
            self.config.cases,
            self.config.ops,
            self.config.seed,
            self.config.cases,
            self.config.ops,
            self.minimal.len()
        )?;
        for op in &self.minimal {
            writeln!(f, "    {op}")?;
        }
        Ok(())
    }
}

/// Prints the outcome of a random run and panics on a violation.
pub fn assert_random<R: Rule>(result: Result<RandomReport, RandomFailure<R>>) -> RandomReport {
    match result {
        Ok(report) => {
            eprintln!("{report}");
            report
        }
        Err(failure) => panic!("{failure}"),
    }
}

/// Runs `exec` on `cases` values of `strategy` from `config.seed`, shrinking a failure.
/// `exec` returns how many operations it executed and whether they all passed.
pub(crate) fn run<S, R>(
    name: &str,
    config: RandomConfig,
    strategy: S,
    ops: impl Fn(&S::Value) -> Vec<String>,
    exec: impl FnMut(&S::Value) -> (u64, Result<(), Violation<R>>),
) -> Result<RandomReport, RandomFailure<R>>
where
    S: Strategy,
    R: Rule,
{
    let mut seed = [0u8; 32];
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(
            &(config.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes(),
        );
    }
    let proptest_config = Config {
        cases: config.cases,
        failure_persistence: None,
        max_shrink_iters: 20_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        proptest_config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    let exec = RefCell::new(exec);
    let executed = Cell::new(0u64);
    let last = RefCell::new(None);
    let outcome = runner.run(&strategy, |value| {
        let (n, result) = (exec.borrow_mut())(&value);
        executed.set(executed.get() + n);
        match result {
            Ok(()) => Ok(()),
            Err(v) => {
                let message = format!("{v:?}");
                *last.borrow_mut() = Some(v);
                Err(TestCaseError::fail(message))
            }
        }
    });
    match outcome {
        Ok(()) => Ok(RandomReport {
            name: name.to_string(),
            config,
            operations: executed.get(),
        }),
        Err(TestError::Fail(_, minimal)) => {
            let violation = last
                .into_inner()
                .expect("a failing case recorded its violation");
            Err(RandomFailure {
                name: name.to_string(),
                config,
                violation,
                minimal: ops(&minimal),
                operations: executed.get(),
            })
        }
        Err(TestError::Abort(why)) => panic!("random {name}: proptest aborted: {why}"),
    }
}

/// Exactly `len` values of `element`, which shrink by leaving values out (pass after
/// pass, while a pass still leaves one out) and then by simplifying the ones left.
///
/// proptest's own `vec` strategy never shrinks below the smallest length its size
/// range allows, and a range would make runs shorter than `len` on average; this one
/// always runs `len` operations and still shrinks to the few that matter.
#[derive(Clone, Debug)]
pub(crate) struct Sequence<S> {
    element: S,
    len: usize,
}

pub(crate) fn sequence<S: Strategy>(element: S, len: usize) -> Sequence<S> {
    Sequence { element, len }
}

impl<S: Strategy> Strategy for Sequence<S> {
    type Tree = SequenceTree<S::Tree>;
    type Value = Vec<S::Value>;

    fn new_tree(&self, runner: &mut TestRunner) -> proptest::strategy::NewTree<Self> {
        let elements = (0..self.len)
            .map(|_| self.element.new_tree(runner))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SequenceTree {
            included: vec![true; elements.len()],
            elements,
            removing: true,
            next: 0,
            pass_removed: false,
            last: None,
        })
    }
}

#[derive(Clone, Copy, Debug)]
enum Last {
    Removed(usize),
    Simplified(usize),
}

/// The value tree of [`Sequence`].
#[derive(Clone, Debug)]
pub(crate) struct SequenceTree<T> {
    elements: Vec<T>,
    included: Vec<bool>,
    /// Leaving values out (else simplifying them).
    removing: bool,
    /// The value to try next.
    next: usize,
    /// Whether this removal pass left a value out for good.
    pass_removed: bool,
    /// The last change, which `complicate` undoes.
    last: Option<Last>,
}

impl<T: proptest::strategy::ValueTree> proptest::strategy::ValueTree for SequenceTree<T> {
    type Value = Vec<T::Value>;

    fn current(&self) -> Self::Value {
        self.elements
            .iter()
            .zip(&self.included)
            .filter(|(_, &inc)| inc)
            .map(|(e, _)| e.current())
            .collect()
    }

    fn simplify(&mut self) -> bool {
        // Called again without `complicate`: the last removal still failed, so it stays.
        if let Some(Last::Removed(_)) = self.last.take() {
            self.pass_removed = true;
        }
        loop {
            if self.next >= self.elements.len() {
                if self.removing && self.pass_removed {
                    self.pass_removed = false;
                } else if self.removing {
                    self.removing = false;
                } else {
                    return false;
                }
                self.next = 0;
                continue;
            }
            let i = self.next;
            if !self.included[i] {
                self.next += 1;
                continue;
            }
            if self.removing {
                self.included[i] = false;
                self.last = Some(Last::Removed(i));
                self.next += 1;
                return true;
            }
            if self.elements[i].simplify() {
                self.last = Some(Last::Simplified(i));
                return true;
            }
            self.next += 1;
        }
    }

    fn complicate(&mut self) -> bool {
        match self.last.take() {
            Some(Last::Removed(i)) => {
                self.included[i] = true;
                true
            }
            Some(Last::Simplified(i)) if self.elements[i].complicate() => {
                self.last = Some(Last::Simplified(i));
                true
            }
            Some(Last::Simplified(_)) => false,
            None => false,
        }
    }
}
