//! Queue-aware scale-up: the waiting jobs of a pool placed, oldest first, on the runners that
//! will be free soon (servers booting, busy runners at their job's expected end), and a server
//! bought only for a job none of them would start within its allowed wait.
//!
//! A job's allowed start is the later of two instants: when a server bought now would take it
//! (`now + cold_start`), and its arrival plus the pool's target wait. Waiting for a runner that
//! is free by then is never slower than a new server at a target of zero, and at a larger target
//! it is the wait the user chose to trade for money. Every job takes the earliest slot left;
//! since allowed starts grow with arrival, that greedy order buys the fewest servers. A job
//! with an expected duration frees its slot again when it is expected to end, for the jobs
//! behind it: under a target wait of minutes, one runner serves several short jobs in turn.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use jiff::{SignedDuration, Timestamp};

use crate::time;

/// One waiting job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Waiting {
    /// When it arrived.
    pub(crate) arrived: Timestamp,
    /// How long it is expected to run, when known.
    pub(crate) runs: Option<SignedDuration>,
}

/// What placing a pool's waiting jobs gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Placement {
    /// Servers to buy so every job starts by its allowed start.
    pub(crate) buy: u32,
    /// Slots of servers on the way (booting, registering, bought now) that no job took and that
    /// are free by the time a server bought now would be: idle runners soon, so capacity the
    /// warm target may count on, or a surplus that lets an idle node go. A busy runner about
    /// to free up is no idle runner for the warm target and is not counted here.
    pub(crate) left: u32,
}

/// A slot on the way: when it is free, and whether it is a new runner (a server booting or
/// registering) rather than a busy one finishing its job.
pub(crate) type Slot = (Timestamp, bool);

