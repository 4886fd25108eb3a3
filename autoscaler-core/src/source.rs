//! How much of one source the shell managed to read.
//!
//! The design we replace treated "the node list came back empty" the same as "there are no nodes"
//! and deleted every busy server. Here every list carries how it was obtained, and the core only
//! destroys on evidence from sources that were read completely.

use serde::{Deserialize, Serialize};

/// One list read from an external service, with how complete the read was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Source<T> {
    /// Every page was read; absence from `items` is evidence of absence.
    Complete {
        /// The items.
        items: Vec<T>,
    },
    /// Some pages were read, some were not (a page failed, or the total did not add up).
    /// The items are real but absence proves nothing.
    Partial {
        /// The items that were read.
        items: Vec<T>,
        /// What went wrong, for the plan's warnings.
        reason: String,
    },
    /// Nothing could be read.
    Unavailable {
        /// What went wrong, for the plan's warnings.
        reason: String,
    },
}

impl<T> Source<T> {
    /// A completely read list.
    pub fn complete(items: Vec<T>) -> Self {
        Self::Complete { items }
    }

    /// A source that could not be read at all.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::Unavailable {
            reason: reason.into(),
        }
    }

    /// The items that were read, complete or not.
    pub fn items(&self) -> &[T] {
        match self {
            Self::Complete { items } | Self::Partial { items, .. } => items,
            Self::Unavailable { .. } => &[],
        }
    }

    /// Whether absence from this list is evidence of absence.
    pub fn is_complete(&self) -> bool {
        matches!(self, Self::Complete { .. })
    }

    /// Why this source is not complete, if it is not.
    pub fn problem(&self) -> Option<&str> {
        match self {
            Self::Complete { .. } => None,
            Self::Partial { reason, .. } | Self::Unavailable { reason } => Some(reason),
        }
    }
}

impl<T> Default for Source<T> {
    /// A source nobody filled in is unavailable, never silently empty.
    fn default() -> Self {
        Self::unavailable("not provided")
    }
}
