//! The configuration people write, and the [`Policy`] it becomes once every field was checked.
//!
//! [`Config`] is the serde form (TOML, JSON, YAML): every field has a default, unknown fields
//! are refused so a typo never silently means "default". [`Config::validate`] lists every problem
//! at once, naming the field, and returns a [`Policy`] that the decision can use without checks.

use jiff::SignedDuration;
use jiff::civil::{Time, Weekday};
use jiff::tz::Offset;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::error::ConfigProblem;
use crate::labels::names_of;

/// The version of the configuration's form this crate reads and writes.
pub const CONFIG_VERSION: u32 = 1;

/// Server names are `<installation>-<pool>-<10 characters>` and must stay a valid 63-character
/// hostname: the suffix and its `-` take 11, the `-` after the installation one more.
const NAME_SUFFIX_LEN: usize = 11;
const MAX_NAME_LEN: usize = 63;

/// The whole configuration of one installation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The version of this form; see [`CONFIG_VERSION`].
    pub version: u32,
    /// This installation's name: the value of the ownership label on its servers and nodes, and
    /// the start of its server names. Two installations with different names never touch each
    /// other's machines, even in one Hetzner project.
    pub installation: String,
    /// The most servers this installation may own at once, across all pools.
    pub max_nodes: u32,
    /// The most servers created in one tick, so a burst cannot drain the API budget.
    pub max_creates_per_tick: u32,
    /// How long a server must be seen without its node, on complete snapshots, before it is deleted.
    #[serde(with = "crate::duration")]
    pub node_missing_confirm: SignedDuration,
    /// Backoff after failed creations (not capacity errors).
    pub create_backoff: Backoff,
    /// How long a server type in a location is skipped after Hetzner reported no capacity.
    #[serde(with = "crate::duration")]
    pub capacity_cooldown: SignedDuration,
    /// Hetzner requests kept in reserve for teardown; creations stop below it.
    pub hetzner_reserve: u32,
    /// The UTC offset the warm schedules are written in, e.g. `"+01:00"`.
    pub schedule_utc_offset: String,
    /// The pools, tried in this order for each waiting job.
    pub pools: Vec<PoolConfig>,
}

/// Exponential backoff after failed creations: `base`, `2·base`, `4·base`, … up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Backoff {
    /// The first wait.
    #[serde(with = "crate::duration")]
    pub base: SignedDuration,
    /// The longest wait.
    #[serde(with = "crate::duration")]
    pub max: SignedDuration,
}

