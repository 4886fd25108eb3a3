//! The plan as text for people: actions with reasons, then pools, nodes and warnings.

use crate::ServerSpec;
use std::fmt::{self, Display};

use crate::plan::{Action, NodeState, Plan};

impl Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plan at {} ({} action(s))", self.now, self.actions.len())?;
        for a in &self.actions {
            writeln!(f, "  {:<34} {}", a.action, a.reason)?;
        }
        writeln!(f, "pools:")?;
        writeln!(
            f,
            "  {:<12} {:>7} {:>5} {:>7} {:>5} {:>5} {:>8} {:>6} {:>7} {:>4} {:>7} {:>8} {:>8}",
            "pool",
            "waiting",
            "unmet",
            "running",
            "idle",
            "busy",
            "upcoming",
            "ending",
            "servers",
            "warm",
            "desired",
            "creating",
            "teardown"
        )?;
        for p in &self.pools {
            writeln!(
                f,
                "  {:<12} {:>7} {:>5} {:>7} {:>5} {:>5} {:>8} {:>6} {:>7} {:>4} {:>7} {:>8} {:>8}{}",
                truncate(&p.name, 12),
                p.waiting,
                p.unmet,
                p.running,
                p.slots.idle,
                p.slots.busy,
                p.slots.upcoming,
                p.slots.ending_soon,
                p.servers,
                p.warm_target,
                p.desired,
                p.creating,
                p.tearing_down,
                match (p.configured, p.backoff_until) {
                    (false, _) => " (not configured: draining)".to_owned(),
                    (true, Some(t)) => format!(" (backing off until {t})"),
                    (true, None) => String::new(),
                }
            )?;
        }
        writeln!(f, "nodes:")?;
        for n in &self.nodes {
            writeln!(
                f,
                "  {:<32} {:<10} {:<26} {}",
                truncate(&n.name, 32),
                truncate(&n.pool, 10),
                state(&n.state),
                n.reason
            )?;
        }
        if !self.unservable.is_empty() {
            writeln!(f, "unservable jobs: {}", self.unservable.len())?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {}", w.message)?;
        }
        Ok(())
    }
}

/// A reason put together piece by piece without the formatting machinery, which costs about a
/// microsecond a call: a decision over a large fleet writes one reason per idle machine.
pub(crate) struct Text(String);

impl Text {
    pub(crate) fn new(first: &str) -> Self {
        let mut s = String::with_capacity(96);
        s.push_str(first);
        Self(s)
    }

    pub(crate) fn s(mut self, part: &str) -> Self {
        self.0.push_str(part);
        self
    }

    /// A duration as `1h 2m 3s`, the shape the configuration is written in.
    pub(crate) fn dur(mut self, d: jiff::SignedDuration) -> Self {
        push_dur(&mut self.0, d);
        self
    }

    /// An instant as the UTC time of day `10:55:00Z`: reasons speak of the next few minutes,
    /// and the full date is in the report's fields.
    pub(crate) fn clock(mut self, t: jiff::Timestamp) -> Self {
        push_clock(&mut self.0, t);
        self
    }

    pub(crate) fn num(mut self, n: u64) -> Self {
        push_num(&mut self.0, n);
        self
    }

    pub(crate) fn done(self) -> crate::plan::Reason {
        self.0.into()
    }
}

fn push_num(s: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        s.push(char::from(d));
    }
}

fn push_two(s: &mut String, n: i64) {
    let n = n.rem_euclid(100) as u8;
    s.push(char::from(b'0' + n / 10));
    s.push(char::from(b'0' + n % 10));
}

fn push_dur(s: &mut String, d: jiff::SignedDuration) {
    let total = d.as_secs();
    if total < 0 {
        s.push('-');
    }
    let total = total.unsigned_abs();
    let (h, m, sec) = (total / 3600, total / 60 % 60, total % 60);
    let mut first = true;
    for (n, unit) in [(h, 'h'), (m, 'm'), (sec, 's')] {
        if n > 0 {
            if !first {
                s.push(' ');
            }
            push_num(s, n);
            s.push(unit);
            first = false;
        }
    }
    if total == 0 {
        s.push_str("0s");
    }
}

fn push_clock(s: &mut String, t: jiff::Timestamp) {
    let day = t.as_second().rem_euclid(86_400);
    push_two(s, day / 3600);
    s.push(':');
    push_two(s, day / 60 % 60);
    s.push(':');
    push_two(s, day % 60);
    s.push('Z');
}

pub(crate) fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn state(s: &NodeState) -> String {
    match s {
        NodeState::Teardown { step } => format!("teardown: {}", step.name()),
        NodeState::Busy { jobs } => format!("busy ({jobs} job(s))"),
        other => other.name().to_owned(),
    }
}

/// What an action does and to what, for people: `create ci-linux-… (cx33, nbg1)`,
/// `delete_runner ci-linux-…-0`, `cordon ci-linux-…`. Width and alignment flags apply.
impl Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&describe(self))
    }
}

fn describe(a: &Action) -> String {
    match a {
        Action::CreateServer(ServerSpec {
            name,
            server_type,
            location,
            baked_image,
            ..
        }) => match baked_image {
            Some(id) => format!("create {name} ({server_type}, {location}, baked image {id})"),
            None => format!("create {name} ({server_type}, {location})"),
        },
        Action::DisableRunner { runner_name, .. }
        | Action::EnableRunner { runner_name, .. }
        | Action::DeleteRunner { runner_name, .. } => format!("{} {runner_name}", a.kind()),
        Action::DeleteServer { server_name, .. } => format!("delete_server {server_name}"),
        other => match (other.node(), other.server_id()) {
            (Some(node), _) => format!("{} {node}", other.kind()),
            (None, Some(id)) => format!("{} server {id}", other.kind()),
            (None, None) => other.kind().to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    #[test]
    fn instants_read_as_utc_time_of_day() {
        let t: jiff::Timestamp = "2026-11-25T09:05:07Z".parse().expect("ts");
        assert_eq!(super::Text::new("").clock(t).done(), "09:05:07Z");
    }

    #[test]
    fn durations_read_like_the_configuration() {
        let d = |s: i64| {
            super::Text::new("")
                .dur(SignedDuration::from_secs(s))
                .done()
                .into_owned()
        };
        assert_eq!(d(0), "0s");
        assert_eq!(d(45), "45s");
        assert_eq!(d(300), "5m");
        assert_eq!(d(3723), "1h 2m 3s");
        assert_eq!(d(-90), "-1m 30s");
        assert_eq!(d(i64::MIN), "-2562047788015215h 30m 8s");
    }

    #[test]
    fn text_pieces_read_like_format() {
        let t: jiff::Timestamp = "2026-11-25T09:05:07Z".parse().expect("ts");
        let r = super::Text::new("idle for ")
            .dur(SignedDuration::from_secs(3723))
            .s("; opens at ")
            .clock(t)
            .s(", ")
            .num(1_234_567_890)
            .num(0)
            .done();
        assert_eq!(r, "idle for 1h 2m 3s; opens at 09:05:07Z, 12345678900");
    }
}
