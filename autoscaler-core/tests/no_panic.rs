//! Input never panics: any configuration either validates or is refused with the field's name,
//! and `decide` returns a plan for any snapshot that parses, whatever its instants and durations
//! (a server created in the year 9999, a job expected to run for 292 billion years, `now` on the
//! last representable second). Tests run with overflow checks on, so integer overflow counts too.

use std::collections::BTreeMap;

use autoscaler_core::{
    ApiBudget, Backoff, Config, CreateFailure, CreateFailureKind, Error, Job, JobStatus,
    MAX_DURATION, Node, PodPhase, PoolConfig, Runner, RunnerPod, Server, ServerStatus,
    SignedDuration, Snapshot, Source, Timestamp, decide, keys,
};
use proptest::prelude::*;

fn duration() -> impl Strategy<Value = SignedDuration> {
    prop_oneof![
        Just(SignedDuration::MIN),
        Just(SignedDuration::MAX),
        Just(SignedDuration::ZERO),
        Just(MAX_DURATION),
        Just(MAX_DURATION + SignedDuration::from_secs(1)),
        Just(SignedDuration::from_secs(-1)),
        (0i64..100_000).prop_map(SignedDuration::from_secs),
        (any::<i64>(), 0i32..1_000_000_000).prop_map(|(s, n)| SignedDuration::new(s, n)),
    ]
}

/// A duration in `[lo, hi]` seconds.
fn between(lo: i64, hi: i64) -> impl Strategy<Value = SignedDuration> {
    prop_oneof![Just(lo), Just(hi), lo..=hi].prop_map(SignedDuration::from_secs)
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    let (lo, hi) = (Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    prop_oneof![
        Just(Timestamp::MIN),
        Just(Timestamp::MAX),
        Just(Timestamp::UNIX_EPOCH),
        (1_700_000_000i64..1_900_000_000)
            .prop_map(|s| Timestamp::from_second(s).expect("in range")),
        (lo..=hi).prop_map(|s| Timestamp::from_second(s).expect("in range")),
    ]
}

fn count() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(u32::MAX), 0u32..10, any::<u32>()]
}

fn pool_with(durations: [SignedDuration; 10], counts: [u32; 5], name: String) -> PoolConfig {
    PoolConfig {
        name,
        labels: vec!["linux".into(), "ubuntu-latest:docker://node:20".into()],
        min_nodes: counts[0],
        max_nodes: counts[1],
        warm_slots: counts[2],
        runners_per_node: counts[3],
        cold_start: durations[0],
        idle_timeout: durations[1],
        billing_period: durations[2],
        teardown_window: durations[3],
        teardown_lead: durations[4],
        provisioning_timeout: durations[5],
        join_timeout: durations[6],
        not_ready_timeout: durations[7],
        ..PoolConfig::default()
    }
}

/// Any configuration at all: most are refused.
fn any_config() -> impl Strategy<Value = Config> {
    (
        prop::array::uniform10(duration()),
        prop::array::uniform5(count()),
        prop::array::uniform4(duration()),
        prop::array::uniform3(count()),
    )
        .prop_map(|(d, c, top, tc)| Config {
            max_nodes: tc[0],
            max_creates_per_tick: tc[1],
            hetzner_reserve: tc[2],
            node_missing_confirm: top[0],
            create_backoff: Backoff {
                base: top[1],
                max: top[2],
            },
            capacity_cooldown: top[3],
            pools: vec![pool_with(d, c, "linux".into())],
            ..Config::default()
        })
}

/// Configurations at the edges of what validation accepts: every duration as long as allowed,
/// or as short.
fn edge_config() -> impl Strategy<Value = Config> {
    let max = MAX_DURATION.as_secs();
    (
        between(60, max),
        0u32..=100,
        0u32..=100,
        0u32..=100,
        prop::array::uniform6(between(1, max)),
        prop::array::uniform3(between(0, max)),
        (1u32..=64, 0u32..=3),
    )
        .prop_map(move |(period, w, c, l, long, maybe_zero, (rpn, warm))| {
            // window in [12 s, period]; confirm in [1 s, window − 11 s]; lead in
            // [confirm + 10 s, window − 1 s]: the ordering validation asks for.
            let p = period.as_secs();
            let window = 12 + (p - 12) * i64::from(w) / 100;
            let confirm = 1 + (window - 12) * i64::from(c) / 100;
            let lead = confirm + 10 + (window - 1 - confirm - 10) * i64::from(l) / 100;
            let mut pool = pool_with(
                [
                    maybe_zero[0],
                    maybe_zero[1],
                    period,
                    SignedDuration::from_secs(window),
                    SignedDuration::from_secs(lead),
                    long[0],
                    long[1],
                    long[2],
                    SignedDuration::ZERO,
                    SignedDuration::ZERO,
                ],
                [0, 100, warm, rpn, 0],
                "linux".into(),
            );
            pool.max_nodes = 100;
            Config {
                max_nodes: 100,
                node_missing_confirm: SignedDuration::from_secs(confirm),
                create_backoff: Backoff {
                    base: long[3],
                    max: long[3].max(long[4]),
                },
                capacity_cooldown: long[5],
                pools: vec![pool],
                ..Config::default()
            }
        })
}