/// Places `waiting` (arrival instants, oldest first) on `slots` under the pool's timings.
/// `runners_per_node` slots come with every server bought.
pub(crate) fn place(
    now: Timestamp,
    cold_start: SignedDuration,
    target_wait: SignedDuration,
    runners_per_node: u32,
    waiting: &[Waiting],
    slots: Vec<Slot>,
) -> Placement {
    let new_ready = time::add(now, cold_start.max(SignedDuration::ZERO));
    let target = target_wait.max(SignedDuration::ZERO);
    let mut free: BinaryHeap<Reverse<Slot>> = slots.into_iter().map(Reverse).collect();
    let mut buy = 0u32;
    for job in waiting {
        let allowed = new_ready.max(time::add(job.arrived, target));
        let start = match free.peek() {
            Some(&Reverse((at, _))) if at <= allowed => {
                free.pop();
                at.max(now)
            }
            _ => {
                buy = buy.saturating_add(1);
                // The job takes one of the new server's slots; the others are free when it is.
                for _ in 1..runners_per_node {
                    free.push(Reverse((new_ready, true)));
                }
                new_ready
            }
        };
        if let Some(runs) = job.runs {
            free.push(Reverse((
                time::add(start, runs.max(SignedDuration::ZERO)),
                false,
            )));
        }
    }
    let left = free
        .iter()
        .filter(|Reverse((at, new))| *new && *at <= new_ready)
        .count();
    Placement {
        buy,
        left: u32::try_from(left).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).expect("in range")
    }

    /// Busy runners free at these instants.
    fn busy(at: &[Timestamp]) -> Vec<Slot> {
        at.iter().map(|&t| (t, false)).collect()
    }

    /// Jobs that arrived at these instants, with no estimate.
    fn arrived(at: &[Timestamp]) -> Vec<Waiting> {
        at.iter()
            .map(|&arrived| Waiting {
                arrived,
                runs: None,
            })
            .collect()
    }

    #[test]
    fn a_short_job_frees_its_runner_for_the_next_under_a_long_target() {
        let jobs: Vec<Waiting> = [t(-3), t(-2), t(-1)]
            .into_iter()
            .map(|arrived| Waiting {
                arrived,
                runs: Some(SignedDuration::from_secs(60)),
            })
            .collect();
        // One runner free at 10: the jobs start at 10, 70 and 130, within a 5-minute target.
        let p = place(
            t(0),
            MIN,
            SignedDuration::from_mins(5),
            1,
            &jobs,
            busy(&[t(10)]),
        );
        assert_eq!(p.buy, 0);
        // At the default target only the first waits for it; the others get servers, and the
        // runner is expected free again at 70, later than a cold start.
        let p = place(t(0), MIN, SignedDuration::ZERO, 1, &jobs, busy(&[t(10)]));
        assert_eq!(p, Placement { buy: 2, left: 0 });
    }

    const MIN: SignedDuration = SignedDuration::from_mins(1);

    #[test]
    fn a_runner_free_before_a_new_server_would_be_is_waited_for() {
        // Now is 0; a new server takes a job at 60; the busy runner is free at 30.
        let p = place(
            t(0),
            MIN,
            SignedDuration::ZERO,
            1,
            &arrived(&[t(-5)]),
            busy(&[t(30)]),
        );
        assert_eq!(p, Placement { buy: 0, left: 0 });
    }

    #[test]
    fn a_runner_free_after_a_new_server_would_be_is_not_waited_for_at_target_zero() {
        let p = place(
            t(0),
            MIN,
            SignedDuration::ZERO,
            1,
            &arrived(&[t(-5)]),
            busy(&[t(90)]),
        );
        assert_eq!(p, Placement { buy: 1, left: 0 });
    }

    #[test]
    fn a_target_wait_lets_a_job_wait_for_a_later_runner() {
        // Arrived at -5 with 120 s allowed: a runner free at 90 starts it at 95 s of wait.
        let p = place(
            t(0),
            MIN,
            SignedDuration::from_secs(120),
            1,
            &arrived(&[t(-5)]),
            busy(&[t(90)]),
        );
        assert_eq!(p.buy, 0);
        // An older job has used up its allowance: it gets a server.
        let p = place(
            t(0),
            MIN,
            SignedDuration::from_secs(120),
            1,
            &arrived(&[t(-60)]),
            busy(&[t(90)]),
        );
        assert_eq!(p.buy, 1);
    }

    #[test]
    fn each_slot_serves_one_job_oldest_first() {
        let p = place(
            t(0),
            MIN,
            SignedDuration::ZERO,
            1,
            &arrived(&[t(-3), t(-2), t(-1)]),
            busy(&[t(10), t(20)]),
        );
        assert_eq!(p, Placement { buy: 1, left: 0 });
    }

    #[test]
    fn a_bought_server_brings_all_its_slots() {
        let p = place(
            t(0),
            MIN,
            SignedDuration::ZERO,
            4,
            &arrived(&[t(-3), t(-2)]),
            vec![],
        );
        assert_eq!(p, Placement { buy: 1, left: 2 });
    }

    #[test]
    fn slots_no_job_takes_count_only_when_new_and_free_by_a_cold_start() {
        let booting: Vec<Slot> = [t(0), t(59), t(60), t(61), t(3600)]
            .into_iter()
            .map(|at| (at, true))
            .collect();
        let p = place(t(0), MIN, SignedDuration::ZERO, 1, &[], booting);
        assert_eq!(p, Placement { buy: 0, left: 3 });
        // A busy runner about to free up is no idle runner for the warm target.
        let p = place(t(0), MIN, SignedDuration::ZERO, 1, &[], busy(&[t(10)]));
        assert_eq!(p, Placement { buy: 0, left: 0 });
    }

    #[test]
    fn extreme_instants_and_durations_do_not_panic() {
        let p = place(
            Timestamp::MAX,
            SignedDuration::MAX,
            SignedDuration::MAX,
            64,
            &arrived(&[Timestamp::MIN, Timestamp::MAX]),
            busy(&[Timestamp::MIN, Timestamp::MAX]),
        );
        assert_eq!(p.buy, 0);
        let p = place(
            Timestamp::MIN,
            SignedDuration::MIN,
            SignedDuration::MIN,
            1,
            &arrived(&[Timestamp::MAX]),
            vec![],
        );
        assert_eq!(p.buy, 1);
    }
}