/// One pool of identical runner nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// The pool's name (lowercase letters, digits and `-`), used in labels and server names.
    pub name: String,
    /// The labels its runners register with, e.g. `ubuntu-latest:docker://node:20`. A waiting job
    /// is served by this pool when all its `runs-on` labels are among these names.
    pub labels: Vec<String>,
    /// Hetzner server types, in order of preference; the next is used after a capacity error.
    pub server_types: Vec<String>,
    /// Hetzner locations, in order of preference.
    pub locations: Vec<String>,
    /// The base image to boot (a Hetzner system image name or an image id).
    pub image: String,
    /// A baked image to boot instead, with K3s and the runner images already on it (made by
    /// `gitea-ci-autoscaler image bake`): `auto` (the newest this pool's bakes made), an image
    /// id, or a label selector. Only an available image baked for the cluster's K3s version is
    /// used; without one, servers boot `image` and the plan warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baked_image: Option<crate::image::BakedImage>,
    /// Nodes kept even when idle.
    pub min_nodes: u32,
    /// The most nodes in this pool (the global maximum applies too).
    pub max_nodes: u32,
    /// Idle runner slots kept ready for the next job, outside any schedule window.
    pub warm_slots: u32,
    /// Warm slots by time of day; where windows overlap, the largest applies.
    pub warm_schedule: Vec<WarmWindow>,
    /// Runner pods per node; each registers one Gitea runner.
    pub runners_per_node: u32,
    /// How long a new server takes from the create request until its runner takes a job (the
    /// cold start). A waiting job is expected to wait this long for a new server, so a busy
    /// runner expected to be free sooner (see `Job::expected_duration`), or a server already
    /// booting, serves it at least as fast and no server is bought for it; jobs past their
    /// expected end are not counted on. Zero counts on no busy runner. Read as `reuse_within`
    /// too, its name before the target wait existed.
    #[serde(with = "crate::duration", alias = "reuse_within")]
    pub cold_start: SignedDuration,
    /// How long a waiting job may wait for a runner that is busy or booting before a server is
    /// bought for it: the one knob that trades wait for cost. Unset (the default), a quarter
    /// longer than a cold start: a new server costs a whole billing period, and a job that waits
    /// a few seconds longer than a boot for a runner already paid for saves it. `"0s"` never
    /// lets a job wait longer than a cold start for one; at `"5m"`, servers are bought only for
    /// jobs no runner already paid for would start within five minutes of their arrival.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::duration::option"
    )]
    pub target_wait: Option<SignedDuration>,
    /// How long a node must have been idle before it may be torn down. The default is zero: a
    /// started period is paid in full, so an idle node is kept to its period's teardown window
    /// and torn down there however briefly it was idle (keeping it longer means paying another
    /// whole period for it). The seed's `IDLE_TIMEOUT_MINS` sets it.
    #[serde(with = "crate::duration")]
    pub idle_timeout: SignedDuration,
    /// The provider's billing unit; a started period is paid in full (Hetzner: one hour).
    #[serde(with = "crate::duration")]
    pub billing_period: SignedDuration,
    /// Teardown may start only this close to the end of the paid period.
    #[serde(with = "crate::duration")]
    pub teardown_window: SignedDuration,
    /// Teardown must start at least this long before the period ends, to finish in time.
    #[serde(with = "crate::duration")]
    pub teardown_lead: SignedDuration,
    /// A server with no node after this long is given up.
    #[serde(with = "crate::duration")]
    pub provisioning_timeout: SignedDuration,
    /// A node with no online runner this long after it registered is given up.
    #[serde(with = "crate::duration")]
    pub join_timeout: SignedDuration,
    /// A node NotReady this long is given up.
    #[serde(with = "crate::duration")]
    pub not_ready_timeout: SignedDuration,
}

/// A time-of-day window with its own warm-slot target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmWindow {
    /// The days the window starts on; empty means every day.
    #[serde(default)]
    pub days: Vec<Day>,
    /// Start, `"HH:MM"`, in the configured UTC offset.
    pub start: String,
    /// End, `"HH:MM"`; an end before the start wraps past midnight.
    pub end: String,
    /// Warm slots while the window is open.
    pub slots: u32,
}

/// A day of the week, as written in warm schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    fn weekday(self) -> Weekday {
        match self {
            Self::Mon => Weekday::Monday,
            Self::Tue => Weekday::Tuesday,
            Self::Wed => Weekday::Wednesday,
            Self::Thu => Weekday::Thursday,
            Self::Fri => Weekday::Friday,
            Self::Sat => Weekday::Saturday,
            Self::Sun => Weekday::Sunday,
        }
    }
}

impl Default for Config {
    /// The seed daemon's defaults: at most 5 `ccx33` servers in `nbg1` on `ubuntu-24.04`.
    fn default() -> Self {
        Self {
            version: CONFIG_VERSION,
            installation: "default".into(),
            max_nodes: 5,
            max_creates_per_tick: 50,
            node_missing_confirm: SignedDuration::from_secs(15),
            create_backoff: Backoff::default(),
            capacity_cooldown: SignedDuration::from_mins(10),
            hetzner_reserve: 100,
            schedule_utc_offset: "+00:00".into(),
            pools: vec![PoolConfig::default()],
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: SignedDuration::from_secs(30),
            max: SignedDuration::from_mins(10),
        }
    }
}

