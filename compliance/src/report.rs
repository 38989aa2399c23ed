//! What a compliance run found: per rule, passed, violated (with what happened) or
//! skipped (with why).

use std::fmt;
use std::panic::{self, AssertUnwindSafe};

/// A rule of a contract: one of [`NetRule`](crate::net::NetRule),
/// [`BlockRule`](crate::block::BlockRule) or [`ServerRule`](crate::server::ServerRule).
pub trait Rule: Copy + Eq + fmt::Debug + 'static {
    /// Every rule, in the order the suite checks them.
    const ALL: &'static [Self];

    /// The rule in one sentence (as in `docs/device-abi.md`).
    fn summary(self) -> &'static str;
}

/// One broken rule and what the suite saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation<R> {
    /// The rule.
    pub rule: R,
    /// What happened, with the call and its arguments.
    pub detail: String,
}

impl<R: Rule> fmt::Display for Violation<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} ({}): {}",
            self.rule,
            self.rule.summary(),
            self.detail
        )
    }
}

/// The result of a compliance run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report<R> {
    /// What was checked (the implementation's name, as the caller gave it).
    pub subject: String,
    /// Rules that held.
    pub passed: Vec<R>,
    /// Rules that did not hold (a rule may appear once per failed check).
    pub violations: Vec<Violation<R>>,
    /// Rules that could not be checked, and why (a hook the peer does not offer).
    pub skipped: Vec<(R, String)>,
}

impl<R: Rule> Report<R> {
    pub(crate) fn new(subject: &str) -> Self {
        Report {
            subject: subject.to_string(),
            passed: Vec::new(),
            violations: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// Whether no rule was violated.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// The violated rules, each once, in check order.
    pub fn violated(&self) -> Vec<R> {
        let mut rules: Vec<R> = Vec::new();
        for v in &self.violations {
            if !rules.contains(&v.rule) {
                rules.push(v.rule);
            }
        }
        rules
    }

    /// Panics with the whole report unless every rule held; prints it otherwise.
    pub fn assert_ok(&self) {
        assert!(self.is_ok(), "{self}");
        eprintln!("{self}");
    }

    /// Runs the check of `rule`: `Err` (or a panic) is a violation.
    pub(crate) fn check(&mut self, rule: R, f: impl FnOnce() -> Check) {
        match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(())) => self.passed.push(rule),
            Ok(Err(Outcome::Violated(detail))) => self.violations.push(Violation { rule, detail }),
            Ok(Err(Outcome::Skipped(why))) => self.skipped.push((rule, why)),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_string());
                self.violations.push(Violation {
                    rule,
                    detail: format!("panicked: {message}"),
                });
            }
        }
    }
}

impl<R: Rule> fmt::Display for Report<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "compliance of {}: {} rules passed, {} violated, {} skipped",
            self.subject,
            self.passed.len(),
            self.violated().len(),
            self.skipped.len()
        )?;
        for v in &self.violations {
            writeln!(f, "  VIOLATED {v}")?;
        }
        for (rule, why) in &self.skipped {
            writeln!(f, "  skipped  {rule:?}: {why}")?;
        }
        Ok(())
    }
}

/// Why a check did not pass.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The rule does not hold: what happened.
    Violated(String),
    /// The rule cannot be checked here: why.
    Skipped(String),
}

impl From<String> for Outcome {
    fn from(detail: String) -> Self {
        Outcome::Violated(detail)
    }
}

/// The result of one rule's check.
pub(crate) type Check = Result<(), Outcome>;

/// Fails the check with a formatted message.
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::report::Outcome::Violated(format!($($arg)*)))
    };
}

/// Fails the check with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::report::fail!($($arg)*);
        }
    };
}

/// Skips the check with a formatted reason.
macro_rules! skip {
    ($($arg:tt)*) => {
        return Err($crate::report::Outcome::Skipped(format!($($arg)*)))
    };
}

pub(crate) use {ensure, fail, skip};
