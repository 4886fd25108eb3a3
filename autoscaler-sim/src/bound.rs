//! The fewest whole paid periods any autoscaler needs for a trace at a given wait: the yardstick
//! a policy's cost is measured against.
//!
//! A job that arrives at `a`, runs for `d` and may wait at most `w` runs, whatever the schedule,
//! throughout `[a + w, a + d)` (its mandatory part; none when `d ≤ w`). At every instant the
//! runners busy with mandatory parts, divided by the runners per machine, are machines that must
//! be paid then. Paid periods have a fixed length and may start at any instant, and a machine's
//! life is a chain of them, so the fewest periods covering that demand is a lower bound on any
//! schedule's bill. A sweep over time finds it exactly: whenever the periods bought so far fall
//! short of the demand, buy the difference at that instant (a period bought at the first instant
//! it is needed covers at least as much of the future as one bought at any other).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::world::Ms;

/// One job's demand: when it arrives and how long it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Demand {
    pub(crate) arrival: Ms,
    pub(crate) duration: Ms,
}

/// The fewest periods of length `period` that cover, at every instant, the machines the
/// mandatory parts of `jobs` need when each may wait `wait` and a machine holds `per_machine`
/// runners.
pub(crate) fn fewest_periods(jobs: &[Demand], wait: Ms, per_machine: u32, period: Ms) -> u64 {
    let period = period.max(1);
    let per_machine = i64::from(per_machine.max(1));
    let mut changes: Vec<(Ms, i64)> = Vec::with_capacity(jobs.len() * 2);
    for j in jobs {
        let (from, until) = (
            j.arrival.saturating_add(wait.max(0)),
            j.arrival.saturating_add(j.duration),
        );
        if until > from {
            changes.push((from, 1));
            changes.push((until, -1));
        }
    }
    changes.sort_unstable();
    // The ends of the periods bought so far, soonest first.
    let mut paid: BinaryHeap<Reverse<Ms>> = BinaryHeap::new();
    let (mut busy, mut bought, mut i) = (0i64, 0u64, 0usize);
    loop {
        let next_change = changes.get(i).map(|c| c.0);
        let next_end = paid.peek().map(|Reverse(t)| *t);
        let Some(t) = [next_change, next_end].into_iter().flatten().min() else {
            break;
        };
        // A period `[start, start + period)` no longer covers its end.
        while paid.peek().is_some_and(|Reverse(e)| *e <= t) {
            paid.pop();
        }
        while let Some(&(_, delta)) = changes.get(i).filter(|c| c.0 == t) {
            busy += delta;
            i += 1;
        }
        let need = usize::try_from((busy.max(0) + per_machine - 1) / per_machine).unwrap_or(0);
        while paid.len() < need {
            paid.push(Reverse(t.saturating_add(period)));
            bought += 1;
        }
        if i == changes.len() && busy <= 0 {
            break;
        }
    }
    bought
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Ms = 3_600_000;
    const M: Ms = 60_000;

    fn job(arrival: Ms, duration: Ms) -> Demand {
        Demand { arrival, duration }
    }

    #[test]
    fn one_short_job_needs_one_period_and_a_long_one_a_chain() {
        assert_eq!(fewest_periods(&[job(0, 10 * M)], 0, 1, H), 1);
        assert_eq!(
            fewest_periods(&[job(0, H)], 0, 1, H),
            1,
            "exactly one period"
        );
        assert_eq!(fewest_periods(&[job(0, H + 1)], 0, 1, H), 2);
        assert_eq!(fewest_periods(&[], 0, 1, H), 0);
    }

    #[test]
    fn jobs_one_after_another_share_a_period_and_overlapping_ones_do_not() {
        let serial = [job(0, 20 * M), job(20 * M, 20 * M), job(40 * M, 20 * M)];
        assert_eq!(fewest_periods(&serial, 0, 1, H), 1);
        let parallel = [job(0, 20 * M), job(5 * M, 20 * M), job(10 * M, 20 * M)];
        assert_eq!(fewest_periods(&parallel, 0, 1, H), 3);
        assert_eq!(
            fewest_periods(&parallel, 0, 3, H),
            1,
            "three runners a machine"
        );
        assert_eq!(fewest_periods(&parallel, 0, 2, H), 2);
    }

    #[test]
    fn waiting_shortens_what_must_run_and_a_job_no_longer_than_the_wait_needs_nothing() {
        let parallel = [job(0, 20 * M), job(5 * M, 20 * M), job(10 * M, 20 * M)];
        // Mandatory parts [15, 20), [20, 25), [25, 30) minutes: one after another.
        assert_eq!(fewest_periods(&parallel, 15 * M, 1, H), 1);
        assert_eq!(fewest_periods(&[job(0, 60_000)], 60_000, 1, H), 0);
    }

    #[test]
    fn a_period_that_ends_as_demand_returns_is_replaced_at_that_instant() {
        // Busy [0, 10 min) and [60, 70 min): the first period ends at 60 min, so a second is bought.
        let jobs = [job(0, 10 * M), job(H, 10 * M)];
        assert_eq!(fewest_periods(&jobs, 0, 1, H), 2);
        // Busy throughout two hours with one job ending as the next starts.
        let jobs = [job(0, H), job(H, H)];
        assert_eq!(fewest_periods(&jobs, 0, 1, H), 2);
    }

    #[test]
    fn the_bound_never_exceeds_one_period_chain_per_job() {
        // Any schedule could give every job a machine of its own for ceil(d / period) periods.
        let jobs: Vec<Demand> = (0..200)
            .map(|i| job(i * 7 * M % (5 * H), (i % 13 + 1) * 9 * M))
            .collect();
        let naive: u64 = jobs
            .iter()
            .map(|j| u64::try_from((j.duration + H - 1) / H).unwrap())
            .sum();
        let bound = fewest_periods(&jobs, 0, 1, H);
        assert!(bound <= naive && bound > 0, "{bound} of {naive}");
        assert!(
            fewest_periods(&jobs, 5 * M, 1, H) <= bound,
            "waiting never costs more"
        );
    }
}