impl Default for PoolConfig {
    /// act_runner's default labels; the seed's window (the last 5 minutes of the billed hour)
    /// and 600 s to provision; no idle minimum (see `idle_timeout`).
    fn default() -> Self {
        Self {
            name: "linux".into(),
            labels: vec![
                "ubuntu-latest".into(),
                "ubuntu-24.04".into(),
                "ubuntu-22.04".into(),
            ],
            server_types: vec!["ccx33".into()],
            locations: vec!["nbg1".into()],
            image: "ubuntu-24.04".into(),
            baked_image: None,
            min_nodes: 0,
            max_nodes: 5,
            warm_slots: 0,
            warm_schedule: Vec::new(),
            runners_per_node: 1,
            cold_start: SignedDuration::from_secs(60),
            target_wait: None,
            idle_timeout: SignedDuration::ZERO,
            billing_period: SignedDuration::from_hours(1),
            teardown_window: SignedDuration::from_secs(90),
            teardown_lead: SignedDuration::from_secs(45),
            provisioning_timeout: SignedDuration::from_secs(600),
            join_timeout: SignedDuration::from_mins(5),
            not_ready_timeout: SignedDuration::from_mins(5),
        }
    }
}

impl PoolConfig {
    /// How long before its period ends a teardown may still pass the point of no return
    /// (deleting the runners): the node-missing confirmation plus half of the rest of the
    /// lead, for the drain, the node's deletion and the server's. Later than that, a teardown
    /// that is still reversible is given up and the node kept for the next window: finishing
    /// it would start another paid period for a machine that no longer serves.
    pub fn no_return_lead(&self, node_missing_confirm: SignedDuration) -> SignedDuration {
        let confirm = node_missing_confirm.max(SignedDuration::ZERO);
        let rest = self
            .teardown_lead
            .saturating_sub(confirm)
            .max(SignedDuration::ZERO);
        confirm.saturating_add(rest / 2)
    }

    /// When the join token of a server of this pool created at `created` expires: once the
    /// provisioning timeout has passed the server is given up, so the token need not outlive
    /// it (plus [`keys::JOIN_TOKEN_GRACE`](crate::keys::JOIN_TOKEN_GRACE) for clock skew). The
    /// shell mints with this expiry and the core retires tokens past it, from the same rule.
    pub fn join_token_expiry(&self, created: jiff::Timestamp) -> jiff::Timestamp {
        crate::time::add(
            crate::time::add(created, self.provisioning_timeout),
            crate::keys::JOIN_TOKEN_GRACE,
        )
    }
}

impl Config {
    /// Parses the JSON form, refusing versions this crate does not know. (TOML and YAML go
    /// through serde the same way; the daemon reads them.)
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let config: Self = serde_json::from_str(text).map_err(|e| Error::Json {
            what: "configuration",
            source: e,
        })?;
        if config.version != CONFIG_VERSION {
            return Err(Error::UnsupportedVersion {
                what: "configuration",
                found: u64::from(config.version),
                supported: CONFIG_VERSION,
            });
        }
        Ok(config)
    }

    /// Checks every field and returns the policy the decision runs on, or every problem found.
    pub fn validate(&self) -> Result<Policy, Error> {
        let mut p = Problems::default();
        if self.version != CONFIG_VERSION {
            p.add(
                "version",
                format!("is {}, this build reads {CONFIG_VERSION}", self.version),
            );
        }
        check_dns_label(&mut p, "installation", &self.installation, 20);
        p.count("max_nodes", self.max_nodes, 0, MAX_NODES);
        p.count(
            "max_creates_per_tick",
            self.max_creates_per_tick,
            1,
            MAX_CREATES_PER_TICK,
        );
        p.count(
            "hetzner_reserve",
            self.hetzner_reserve,
            0,
            HETZNER_REQUESTS_PER_HOUR - 1,
        );
        p.positive("node_missing_confirm", self.node_missing_confirm);
        p.positive("create_backoff.base", self.create_backoff.base);
        p.positive("create_backoff.max", self.create_backoff.max);
        if self.create_backoff.max < self.create_backoff.base {
            p.add(
                "create_backoff.max",
                "must not be shorter than create_backoff.base",
            );
        }
        p.positive("capacity_cooldown", self.capacity_cooldown);
        let offset = match parse_offset(&self.schedule_utc_offset) {
            Some(o) => o,
            None => {
                p.add(
                    "schedule_utc_offset",
                    format!(
                        "{:?} is not an offset such as \"+01:00\"",
                        self.schedule_utc_offset
                    ),
                );
                Offset::UTC
            }
        };
        if self.pools.is_empty() {
            p.add("pools", "must hold at least one pool");
        }
        let mut pools = Vec::with_capacity(self.pools.len());
        for (i, pool) in self.pools.iter().enumerate() {
            let at = format!("pools[{i}]");
            if self.pools[..i].iter().any(|other| other.name == pool.name) {
                p.add(
                    format!("{at}.name"),
                    format!("{:?} is used by an earlier pool", pool.name),
                );
            }
            let max_name =
                MAX_NAME_LEN.saturating_sub(self.installation.len() + 1 + NAME_SUFFIX_LEN);
            check_dns_label(&mut p, &format!("{at}.name"), &pool.name, max_name.min(20));
            pools.push(validate_pool(&mut p, &at, pool, self.node_missing_confirm));
        }
        p.finish()?;
        Ok(Policy {
            config: self.clone(),
            pools,
            offset,
        })
    }
}

