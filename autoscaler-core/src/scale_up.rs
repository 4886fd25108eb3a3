//! Scale up: how many servers each pool needs, within every limit, and where to create them.
//!
//! A pool needs `unmet jobs + warm target − upcoming slots − slots ending soon − spare idle
//! slots` more slots, rounded up to whole nodes, and at least enough nodes for its minimum. That is clamped by the
//! pool's and the global maximum (counting every owned server, whatever its state: they are all
//! paid), the per-tick limit and the Hetzner request budget. After failures the pool backs off
//! exponentially; after a capacity error it moves on to its next server type or location.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet;

use jiff::{SignedDuration, Timestamp};

use crate::config::{Config, PoolPolicy};
use crate::keys;
use crate::snapshot::{CreateFailure, CreateFailureKind};

/// Why a pool may not create right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// Backing off after `failures` consecutive failures.
    Backoff { until: Timestamp, failures: usize },
    /// Every server type and location had a capacity error recently.
    NoCapacity { until: Timestamp },
}

/// Where the pool's next server goes, or why it cannot be created.
pub(crate) fn placement<'p>(
    config: &Config,
    pool: &'p PoolPolicy,
    failures: &[CreateFailure],
    last_created: Option<Timestamp>,
    now: Timestamp,
) -> Result<(&'p str, &'p str), Blocked> {
    let name = pool.config.name.as_str();
    let mine = || failures.iter().filter(move |f| f.pool == name);

    // Failures since the pool's newest server count as consecutive.
    let since_success = |f: &&CreateFailure| last_created.is_none_or(|c| f.at > c);
    let others: Vec<&CreateFailure> = mine()
        .filter(|f| f.kind == CreateFailureKind::Other)
        .filter(since_success)
        .collect();
    if let Some(last) = others.iter().map(|f| f.at).max() {
        let wait = backoff(config, others.len());
        let until = last.checked_add(wait).unwrap_or(Timestamp::MAX);
        if now < until {
            return Err(Blocked::Backoff {
                until,
                failures: others.len(),
            });
        }
    }

    let cooldown = config.capacity_cooldown;
    let mut earliest: Option<Timestamp> = None;
    for server_type in &pool.config.server_types {
        for location in &pool.config.locations {
            let last_capacity = mine()
                .filter(|f| {
                    f.kind == CreateFailureKind::Capacity
                        && &f.server_type == server_type
                        && &f.location == location
                })
                .map(|f| f.at)
                .max();
            match last_capacity {
                Some(at) if now < at.checked_add(cooldown).unwrap_or(Timestamp::MAX) => {
                    let free_at = at.checked_add(cooldown).unwrap_or(Timestamp::MAX);
                    earliest = Some(earliest.map_or(free_at, |e| e.min(free_at)));
                }
                _ => return Ok((server_type, location)),
            }
        }
    }
    Err(Blocked::NoCapacity {
        until: earliest.unwrap_or(now),
    })
}

fn backoff(config: &Config, failures: usize) -> SignedDuration {
    let exponent = u32::try_from(failures.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(30);
    let base = config.create_backoff.base.as_secs().max(1);
    let wait = base.saturating_mul(1_i64 << exponent);
    SignedDuration::from_secs(wait.min(config.create_backoff.max.as_secs()))
}

/// Server names: `<installation>-<pool>-<8 base-36 digits of the creation millisecond><2 digits>`.
/// Deterministic for a given `now`, unique among `taken`, and a valid hostname and node name.
pub(crate) struct Namer<'a> {
    prefix: String,
    stamp: String,
    next: u32,
    taken: FxHashSet<&'a str>,
}

impl<'a> Namer<'a> {
    /// `existing` are all server and node names; only those that could collide are kept.
    pub(crate) fn new(
        installation: &str,
        now: Timestamp,
        existing: impl Iterator<Item = &'a str>,
    ) -> Self {
        let millis = u64::try_from(now.as_millisecond()).unwrap_or(0);
        let stamp = base36(millis, 8);
        let taken = existing
            .filter(|n| {
                n.len() >= 10 && n.as_bytes()[n.len() - 10..n.len() - 2] == *stamp.as_bytes()
            })
            .collect();
        Self {
            prefix: installation.to_owned(),
            stamp,
            next: 0,
            taken,
        }
    }

    pub(crate) fn next(&mut self, pool: &str) -> String {
        loop {
            let name = format!(
                "{}-{pool}-{}{}",
                self.prefix,
                self.stamp,
                base36(u64::from(self.next), 2)
            );
            self.next += 1;
            if !self.taken.contains(name.as_str()) {
                return name;
            }
        }
    }
}

fn base36(mut n: u64, width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::with_capacity(width);
    while n > 0 || out.len() < width {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    // Keep the last `width` digits: the low digits change every millisecond.
    String::from_utf8_lossy(&out[out.len() - width..]).into_owned()
}

/// The labels a new node registers with: ownership and pool.
pub(crate) fn node_labels(installation: &str, pool: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (keys::OWNER.to_owned(), installation.to_owned()),
        (keys::POOL.to_owned(), pool.to_owned()),
    ])
}