#[derive(Debug, Clone)]
struct Wild {
    now: Timestamp,
    times: Vec<Timestamp>,
    durations: Vec<SignedDuration>,
    seconds: Vec<i64>,
    machines: usize,
    budget: Option<u32>,
}

fn wild() -> impl Strategy<Value = Wild> {
    (
        timestamp(),
        prop::collection::vec(timestamp(), 16),
        prop::collection::vec(
            prop::option::of(duration()).prop_map(|d| d.unwrap_or_default()),
            8,
        ),
        prop::collection::vec(any::<i64>(), 6),
        0usize..5,
        prop::option::of(any::<u32>()),
    )
        .prop_map(|(now, times, durations, seconds, machines, budget)| Wild {
            now,
            times,
            durations,
            seconds,
            machines,
            budget,
        })
}

/// A snapshot whose every instant and duration is taken from `w`.
fn snapshot(w: &Wild) -> Snapshot {
    let t = |i: usize| w.times[i % w.times.len()];
    let d = |i: usize| w.durations[i % w.durations.len()];
    let owned = |pool: &str| {
        BTreeMap::from([
            (keys::OWNER.to_owned(), "default".to_owned()),
            (keys::POOL.to_owned(), pool.to_owned()),
        ])
    };
    let (mut servers, mut nodes, mut pods, mut runners, mut jobs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..w.machines {
        let name = format!("m{i}");
        let mut labels = owned(if i == 3 { "gone" } else { "linux" });
        let s = |k: usize| w.seconds[(i + k) % w.seconds.len()].to_string();
        labels.insert(keys::JOINED.into(), s(0));
        if i % 2 == 0 {
            labels.insert(keys::TEARDOWN.into(), s(1));
        }
        if i % 3 == 0 {
            labels.insert(keys::NODE_MISSING.into(), s(2));
        }
        servers.push(Server {
            id: 100 + i as u64,
            name: name.clone(),
            labels,
            created: t(i),
            status: if i == 4 {
                ServerStatus::Initializing
            } else {
                ServerStatus::Running
            },
            server_type: "cx33".into(),
            location: "nbg1".into(),
        });
        if i != 1 {
            nodes.push(Node {
                name: name.clone(),
                labels: owned("linux"),
                annotations: BTreeMap::from([
                    (keys::IDLE_SINCE.to_owned(), t(i + 1).to_string()),
                    (keys::SERVER_MISSING.to_owned(), t(i + 2).to_string()),
                    (keys::DRAINED.to_owned(), t(i + 3).to_string()),
                ]),
                ready: i % 3 != 2,
                ready_since: Some(t(i + 4)),
                cordoned: i % 4 == 1,
                provider_id: Some(format!("hcloud://{}", 100 + i)),
                created: Some(t(i + 5)),
            });
        }
        let pod = format!("{name}-runner");
        pods.push(RunnerPod {
            name: pod.clone(),
            node: Some(name.clone()),
            phase: PodPhase::Running,
        });
        let runner = Runner {
            id: 1_000 + i as u64,
            name: pod.clone(),
            labels: vec!["linux".into()],
            online: i % 2 == 1,
            busy: false,
            disabled: i % 5 == 0,
            ephemeral: false,
        };
        if i % 2 == 1 {
            jobs.push(Job {
                id: 10_000 + i as u64,
                labels: vec!["linux".into()],
                status: JobStatus::InProgress,
                runner_id: Some(runner.id),
                runner_name: Some(pod),
                created: t(i + 6),
                started: Some(t(i + 7)),
                repo: "acme/app".into(),
                expected_duration: Some(d(i)),
            });
        }
        runners.push(runner);
    }
    for k in 0..3 {
        jobs.push(Job {
            id: 20_000 + k,
            labels: vec!["linux".into()],
            status: JobStatus::Queued,
            runner_id: None,
            runner_name: None,
            created: t(8 + k as usize),
            started: Some(t(9 + k as usize)),
            repo: "acme/app".into(),
            expected_duration: Some(d(k as usize + 3)),
        });
    }
    let mut s = Snapshot::new(w.now);
    s.jobs = Source::complete(jobs);
    s.runners = Source::complete(runners);
    s.servers = Source::complete(servers);
    s.nodes = Source::complete(nodes);
    s.pods = Source::complete(pods);
    s.create_failures = (0..3)
        .map(|k| CreateFailure {
            pool: "linux".into(),
            server_type: "ccx33".into(),
            location: "nbg1".into(),
            at: t(11 + k),
            kind: if k == 0 {
                CreateFailureKind::Capacity
            } else {
                CreateFailureKind::Other
            },
            message: String::new(),
        })
        .collect();
    s.hetzner_budget = w.budget.map(|remaining| ApiBudget { remaining });
    s
}

/// Decides, renders and round-trips the plan: none of it may panic.
fn exercise(config: &Config, w: &Wild) {
    let Ok(policy) = config.validate() else {
        return;
    };
    let s = snapshot(w);
    let plan = decide(&policy, &s);
    let _ = plan.to_string();
    let text = serde_json::to_string(&plan).expect("a plan serializes");
    let _: autoscaler_core::Plan = serde_json::from_str(&text).expect("a plan reads back");
    let text = serde_json::to_string(&s).expect("a snapshot serializes");
    let back = Snapshot::from_json(&text).expect("a snapshot reads back");
    assert_eq!(
        decide(&policy, &back),
        plan,
        "the same snapshot, the same plan"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn validate_refuses_or_accepts_and_decide_never_panics(config in any_config(), w in wild()) {
        match config.validate() {
            Ok(_) => {}
            Err(Error::InvalidConfig { problems }) => {
                prop_assert!(!problems.is_empty());
                for p in &problems {
                    prop_assert!(!p.field.is_empty(), "{p}");
                }
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
        exercise(&config, &w);
    }

    #[test]
    fn the_longest_and_shortest_accepted_durations_decide_on_any_instants(config in edge_config(), w in wild()) {
        prop_assert!(config.validate().is_ok(), "{:?}", config.validate().err().map(|e| e.to_string()));
        exercise(&config, &w);
    }
}

#[test]
fn every_too_long_duration_is_refused_with_its_field() {
    let long = MAX_DURATION + SignedDuration::from_secs(1);
    let mut c = Config {
        node_missing_confirm: long,
        capacity_cooldown: long,
        ..Config::default()
    };
    c.create_backoff.max = long;
    let p = &mut c.pools[0];
    p.cold_start = long;
    p.idle_timeout = long;
    p.billing_period = long;
    p.provisioning_timeout = long;
    p.join_timeout = long;
    p.not_ready_timeout = long;
    let Err(Error::InvalidConfig { problems }) = c.validate() else {
        panic!("refused");
    };
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    for f in [
        "node_missing_confirm",
        "capacity_cooldown",
        "create_backoff.max",
        "pools[0].cold_start",
        "pools[0].idle_timeout",
        "pools[0].billing_period",
        "pools[0].provisioning_timeout",
        "pools[0].join_timeout",
        "pools[0].not_ready_timeout",
    ] {
        assert!(fields.contains(&f), "{f} not named in {fields:?}");
    }
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("is longer than the 720h")),
        "{problems:?}"
    );
}

#[test]
fn counts_beyond_their_bounds_are_refused_with_their_field() {
    let mut c = Config {
        max_nodes: u32::MAX,
        max_creates_per_tick: u32::MAX,
        hetzner_reserve: 3_600,
        ..Config::default()
    };
    c.pools[0].max_nodes = u32::MAX;
    let Err(Error::InvalidConfig { problems }) = c.validate() else {
        panic!("refused");
    };
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    for f in [
        "max_nodes",
        "max_creates_per_tick",
        "hetzner_reserve",
        "pools[0].max_nodes",
    ] {
        assert!(fields.contains(&f), "{f} not named in {fields:?}");
    }
}