/// The teardown steps besides the node-missing confirmation, at about one decision a second.
const MIN_TEARDOWN_STEPS: SignedDuration = SignedDuration::from_secs(10);

/// The longest any configured duration may be. Every timeout, window and period of a CI fleet is
/// minutes to hours; anything beyond a month is a typo (seconds written as milliseconds, a unit
/// left off), and refusing it keeps every sum of durations and instants far from overflowing.
pub const MAX_DURATION: SignedDuration = SignedDuration::from_hours(30 * 24);

/// The most servers one installation may own: far above any Hetzner project's limit, low enough
/// that slot counts (nodes × runners per node) stay small numbers.
pub const MAX_NODES: u32 = 100_000;

/// The most creations one decision may ask for.
pub const MAX_CREATES_PER_TICK: u32 = 1_000;

/// Hetzner Cloud's request budget per hour and project: a reserve at or above it would stop
/// every creation for good.
pub const HETZNER_REQUESTS_PER_HOUR: u32 = 3_600;

fn validate_pool(
    p: &mut Problems,
    at: &str,
    pool: &PoolConfig,
    node_missing_confirm: SignedDuration,
) -> PoolPolicy {
    if pool.labels.is_empty() {
        p.add(
            format!("{at}.labels"),
            "must list the labels its runners register with",
        );
    }
    for (j, label) in pool.labels.iter().enumerate() {
        if crate::labels::label_name(label).trim().is_empty() {
            p.add(format!("{at}.labels[{j}]"), "has an empty name");
        }
    }
    for (field, list) in [
        ("server_types", &pool.server_types),
        ("locations", &pool.locations),
    ] {
        if list.is_empty() || list.iter().any(|s| s.trim().is_empty()) {
            p.add(
                format!("{at}.{field}"),
                "must list at least one non-empty name",
            );
        }
    }
    if pool.image.trim().is_empty() {
        p.add(format!("{at}.image"), "must name an image");
    }
    p.count(&format!("{at}.max_nodes"), pool.max_nodes, 0, MAX_NODES);
    if pool.min_nodes > pool.max_nodes {
        p.add(
            format!("{at}.min_nodes"),
            format!("{} is above max_nodes {}", pool.min_nodes, pool.max_nodes),
        );
    }
    if !(1..=64).contains(&pool.runners_per_node) {
        p.add(format!("{at}.runners_per_node"), "must be between 1 and 64");
    }
    let capacity = u64::from(pool.max_nodes) * u64::from(pool.runners_per_node);
    for (field, slots) in std::iter::once(("warm_slots".to_owned(), pool.warm_slots)).chain(
        pool.warm_schedule
            .iter()
            .enumerate()
            .map(|(k, w)| (format!("warm_schedule[{k}].slots"), w.slots)),
    ) {
        if u64::from(slots) > capacity {
            p.add(
                format!("{at}.{field}"),
                format!("{slots} slots exceed max_nodes × runners_per_node = {capacity}"),
            );
        }
    }
    p.non_negative(&format!("{at}.cold_start"), pool.cold_start);
    if let Some(t) = pool.target_wait {
        p.non_negative(&format!("{at}.target_wait"), t);
    }
    p.non_negative(&format!("{at}.idle_timeout"), pool.idle_timeout);
    if pool.billing_period < SignedDuration::from_mins(1) {
        p.add(
            format!("{at}.billing_period"),
            "must be at least one minute",
        );
    } else {
        p.positive(&format!("{at}.billing_period"), pool.billing_period);
    }
    p.positive(&format!("{at}.teardown_window"), pool.teardown_window);
    p.non_negative(&format!("{at}.teardown_lead"), pool.teardown_lead);
    // A teardown is about eight decisions, one of them waiting node_missing_confirm for the node
    // to stay gone; started later than this, it ends in the next paid period.
    let needed = node_missing_confirm.saturating_add(MIN_TEARDOWN_STEPS);
    if pool.teardown_lead >= SignedDuration::ZERO && pool.teardown_lead < needed {
        p.add(
            format!("{at}.teardown_lead"),
            format!(
                "must be at least node_missing_confirm + {MIN_TEARDOWN_STEPS:#} ({needed:#}): a \
                 teardown waits that long for its node to stay gone, and one started later ends \
                 in the next paid period"
            ),
        );
    }
    if pool.teardown_lead >= pool.teardown_window {
        p.add(
            format!("{at}.teardown_lead"),
            "must be shorter than teardown_window, or teardown could never start",
        );
    }
    if pool.teardown_window > pool.billing_period {
        p.add(
            format!("{at}.teardown_window"),
            "must not be longer than billing_period",
        );
    }
    p.positive(
        &format!("{at}.provisioning_timeout"),
        pool.provisioning_timeout,
    );
    p.positive(&format!("{at}.join_timeout"), pool.join_timeout);
    p.positive(&format!("{at}.not_ready_timeout"), pool.not_ready_timeout);
    let mut schedule = Vec::with_capacity(pool.warm_schedule.len());
    for (k, w) in pool.warm_schedule.iter().enumerate() {
        let field = format!("{at}.warm_schedule[{k}]");
        let start = parse_time(p, &format!("{field}.start"), &w.start);
        let end = parse_time(p, &format!("{field}.end"), &w.end);
        if let (Some(start), Some(end)) = (start, end) {
            if start == end {
                p.add(field, "start and end are equal, so the window is empty");
            } else {
                schedule.push(ScheduleWindow {
                    days: w.days.iter().map(|d| d.weekday()).collect(),
                    start,
                    end,
                    slots: w.slots,
                });
            }
        }
    }
    PoolPolicy {
        label_names: names_of(&pool.labels),
        schedule,
        config: pool.clone(),
    }
}

