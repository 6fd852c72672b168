//! [`Report`]: what [`run_all`](crate::run_all) found.

use std::fmt;
use std::time::Duration;

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The store did what the contract says.
    Passed,
    /// The store broke the contract; the text says how.
    Failed(String),
    /// No store could be made; the text says why.
    Skipped(String),
}

/// One case's name, outcome and run time.
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    /// The case, one of [`CASE_NAMES`](crate::CASE_NAMES).
    pub name: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it ran.
    pub elapsed: Duration,
}

/// The outcome of every case of a [`run_all`](crate::run_all).
#[derive(Debug, Clone)]
pub struct Report {
    /// One entry per case, in the suite's order.
    pub outcomes: Vec<CaseOutcome>,
}

impl Report {
    /// The cases that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CaseOutcome> {
        self.outcomes
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
    }

    /// True if no case failed and none was skipped.
    pub fn all_passed(&self) -> bool {
        self.outcomes.iter().all(|c| c.outcome == Outcome::Passed)
    }

    /// The outcome of the case called `name`, if it ran.
    pub fn case(&self, name: &str) -> Option<&CaseOutcome> {
        self.outcomes.iter().find(|c| c.name == name)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count =
            |want: fn(&Outcome) -> bool| self.outcomes.iter().filter(|c| want(&c.outcome)).count();
        writeln!(
            f,
            "conformance: {} passed, {} failed, {} skipped",
            count(|o| matches!(o, Outcome::Passed)),
            count(|o| matches!(o, Outcome::Failed(_))),
            count(|o| matches!(o, Outcome::Skipped(_))),
        )?;
        for case in &self.outcomes {
            match &case.outcome {
                Outcome::Passed => writeln!(f, "  ok      {} ({:?})", case.name, case.elapsed)?,
                Outcome::Failed(why) => writeln!(f, "  FAILED  {}: {why}", case.name)?,
                Outcome::Skipped(why) => writeln!(f, "  skipped {}: {why}", case.name)?,
            }
        }
        Ok(())
    }
}