/// The labels a new server carries: ownership, pool and, when known, the cluster it joins.
pub(crate) fn server_labels(
    installation: &str,
    pool: &str,
    cluster: Option<&str>,
) -> BTreeMap<String, String> {
    let mut labels = node_labels(installation, pool);
    if let Some(c) = cluster {
        labels.insert(keys::CLUSTER.to_owned(), c.to_owned());
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn failure(
        kind: CreateFailureKind,
        at: &str,
        server_type: &str,
        location: &str,
    ) -> CreateFailure {
        CreateFailure {
            pool: "linux".into(),
            server_type: server_type.into(),
            location: location.into(),
            at: t(at),
            kind,
            message: String::new(),
        }
    }

    fn policy(types: &[&str], locations: &[&str]) -> crate::config::Policy {
        let mut c = Config::default();
        c.pools[0].server_types = types.iter().map(|s| (*s).to_owned()).collect();
        c.pools[0].locations = locations.iter().map(|s| (*s).to_owned()).collect();
        c.validate().expect("valid")
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let c = Config::default();
        assert_eq!(backoff(&c, 1), SignedDuration::from_secs(30));
        assert_eq!(backoff(&c, 3), SignedDuration::from_secs(120));
        assert_eq!(backoff(&c, 40), SignedDuration::from_mins(10));
    }

    #[test]
    fn failures_back_off_until_the_wait_is_over() {
        let p = policy(&["cx33"], &["nbg1"]);
        let f = vec![
            failure(
                CreateFailureKind::Other,
                "2026-11-25T10:00:00Z",
                "cx33",
                "nbg1",
            ),
            failure(
                CreateFailureKind::Other,
                "2026-11-25T10:00:30Z",
                "cx33",
                "nbg1",
            ),
        ];
        let got = placement(
            p.config(),
            &p.pools()[0],
            &f,
            None,
            t("2026-11-25T10:01:00Z"),
        );
        assert_eq!(
            got,
            Err(Blocked::Backoff {
                until: t("2026-11-25T10:01:30Z"),
                failures: 2
            })
        );
        let later = placement(
            p.config(),
            &p.pools()[0],
            &f,
            None,
            t("2026-11-25T10:01:30Z"),
        );
        assert_eq!(later, Ok(("cx33", "nbg1")));
    }

    #[test]
    fn a_server_created_after_the_failures_ends_the_backoff() {
        let p = policy(&["cx33"], &["nbg1"]);
        let f = vec![failure(
            CreateFailureKind::Other,
            "2026-11-25T10:00:00Z",
            "cx33",
            "nbg1",
        )];
        let got = placement(
            p.config(),
            &p.pools()[0],
            &f,
            Some(t("2026-11-25T10:00:05Z")),
            t("2026-11-25T10:00:10Z"),
        );
        assert_eq!(got, Ok(("cx33", "nbg1")));
    }

    #[test]
    fn a_capacity_error_moves_to_the_next_location_then_type() {
        let p = policy(&["cx33", "cpx32"], &["nbg1", "fsn1"]);
        let now = "2026-11-25T10:01:00Z";
        let mut f = vec![failure(
            CreateFailureKind::Capacity,
            "2026-11-25T10:00:00Z",
            "cx33",
            "nbg1",
        )];
        assert_eq!(
            placement(p.config(), &p.pools()[0], &f, None, t(now)),
            Ok(("cx33", "fsn1"))
        );
        f.push(failure(
            CreateFailureKind::Capacity,
            "2026-11-25T10:00:10Z",
            "cx33",
            "fsn1",
        ));
        assert_eq!(
            placement(p.config(), &p.pools()[0], &f, None, t(now)),
            Ok(("cpx32", "nbg1"))
        );
        f.push(failure(
            CreateFailureKind::Capacity,
            "2026-11-25T10:00:20Z",
            "cpx32",
            "nbg1",
        ));
        f.push(failure(
            CreateFailureKind::Capacity,
            "2026-11-25T10:00:30Z",
            "cpx32",
            "fsn1",
        ));
        assert_eq!(
            placement(p.config(), &p.pools()[0], &f, None, t(now)),
            Err(Blocked::NoCapacity {
                until: t("2026-11-25T10:10:00Z")
            })
        );
        // After the cooldown the first choice is tried again.
        assert_eq!(
            placement(
                p.config(),
                &p.pools()[0],
                &f,
                None,
                t("2026-11-25T10:10:00Z")
            ),
            Ok(("cx33", "nbg1"))
        );
    }

    #[test]
    fn names_are_unique_valid_hostnames() {
        let mut namer = Namer::new(
            "default",
            t("2026-11-25T10:00:00Z"),
            ["default-linux-00000000"].into_iter(),
        );
        let a = namer.next("linux");
        let b = namer.next("linux");
        assert_ne!(a, b);
        for n in [&a, &b] {
            assert!(
                n.len() <= 63
                    && n.bytes()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'),
                "{n}"
            );
            assert!(n.starts_with("default-linux-"), "{n}");
        }
    }

    #[test]
    fn a_taken_name_is_skipped() {
        let now = t("2026-11-25T10:00:00Z");
        let first = Namer::new("default", now, std::iter::empty()).next("linux");
        let mut namer = Namer::new("default", now, [first.as_str()].into_iter());
        assert_ne!(namer.next("linux"), first);
    }
}