fn parse_time(p: &mut Problems, field: &str, text: &str) -> Option<Time> {
    match text.parse::<Time>() {
        Ok(t) => Some(t),
        Err(_) => {
            p.add(
                field,
                format!("{text:?} is not a time of day such as \"08:30\""),
            );
            None
        }
    }
}

fn parse_offset(text: &str) -> Option<Offset> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("z") || text.eq_ignore_ascii_case("utc") {
        return Some(Offset::UTC);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..=18).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
}

/// Lowercase letters, digits and `-`, starting and ending with a letter or digit: valid in
/// hostnames, Kubernetes label values and Hetzner label values alike.
fn check_dns_label(p: &mut Problems, field: &str, value: &str, max: usize) {
    let ok_chars = value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_ends = value.bytes().next().is_some_and(|b| b != b'-') && !value.ends_with('-');
    if value.is_empty() || value.len() > max || !ok_chars || !ok_ends {
        p.add(
            field,
            format!("{value:?} must be 1 to {max} lowercase letters, digits or '-', not starting or ending with '-'"),
        );
    }
}

#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            field: field.into(),
            message: message.into(),
        });
    }

    /// A duration in `(0, MAX_DURATION]`.
    fn positive(&mut self, field: &str, d: SignedDuration) {
        if d <= SignedDuration::ZERO {
            self.add(field, "must be longer than zero");
        } else {
            self.at_most_max(field, d);
        }
    }

    /// A duration in `[0, MAX_DURATION]`.
    fn non_negative(&mut self, field: &str, d: SignedDuration) {
        if d.is_negative() {
            self.add(field, "must not be negative");
        } else {
            self.at_most_max(field, d);
        }
    }

    fn at_most_max(&mut self, field: &str, d: SignedDuration) {
        if d > MAX_DURATION {
            self.add(
                field,
                format!("{d:#} is longer than the {MAX_DURATION:#} any duration may be"),
            );
        }
    }

    /// A count in `[min, max]`.
    fn count(&mut self, field: &str, n: u32, min: u32, max: u32) {
        if n < min || n > max {
            self.add(field, format!("{n} must be between {min} and {max}"));
        }
    }

    fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidConfig { problems: self.0 })
        }
    }
}

