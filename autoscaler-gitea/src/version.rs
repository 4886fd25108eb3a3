//! Gitea's version, and what it means for the calls we may make.

use std::fmt;

/// A Gitea release, as `GET /api/v1/version` reports it (`1.26.4`, `1.27.0+dev-12-gabc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiteaVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// What the server said, verbatim.
    pub raw: String,
}

impl GiteaVersion {
    /// Parses the leading `MAJOR.MINOR`; anything after is kept in `raw` only.
    pub fn parse(raw: &str) -> Option<Self> {
        let core = raw.trim().trim_start_matches('v');
        let mut parts = core.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Self {
            major,
            minor,
            raw: raw.trim().to_owned(),
        })
    }

    /// Whether this release is `major.minor` or newer.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// The Actions jobs list (`/actions/jobs`) arrived in 1.25.
    pub fn lists_jobs(&self) -> bool {
        self.at_least(1, 25)
    }

    /// `sort=id&order=asc` on the jobs list arrived after 1.26 (with `X-Total-Count`).
    pub fn sorts_jobs(&self) -> bool {
        self.at_least(1, 27)
    }

    /// Disabling a runner (`PATCH .../runners/{id}`) arrived in 1.26.
    pub fn disables_runners(&self) -> bool {
        self.at_least(1, 26)
    }
}

impl fmt::Display for GiteaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare() {
        let v = GiteaVersion::parse("1.26.4").unwrap();
        assert!(v.lists_jobs() && v.disables_runners());
        let v = GiteaVersion::parse("1.25.0+rc1").unwrap();
        assert!(v.lists_jobs() && !v.disables_runners());
        let v = GiteaVersion::parse("1.27.0+dev-12-gabc").unwrap();
        assert!(v.disables_runners() && v.sorts_jobs());
        assert!(!GiteaVersion::parse("1.26.4").unwrap().sorts_jobs());
        assert!(!GiteaVersion::parse("1.24.6").unwrap().lists_jobs());
        assert!(GiteaVersion::parse("development").is_none());
        assert!(GiteaVersion::parse("2.0").unwrap().at_least(1, 26));
    }
}
