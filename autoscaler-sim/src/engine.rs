//! The discrete-event loop: trace arrivals, the services' own happenings and the policy's
//! ticks, in time order under a virtual clock.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::Serialize;

use crate::Error;
use crate::bound::{Demand, fewest_periods};
use crate::policy::Autoscaler;
use crate::report::{Report, Waits};
use crate::scenario::Scenario;
use crate::trace::Trace;
use autoscaler_core::shell::Outcome;

use crate::world::{Happening, Ms, Outcome as JobOutcome, World, ts};

/// The state of the fleet at one minute of the run, for the chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Unix seconds.
    pub at: i64,
    /// Servers whose node has not registered.
    pub provisioning: u32,
    /// Nodes whose runners are not online yet.
    pub joining: u32,
    /// Nodes with online runners and no job.
    pub idle: u32,
    /// Nodes running at least one job.
    pub busy: u32,
    /// Nodes being torn down.
    pub teardown: u32,
    /// Jobs waiting for a runner.
    pub waiting: u32,
    /// Jobs running.
    pub running: u32,
    /// Euros billed so far (every started hour of every server).
    pub euros: f64,
}

/// One replay: the figures and the minute-by-minute timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// The figures.
    pub report: Report,
    /// One sample per simulated minute.
    pub timeline: Vec<Sample>,
}

const SAMPLE_EVERY: Ms = 60_000;
/// The longest a run goes on after the last arrival when jobs never finish (nothing can serve
/// them): they count as unserved.
const GIVE_UP_AFTER: Ms = 48 * 3_600_000;