/// A checked configuration: what [`crate::decide`] runs on. Build it with [`Config::validate`].
#[derive(Debug, Clone)]
pub struct Policy {
    config: Config,
    pools: Vec<PoolPolicy>,
    offset: Offset,
}

impl Policy {
    /// The configuration this policy was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn pools(&self) -> &[PoolPolicy] {
        &self.pools
    }

    pub(crate) fn pool_index(&self, name: &str) -> Option<usize> {
        self.pools.iter().position(|p| p.config.name == name)
    }

    /// The warm-slot target of pool `index` at `now`.
    pub fn warm_target(&self, index: usize, now: jiff::Timestamp) -> u32 {
        let pool = &self.pools[index];
        let local = now
            .to_zoned(jiff::tz::TimeZone::fixed(self.offset))
            .datetime();
        pool.schedule
            .iter()
            .filter(|w| w.is_open(local))
            .map(|w| w.slots)
            .max()
            .unwrap_or(pool.config.warm_slots)
    }
}

/// A pool with its label names and schedule parsed.
#[derive(Debug, Clone)]
pub(crate) struct PoolPolicy {
    pub(crate) config: PoolConfig,
    /// Sorted, unique label names its runners register with.
    pub(crate) label_names: Vec<String>,
    schedule: Vec<ScheduleWindow>,
}

#[derive(Debug, Clone)]
struct ScheduleWindow {
    days: Vec<Weekday>,
    start: Time,
    end: Time,
    slots: u32,
}

