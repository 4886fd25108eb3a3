//! Baked images: which image a pool's new servers boot from, and why.
//!
//! A pool may name a baked image (`baked_image`): a snapshot with K3s and the runner images
//! already on it, made by `gitea-ci-autoscaler image bake`. Servers booted from it skip the K3s
//! download and install, so their cold start is shorter. The choice is made here, on the images
//! the snapshot lists, so it is the same in the daemon, `plan` and the simulator:
//! - the image must be `available` and carry the K3s version the cluster runs
//!   ([`keys::K3S_VERSION`]): an agent newer than the control plane is refused by K3s, and an
//!   older one would be a silent downgrade;
//! - among several, the newest (then the highest id) wins;
//! - when none qualifies, or the image list could not be read, the pool boots its base image
//!   (the full install, slower but always right) and the plan says why.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::keys;
use crate::source::Source;

/// A snapshot image as the cloud lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The image's id.
    pub id: u64,
    /// Its labels: ownership, pool, K3s version, content hash.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// When it was created.
    pub created: Timestamp,
    /// Whether servers can boot from it yet.
    pub status: ImageStatus,
}

/// An image's status (Hetzner: `available`, `creating`, `unavailable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageStatus {
    /// Servers can boot from it.
    Available,
    /// Still being written.
    Creating,
    /// Anything else: not usable.
    #[serde(other)]
    Unavailable,
}

/// Which baked image a pool boots from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BakedImage {
    /// The newest image `image bake` made for this pool (`auto`): ownership and pool labels.
    Auto,
    /// One image, by id.
    Id(u64),
    /// The newest image matching a label selector (`k=v,k2,!k3,k4!=v4`).
    Selector(Selector),
}

impl fmt::Display for BakedImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Id(id) => write!(f, "{id}"),
            Self::Selector(s) => f.write_str(&s.text),
        }
    }
}

impl FromStr for BakedImage {
    type Err = String;

    /// `auto`, an id (digits), or a label selector.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "auto" {
            return Ok(Self::Auto);
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(Self::Id)
                .map_err(|_| format!("image id `{s}` is out of range"));
        }
        s.parse().map(Self::Selector)
    }
}

impl Serialize for BakedImage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BakedImage {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Id(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Id(id) => Ok(Self::Id(id)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A label selector in Hetzner's and Kubernetes' equality-based form: comma-separated terms
/// `k=v` (or `k==v`), `k!=v`, `k` (present) and `!k` (absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    text: String,
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Is(String, String),
    IsNot(String, String),
    Has(String),
    Lacks(String),
}

impl FromStr for Selector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if text.is_empty() {
            return Err("the label selector is empty".to_owned());
        }
        let mut terms = Vec::new();
        for raw in text.split(',') {
            let raw = raw.trim();
            let word = |w: &str| -> Result<String, String> {
                let w = w.trim();
                if w.is_empty()
                    || !w.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/')
                    })
                {
                    Err(format!("`{raw}` is not a selector term (k=v, k!=v, k, !k)"))
                } else {
                    Ok(w.to_owned())
                }
            };
            let term = if let Some((k, v)) = raw.split_once("!=") {
                Term::IsNot(word(k)?, word(v)?)
            } else if let Some((k, v)) = raw.split_once("==").or_else(|| raw.split_once('=')) {
                Term::Is(word(k)?, word(v)?)
            } else if let Some(k) = raw.strip_prefix('!') {
                Term::Lacks(word(k)?)
            } else {
                Term::Has(word(raw)?)
            };
            terms.push(term);
        }
        Ok(Self {
            text: text.to_owned(),
            terms,
        })
    }
}

impl Selector {
    /// Whether `labels` satisfy every term.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|t| match t {
            Term::Is(k, v) => labels.get(k) == Some(v),
            Term::IsNot(k, v) => labels.get(k) != Some(v),
            Term::Has(k) => labels.contains_key(k),
            Term::Lacks(k) => !labels.contains_key(k),
        })
    }
}

