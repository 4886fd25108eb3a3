//! Which runners and jobs the autoscaler manages: the whole instance, an organisation, the
//! token's user, or one repository. The same scope is used for jobs and runners, so demand and
//! capacity are counted over the same set.

use std::fmt;
use std::str::FromStr;

use crate::GiteaError;

/// The level at which runners are registered and jobs are listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every runner and job of the instance (`/admin/...`; a site admin token).
    Admin,
    /// One organisation (`/orgs/{org}/...`; an owner's token).
    Org(String),
    /// The token's own user (`/user/...`).
    User,
    /// One repository (`/repos/{owner}/{repo}/...`; the repository owner's token).
    Repo {
        /// The owner.
        owner: String,
        /// The repository.
        repo: String,
    },
}

impl Scope {
    /// The path prefix under `/api/v1`, without a trailing slash.
    pub fn prefix(&self) -> String {
        match self {
            Self::Admin => "/admin".to_owned(),
            Self::Org(org) => format!("/orgs/{org}"),
            Self::User => "/user".to_owned(),
            Self::Repo { owner, repo } => format!("/repos/{owner}/{repo}"),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Admin => f.write_str("admin"),
            Self::Org(org) => write!(f, "org:{org}"),
            Self::User => f.write_str("user"),
            Self::Repo { owner, repo } => write!(f, "repo:{owner}/{repo}"),
        }
    }
}

fn segment_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl FromStr for Scope {
    type Err = GiteaError;

    /// `admin`, `user`, `org:NAME` or `repo:OWNER/NAME`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            GiteaError::Config(format!(
                "scope `{s}`: {why}; expected `admin`, `user`, `org:NAME` or `repo:OWNER/NAME`"
            ))
        };
        match s.split_once(':') {
            None if s == "admin" => Ok(Self::Admin),
            None if s == "user" => Ok(Self::User),
            Some(("org", org)) if segment_ok(org) => Ok(Self::Org(org.to_owned())),
            Some(("repo", full)) => match full.split_once('/') {
                Some((owner, repo)) if segment_ok(owner) && segment_ok(repo) => Ok(Self::Repo {
                    owner: owner.to_owned(),
                    repo: repo.to_owned(),
                }),
                _ => Err(bad("the repository must be OWNER/NAME")),
            },
            Some(("org", _)) => Err(bad("the organisation name is empty or has odd characters")),
            _ => Err(bad("unknown scope")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print_back() {
        for s in ["admin", "user", "org:acme", "repo:acme/widgets"] {
            assert_eq!(s.parse::<Scope>().expect(s).to_string(), s);
        }
        assert_eq!("org:acme".parse::<Scope>().unwrap().prefix(), "/orgs/acme");
    }

    #[test]
    fn bad_scopes_name_the_problem() {
        for s in ["", "org:", "repo:acme", "repo:/x", "team:a", "org:a/b"] {
            let e = s.parse::<Scope>().expect_err(s).to_string();
            assert!(e.contains(&format!("`{s}`")), "{e}");
        }
    }
}
