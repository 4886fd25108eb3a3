//! The plan as text for people: actions with reasons, then pools, nodes and warnings.

use std::fmt::{self, Display};

use crate::plan::{Action, NodeState, Plan};

impl Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plan at {} ({} action(s))", self.now, self.actions.len())?;
        for a in &self.actions {
            writeln!(f, "  {:<34} {}", describe(&a.action), a.reason)?;
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

/// A duration for reasons, `1h 2m 3s`: integer arithmetic only, since a plan may hold
/// thousands of reasons and jiff's general-purpose printer is built for more than this.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dur(pub(crate) jiff::SignedDuration);

impl Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.as_secs();
        if total < 0 {
            f.write_str("-")?;
        }
        let total = total.unsigned_abs();
        let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
        let mut sep = "";
        for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
            if n > 0 {
                write!(f, "{sep}{n}{unit}")?;
                sep = " ";
            }
        }
        if total == 0 {
            f.write_str("0s")?;
        }
        Ok(())
    }
}

/// An instant for reasons, as the UTC time of day `10:55:00Z`: reasons speak of the next few
/// minutes, and the full date is in the report's fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock(pub(crate) jiff::Timestamp);

impl Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let day = self.0.as_second().rem_euclid(86_400);
        write!(f, "{:02}:{:02}:{:02}Z", day / 3600, day / 60 % 60, day % 60)
    }
}

fn truncate(s: &str, n: usize) -> &str {
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

fn describe(a: &Action) -> String {
    match a {
        Action::CreateServer {
            name,
            server_type,
            location,
            ..
        } => format!("create {name} ({server_type}, {location})"),
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
    use super::Dur;
    use jiff::SignedDuration;

    #[test]
    fn instants_read_as_utc_time_of_day() {
        let t: jiff::Timestamp = "2026-11-25T09:05:07Z".parse().expect("ts");
        assert_eq!(super::Clock(t).to_string(), "09:05:07Z");
    }

    #[test]
    fn durations_read_like_the_configuration() {
        let d = |s: i64| Dur(SignedDuration::from_secs(s)).to_string();
        assert_eq!(d(0), "0s");
        assert_eq!(d(45), "45s");
        assert_eq!(d(300), "5m");
        assert_eq!(d(3723), "1h 2m 3s");
        assert_eq!(d(-90), "-1m 30s");
    }
}