/// The K3s version as a label value: Hetzner label values allow no `+`, so `v1.33.4+k3s1` is
/// written `v1.33.4_k3s1`.
pub fn version_label(version: &str) -> String {
    version.trim().replace('+', "_")
}

/// The labels every image `image bake` makes for `pool` carries besides its version and hash:
/// what [`BakedImage::Auto`] selects.
pub fn bake_labels(installation: &str, pool: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (keys::OWNER.to_owned(), installation.to_owned()),
        (keys::POOL.to_owned(), pool.to_owned()),
    ])
}

/// The labels of an image baked for `pool` with K3s `version`, but for its content hash:
/// [`bake_labels`] and the version ([`keys::K3S_VERSION`]), which [`choose`] checks.
pub fn baked_image_labels(
    installation: &str,
    pool: &str,
    version: &str,
) -> BTreeMap<String, String> {
    let mut labels = bake_labels(installation, pool);
    labels.insert(keys::K3S_VERSION.to_owned(), version_label(version));
    labels
}

/// What a pool boots from this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootChoice {
    /// The baked image with this id.
    Baked(u64),
    /// The base image: no baked image was asked for.
    Base,
    /// The base image, because the baked one asked for cannot be used (the reason).
    Fallback(String),
}

/// The image `pool`'s servers boot from, given what `images` lists and the cluster's K3s
/// `version`.
pub fn choose(
    wanted: Option<&BakedImage>,
    installation: &str,
    pool: &str,
    images: &Source<Image>,
    version: Option<&str>,
) -> BootChoice {
    let Some(wanted) = wanted else {
        return BootChoice::Base;
    };
    let Some(version) = version else {
        return BootChoice::Fallback(
            "the cluster's K3s version is not known yet, so no baked image can be checked against it"
                .to_owned(),
        );
    };
    let list = match images {
        Source::Complete { items } | Source::Partial { items, .. } => items,
        Source::Unavailable { reason } => {
            return BootChoice::Fallback(format!("the image list could not be read ({reason})"));
        }
    };
    let label = version_label(version);
    let own = bake_labels(installation, pool);
    let selected = |i: &&Image| match wanted {
        BakedImage::Auto => own.iter().all(|(k, v)| i.labels.get(k) == Some(v)),
        BakedImage::Id(id) => i.id == *id,
        BakedImage::Selector(s) => s.matches(&i.labels),
    };
    let candidates: Vec<&Image> = list.iter().filter(selected).collect();
    let best = candidates
        .iter()
        .filter(|i| i.status == ImageStatus::Available)
        .filter(|i| i.labels.get(keys::K3S_VERSION) == Some(&label))
        .max_by_key(|i| (i.created, i.id));
    if let Some(best) = best {
        return BootChoice::Baked(best.id);
    }
    let what = match wanted {
        BakedImage::Auto => format!("baked image for pool {pool}"),
        BakedImage::Id(id) => format!("baked image {id}"),
        BakedImage::Selector(s) => format!("baked image matching `{}`", s.text),
    };
    let why = if candidates.is_empty() {
        match images {
            Source::Partial { reason, .. } => {
                format!("no {what} is listed (the image list is incomplete: {reason})")
            }
            _ => format!("no {what} exists; run `gitea-ci-autoscaler image bake --pool {pool}`"),
        }
    } else {
        let mut found: Vec<String> = candidates
            .iter()
            .take(3)
            .map(|i| {
                let v = i
                    .labels
                    .get(keys::K3S_VERSION)
                    .map_or("no K3s version label", String::as_str);
                format!("{} ({v}, {:?})", i.id, i.status)
            })
            .collect();
        if candidates.len() > found.len() {
            found.push("…".to_owned());
        }
        format!(
            "no available {what} was baked for K3s {version} (found {}); bake one with \
             `gitea-ci-autoscaler image bake --pool {pool}`",
            found.join(", ")
        )
    };
    BootChoice::Fallback(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: u64, version: &str, created: &str, status: ImageStatus) -> Image {
        Image {
            id,
            labels: baked_image_labels("ci", "linux", version),
            created: created.parse().unwrap(),
            status,
        }
    }

    fn images() -> Source<Image> {
        Source::complete(vec![
            image(
                1,
                "v1.33.4+k3s1",
                "2026-11-01T00:00:00Z",
                ImageStatus::Available,
            ),
            image(
                2,
                "v1.33.4+k3s1",
                "2026-11-20T00:00:00Z",
                ImageStatus::Available,
            ),
            image(
                3,
                "v1.33.4+k3s1",
                "2026-11-25T00:00:00Z",
                ImageStatus::Creating,
            ),
            image(
                4,
                "v1.32.1+k3s1",
                "2026-11-26T00:00:00Z",
                ImageStatus::Available,
            ),
        ])
    }

    #[test]
    fn the_newest_available_image_of_the_clusters_version_wins() {
        let got = choose(
            Some(&BakedImage::Auto),
            "ci",
            "linux",
            &images(),
            Some("v1.33.4+k3s1"),
        );
        assert_eq!(got, BootChoice::Baked(2));
        let got = choose(
            Some(&BakedImage::Auto),
            "ci",
            "linux",
            &images(),
            Some("v1.32.1+k3s1"),
        );
        assert_eq!(got, BootChoice::Baked(4));
    }

    #[test]
    fn another_version_a_missing_image_or_an_unread_list_falls_back_and_says_why() {
        let v = Some("v1.34.0+k3s1");
        let BootChoice::Fallback(why) =
            choose(Some(&BakedImage::Id(2)), "ci", "linux", &images(), v)
        else {
            panic!("another version is never used");
        };
        assert!(
            why.contains("K3s v1.34.0+k3s1") && why.contains("v1.33.4_k3s1"),
            "{why}"
        );
        let BootChoice::Fallback(why) =
            choose(Some(&BakedImage::Id(9)), "ci", "linux", &images(), v)
        else {
            panic!();
        };
        assert!(why.contains("no baked image 9 exists"), "{why}");
        let BootChoice::Fallback(why) = choose(
            Some(&BakedImage::Auto),
            "ci",
            "linux",
            &Source::unavailable("403"),
            v,
        ) else {
            panic!();
        };
        assert!(why.contains("could not be read (403)"), "{why}");
        assert!(matches!(
            choose(Some(&BakedImage::Auto), "ci", "linux", &images(), None),
            BootChoice::Fallback(_)
        ));
        assert_eq!(
            choose(None, "ci", "linux", &Source::unavailable("x"), v),
            BootChoice::Base
        );
    }

    #[test]
    fn another_pools_or_installations_images_are_not_auto() {
        assert!(matches!(
            choose(
                Some(&BakedImage::Auto),
                "ci",
                "arm",
                &images(),
                Some("v1.33.4+k3s1")
            ),
            BootChoice::Fallback(_)
        ));
        assert!(matches!(
            choose(
                Some(&BakedImage::Auto),
                "other",
                "linux",
                &images(),
                Some("v1.33.4+k3s1")
            ),
            BootChoice::Fallback(_)
        ));
    }

    #[test]
    fn the_setting_reads_back_as_written() {
        for text in [
            "auto",
            "4711",
            "gitea-ci-autoscaler/pool=linux,!old,tier!=x",
        ] {
            let b: BakedImage = text.parse().unwrap();
            assert_eq!(b.to_string(), text);
        }
        assert!(matches!("4711".parse(), Ok(BakedImage::Id(4711))));
        for bad in ["", "a=b,,c", "a=b c", "=v", "99999999999999999999999"] {
            assert!(bad.parse::<BakedImage>().is_err(), "{bad}");
        }
        let s: Selector = "a=1,!b,c,d!=2".parse().unwrap();
        let l = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(s.matches(&l(&[("a", "1"), ("c", "")])));
        assert!(!s.matches(&l(&[("a", "1"), ("c", ""), ("b", "")])));
        assert!(!s.matches(&l(&[("a", "1"), ("c", ""), ("d", "2")])));
        assert!(!s.matches(&l(&[("a", "2"), ("c", "")])));
    }
}