impl ScheduleWindow {
    fn is_open(&self, local: jiff::civil::DateTime) -> bool {
        let t = local.time();
        let starts_on = |day: Weekday| self.days.is_empty() || self.days.contains(&day);
        if self.start < self.end {
            starts_on(local.weekday()) && self.start <= t && t < self.end
        } else {
            // Wraps past midnight: open from `start` on a listed day until `end` the next day.
            (starts_on(local.weekday()) && t >= self.start)
                || (starts_on(local.weekday().previous()) && t < self.end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(config: &Config) -> Vec<String> {
        match config.validate() {
            Ok(_) => Vec::new(),
            Err(Error::InvalidConfig { problems }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn the_default_configuration_is_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn a_lead_too_short_for_a_whole_teardown_is_refused() {
        let mut c = Config::default();
        c.pools[0].teardown_lead = SignedDuration::from_secs(20);
        let found = problems(&c);
        assert!(
            found.iter().any(|p| p.starts_with(
                "pools[0].teardown_lead: must be at least node_missing_confirm + 10s (25s)"
            )),
            "{found:?}"
        );
        c.pools[0].teardown_lead = SignedDuration::from_secs(25);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let mut c = Config {
            installation: "Bad_Name".into(),
            ..Config::default()
        };
        c.pools[0].labels.clear();
        c.pools[0].min_nodes = 9;
        c.pools[0].teardown_lead = SignedDuration::from_mins(10);
        let found = problems(&c);
        assert!(
            found.iter().any(|p| p.starts_with("installation:")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|p| p.starts_with("pools[0].labels:")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|p| p.starts_with("pools[0].min_nodes:")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("pools[0].teardown_lead:")),
            "{found:?}"
        );
        assert_eq!(found.len(), 4, "{found:?}");
    }

    #[test]
    fn duplicate_pool_names_are_refused() {
        let mut c = Config::default();
        c.pools.push(PoolConfig::default());
        assert_eq!(
            problems(&c),
            vec!["pools[1].name: \"linux\" is used by an earlier pool"]
        );
    }

    #[test]
    fn durations_read_as_people_write_them() {
        let c = Config::from_json(
            r#"{"pools":[{"name":"x","labels":["a"],"idle_timeout":"2m 30s","teardown_lead":45}]}"#,
        )
        .expect("valid");
        assert_eq!(c.pools[0].idle_timeout, SignedDuration::from_secs(150));
        assert_eq!(c.pools[0].teardown_lead, SignedDuration::from_secs(45));
        let text = serde_json::to_string(&c).expect("serializes");
        assert!(text.contains(r#""idle_timeout":"2m 30s""#), "{text}");
    }

    #[test]
    fn unknown_fields_are_refused_with_their_name() {
        let err = Config::from_json(r#"{"max_node": 3}"#).expect_err("typo");
        assert!(err.to_string().contains("max_node"), "{err}");
    }

    #[test]
    fn a_bad_duration_names_the_format() {
        let err = Config::from_json(r#"{"capacity_cooldown": "ten minutes"}"#).expect_err("bad");
        assert!(err.to_string().contains("\"5m\""), "{err}");
    }

    #[test]
    fn a_newer_version_is_refused() {
        let err = Config::from_json(r#"{"version": 2}"#).expect_err("newer");
        assert!(
            matches!(err, Error::UnsupportedVersion { found: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn warm_schedule_picks_the_largest_open_window() {
        let mut c = Config {
            schedule_utc_offset: "+01:00".into(),
            ..Config::default()
        };
        c.pools[0].warm_slots = 1;
        c.pools[0].warm_schedule = vec![
            WarmWindow {
                days: vec![Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri],
                start: "08:00".into(),
                end: "18:00".into(),
                slots: 3,
            },
            WarmWindow {
                days: vec![],
                start: "22:00".into(),
                end: "02:00".into(),
                slots: 2,
            },
        ];
        let policy = c.validate().expect("valid");
        let at = |s: &str| s.parse::<jiff::Timestamp>().expect("timestamp");
        // Wednesday 2026-11-25 09:00 at +01:00 is 08:00 UTC.
        assert_eq!(policy.warm_target(0, at("2026-11-25T08:00:00Z")), 3);
        assert_eq!(policy.warm_target(0, at("2026-11-25T06:59:00Z")), 1);
        // Saturday 2026-11-28 10:00 local: weekday window closed.
        assert_eq!(policy.warm_target(0, at("2026-11-28T09:00:00Z")), 1);
        // 01:30 local on Thursday: the wrapping window opened on Wednesday.
        assert_eq!(policy.warm_target(0, at("2026-11-26T00:30:00Z")), 2);
    }

    #[test]
    fn offsets_parse() {
        assert_eq!(parse_offset("+01:00"), Offset::from_seconds(3600).ok());
        assert_eq!(parse_offset("-05:30"), Offset::from_seconds(-19800).ok());
        assert_eq!(parse_offset("UTC"), Some(Offset::UTC));
        assert_eq!(parse_offset("01:00"), None);
        assert_eq!(parse_offset("+25:00"), None);
    }
}