/// Replays `trace` through `policy` in the world `scenario` describes. `progress` is called
/// now and then with the share of the trace's span done (0 to 1).
pub fn replay(
    trace: &Trace,
    scenario: &Scenario,
    policy: &mut dyn Autoscaler,
    progress: &mut dyn FnMut(f64),
) -> Result<Run, Error> {
    scenario.check()?;
    let (Some(first), Some(last)) = (trace.jobs.first(), trace.jobs.last()) else {
        return Err(Error::Scenario(format!(
            "trace {} holds no jobs",
            trace.name
        )));
    };
    let start = first.arrival * 1000;
    let last_arrival = last.arrival * 1000;
    let longest = trace.jobs.iter().map(|j| j.duration).max().unwrap_or(0);
    let w = &scenario.world;
    let cooldown = ms(w.cooldown);
    let end_hint = last_arrival + i64::from(longest) * 1000 + cooldown + GIVE_UP_AFTER;
    let pools: Vec<usize> = trace
        .jobs
        .iter()
        .map(|j| scenario.route(&j.labels))
        .collect();

    let mut world = World::new(scenario, start, end_hint);
    let poll = ms(w.poll_interval);
    let fast = w.webhook && policy.event_driven();
    let webhook_delay = ms(w.webhook_delay);

    let mut events: BinaryHeap<Reverse<(Ms, u64, Happening)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut next = 0usize;
    let mut next_poll = start;
    let mut webhook_at: Option<Ms> = None;
    let mut next_sample = start;
    let mut timeline = Vec::new();
    let mut quiet_since: Option<Ms> = None;
    let mut ticks = 0u64;
    let span = (last_arrival - start).max(1) as f64;

    loop {
        for (at, what) in world.pending.drain(..) {
            seq += 1;
            events.push(Reverse((at, seq, what)));
        }
        let arrival = trace.jobs.get(next).map(|j| j.arrival * 1000);
        let event = events.peek().map(|Reverse((at, _, _))| *at);
        let tick = webhook_at.map_or(next_poll, |t| t.min(next_poll));
        let now = [arrival, event, Some(tick)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(tick);

        if arrival.is_none() && world.open_jobs() == 0 {
            let since = *quiet_since.get_or_insert(world.now);
            if now >= since + cooldown {
                break;
            }
        } else {
            quiet_since = None;
        }
        if now > end_hint {
            break;
        }
        world.set_now(now);

        if arrival == Some(now) {
            while let Some(j) = trace.jobs.get(next).filter(|j| j.arrival * 1000 == now) {
                world.arrive(pools[next], j.duration, &j.repo);
                next += 1;
            }
            world.assign();
            if fast && webhook_at.is_none() {
                webhook_at = Some(now + webhook_delay);
            }
            continue;
        }
        if event == Some(now) {
            while let Some(Reverse((_, _, what))) = events.peek().copied().filter(|e| e.0.0 == now)
            {
                events.pop();
                world.happen(what);
            }
            world.assign();
            continue;
        }

        // A tick: polling, or the webhook's.
        if webhook_at == Some(now) {
            webhook_at = None;
        }
        if next_poll == now {
            next_poll += poll;
        }
        while next_sample <= now {
            timeline.push(sample(&mut world, next_sample));
            next_sample += SAMPLE_EVERY;
        }
        let actions = match world.observe(policy.wants_identity()) {
            (Some(mut seen), identity) => policy.decide(&mut seen, identity),
            (None, identity) => policy.decide(&mut world.snap, identity),
        };
        let outcomes: Vec<Outcome> = actions.iter().map(|a| world.apply(a)).collect();
        policy.settle(&outcomes);
        world.assign();
        // When the shell wants the next decision (a teardown moves one step per decision; a
        // mark waits for its confirmation; a failed call waits for the poll), as the daemon
        // reads it. No sooner than the webhook delay.
        if fast && let Some(at) = policy.next_decision() {
            let follow = at.as_millisecond().max(now + webhook_delay);
            webhook_at = Some(webhook_at.map_or(follow, |t| t.min(follow)));
        }
        ticks += 1;
        if ticks.is_multiple_of(4096) {
            progress(((now - start) as f64 / span).min(1.0));
        }
    }
    progress(1.0);
    let end = world.now;
    timeline.push(sample(&mut world, end));
    Ok(Run {
        report: report(trace, scenario, policy, &mut world, ticks),
        timeline,
    })
}

/// The tight bound in euros at `wait_s` seconds of allowed wait: per pool, the fewest paid periods
/// of the world's billing period, at the price of the pool's first server type.
fn tight_bound(scenario: &Scenario, world: &World, wait_s: f64) -> f64 {
    let period = ms(scenario.world.billing_period).max(1);
    let period_hours = period as f64 / 3_600_000.0;
    let wait = (wait_s * 1000.0).round() as Ms;
    scenario
        .autoscaler
        .pools
        .iter()
        .enumerate()
        .map(|(i, pool)| {
            let jobs: Vec<Demand> = world
                .jobs
                .iter()
                .filter(|j| j.pool == i)
                .map(|j| Demand {
                    arrival: j.arrival,
                    duration: j.duration,
                })
                .collect();
            let price = pool
                .server_types
                .first()
                .and_then(|t| scenario.world.prices.get(t))
                .copied()
                .unwrap_or(0.0);
            let periods = fewest_periods(&jobs, wait, pool.runners_per_node, period);
            periods as f64 * period_hours * price
        })
        .sum()
}

fn ms(d: autoscaler_core::SignedDuration) -> Ms {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn sample(world: &mut World, at: Ms) -> Sample {
    let [provisioning, joining, idle, busy, teardown] = world.census();
    Sample {
        at: at / 1000,
        provisioning,
        joining,
        idle,
        busy,
        teardown,
        waiting: world.waiting(),
        running: world.running(),
        euros: world.euros_so_far(),
    }
}

fn report(
    trace: &Trace,
    scenario: &Scenario,
    policy: &dyn Autoscaler,
    world: &mut World,
    ticks: u64,
) -> Report {
    let mut waits = Vec::with_capacity(world.jobs.len());
    let (mut served, mut killed, mut open) = (0, 0, 0);
    for j in &world.jobs {
        if let Some(s) = j.started {
            waits.push((s - j.arrival) as f64 / 1000.0);
        }
        match j.outcome {
            JobOutcome::Served => served += 1,
            JobOutcome::Killed => killed += 1,
            JobOutcome::Open => open += 1,
        }
    }
    let config = &scenario.autoscaler;
    let lower_bound: f64 = world
        .jobs
        .iter()
        .map(|j| {
            let pool = &config.pools[j.pool];
            let price = scenario
                .world
                .prices
                .get(&pool.server_types[0])
                .copied()
                .unwrap_or(0.0);
            j.duration as f64 / 3_600_000.0 / f64::from(pool.runners_per_node.max(1)) * price
        })
        .sum();
    let wait = Waits::of(waits);
    let tight_bound_euros = tight_bound(scenario, world, wait.p95);
    let (server_hours, euros) = world.close_books();
    let hours = ((world.now - trace.jobs[0].arrival * 1000) as f64 / 3_600_000.0).max(1e-9);
    let calls = &world.calls;
    let keeps = policy.keeps(ts(world.now));
    Report {
        policy: policy.name().to_owned(),
        trace: trace.name.clone(),
        jobs: world.jobs.len() as u64,
        served,
        killed,
        unserved: open,
        job_hours: trace.stats().job_hours,
        server_hours: server_hours.round() as u64,
        euros,
        euros_per_job: if served > 0 {
            euros / served as f64
        } else {
            0.0
        },
        lower_bound_euros: lower_bound,
        cost_ratio: if lower_bound > 0.0 {
            euros / lower_bound
        } else {
            0.0
        },
        tight_bound_euros,
        tight_bound_wait: wait.p95,
        cost_to_tight_bound: if tight_bound_euros > 0.0 {
            euros / tight_bound_euros
        } else {
            0.0
        },
        wait,
        peak_nodes: world.peak_servers,
        servers_created: world.ledger.creates,
        create_failures: world.ledger.create_failures,
        api_calls: calls.total,
        api_failures: calls.failed,
        api_calls_per_hour: calls.total.map(|c| c as f64 / hours),
        hetzner_peak_hour: calls.hetzner_by_hour.iter().copied().max().unwrap_or(0),
        leaked_servers: world.servers().saturating_sub(keeps),
        kept_servers: world.servers().min(keeps),
        simulated_hours: hours,
        ticks,
    }
}
