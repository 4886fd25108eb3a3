//! The crate's one error type. The decision itself cannot fail; only reading input can.

use std::fmt;

/// What can go wrong before a decision: bad configuration or an unreadable document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration has one or more problems; every one is listed.
    #[error("invalid configuration ({} problem{}):\n{}", problems.len(), if problems.len() == 1 { "" } else { "s" }, ProblemList(problems))]
    InvalidConfig {
        /// Each problem, naming the field.
        problems: Vec<ConfigProblem>,
    },
    /// A JSON document could not be read.
    #[error("cannot read the {what}: {source}")]
    Json {
        /// Which document.
        what: &'static str,
        /// The parser's error, with line and column.
        source: serde_json::Error,
    },
    /// A document declares a version this build does not read.
    #[error("the {what} has version {found}, but this build reads version {supported}")]
    UnsupportedVersion {
        /// Which document.
        what: &'static str,
        /// The version found.
        found: u64,
        /// The version this build reads.
        supported: u32,
    },
}

/// One problem in a configuration, naming the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The field's path, e.g. `pools[1].max_nodes`.
    pub field: String,
    /// What is wrong and what would be right.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

struct ProblemList<'a>(&'a [ConfigProblem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {p}")?;
        }
        Ok(())
    }
}
