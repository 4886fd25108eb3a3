//! Replays through the public API: the world's physics, the two policies, faults, and the
//! report's promises (no killed jobs, no leaked servers).

use autoscaler_sim::{
    Autoscaler, Baseline, Faults, Ours, Report, Run, Scenario, Trace, chart, replay, trace,
};

fn ours(s: &Scenario) -> Ours {
    Ours::new("ours", s.autoscaler.validate().expect("valid"))
}

fn run(t: &Trace, s: &Scenario, p: &mut dyn Autoscaler) -> Run {
    replay(t, s, p, &mut |_| {}).expect("replay")
}

/// A scenario whose servers all boot in exactly `boot` seconds.
fn fixed_boot(boot: i64) -> Scenario {
    let mut s = Scenario::default();
    s.world.boot_min = autoscaler_core::SignedDuration::from_secs(boot);
    s.world.boot_max = s.world.boot_min;
    s
}

fn csv(rows: &[(i64, u32)]) -> Trace {
    let mut text = String::from("arrival_unix_s,duration_s,labels,repo\n");
    for (at, d) in rows {
        text.push_str(&format!("{at},{d},x;y,o/r\n"));
    }
    Trace::parse("test", &text).expect("valid trace")
}

/// Six busy hours of the built-in day, enough for teardowns and reuse, quick in debug builds.
fn morning() -> Trace {
    let day = trace::demo();
    let start = day.jobs[0].arrival;
    day.slice(start + 6 * 3600, start + 12 * 3600)
}

fn assert_clean(r: &Report) {
    assert_eq!(r.killed, 0, "{}: killed jobs", r.policy);
    assert_eq!(r.leaked_servers, 0, "{}: leaked servers", r.policy);
    assert_eq!(r.served, r.jobs, "{}: every job served", r.policy);
}

#[test]
fn one_job_waits_for_one_boot_and_pays_one_hour() {
    let s = fixed_boot(60);
    let t = csv(&[(1_700_000_000, 120)]);
    let o = run(&t, &s, &mut ours(&s)).report;
    assert_clean(&o);
    assert_eq!(o.servers_created, 1);
    assert_eq!(o.server_hours, 1);
    // The run starts with a poll at the first arrival: boot 60 s + runners 5 s.
    assert!((o.wait.max - 65.0).abs() < 0.01, "{}", o.wait.max);
    assert!((o.euros - 0.08).abs() < 1e-9, "{}", o.euros);
    assert!((o.lower_bound_euros - 0.08 * 120.0 / 3600.0).abs() < 1e-9);

    let b = run(&t, &s, &mut Baseline::new(s.autoscaler.clone())).report;
    assert_clean(&b);
    assert_eq!((b.servers_created, b.server_hours), (1, 1));
    // The seed polls: the job arrives on a poll, so it waits boot + runners only.
    assert!((b.wait.max - 65.0).abs() < 0.01, "{b:?}");
}

#[test]
fn the_webhook_reacts_before_the_next_poll() {
    let s = fixed_boot(60);
    // The second job comes 2 s after a poll: the webhook decides at 3 s, the seed at 5 s.
    let t = csv(&[(1_700_000_000, 120), (1_700_000_002, 120)]);
    let o = run(&t, &s, &mut ours(&s)).report;
    let b = run(&t, &s, &mut Baseline::new(s.autoscaler.clone())).report;
    assert_clean(&o);
    assert_clean(&b);
    assert!((o.wait.max - 66.0).abs() < 0.01, "{o:?}");
    assert!((b.wait.max - 68.0).abs() < 0.01, "{b:?}");
}

#[test]
fn an_idle_node_is_reused_within_its_paid_hour_and_gone_after() {
    let s = fixed_boot(60);
    // The second job comes 20 minutes later: the first node takes it at once.
    let t = csv(&[(1_700_000_000, 60), (1_700_001_200, 60)]);
    for r in [
        run(&t, &s, &mut ours(&s)).report,
        run(&t, &s, &mut Baseline::new(s.autoscaler.clone())).report,
    ] {
        assert_clean(&r);
        assert_eq!(r.servers_created, 1, "{}", r.policy);
        assert_eq!(r.server_hours, 1, "{}", r.policy);
        assert_eq!(r.wait.p50, 0.0, "{}", r.policy);
    }
}

#[test]
fn a_node_busy_past_its_window_is_paid_another_hour_not_killed() {
    let s = fixed_boot(60);
    // 70 minutes of work: the node cannot go at the end of its first hour.
    let t = csv(&[(1_700_000_000, 70 * 60)]);
    for r in [
        run(&t, &s, &mut ours(&s)).report,
        run(&t, &s, &mut Baseline::new(s.autoscaler.clone())).report,
    ] {
        assert_clean(&r);
        assert_eq!(r.server_hours, 2, "{}", r.policy);
    }
}

#[test]
fn a_busy_morning_is_served_cleanly_by_both() {
    let s = Scenario::default();
    let t = morning();
    let o = run(&t, &s, &mut ours(&s)).report;
    let b = run(&t, &s, &mut Baseline::new(s.autoscaler.clone())).report;
    assert_clean(&o);
    assert_clean(&b);
    for r in [&o, &b] {
        assert!(
            r.euros >= r.lower_bound_euros,
            "{}: below the lower bound",
            r.policy
        );
        assert!(r.server_hours as f64 >= r.job_hours);
        assert!(r.peak_nodes <= 100);
        assert!(r.hetzner_peak_hour <= 3600);
    }
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let s = Scenario::default();
    let t = morning();
    let a = run(&t, &s, &mut ours(&s));
    let b = run(&t, &s, &mut ours(&s));
    assert_eq!(a.report, b.report);
    assert_eq!(a.timeline, b.timeline);
    let mut other = s.clone();
    other.world.seed = 7;
    let c = run(&t, &other, &mut ours(&other));
    assert_ne!(a.timeline, c.timeline, "boot times are drawn from the seed");
}

#[test]
fn faults_kill_no_job_and_leak_no_server() {
    let mut s = Scenario::default();
    s.world.faults = Faults {
        // Far rougher than a real day, to hit every path in six hours.
        capacity_error_rate: 0.2,
        outages_per_day: 48.0,
        never_join_rate: 0.1,
        slow_boot_rate: 0.2,
        ..Faults::rough()
    };
    let t = morning();
    let r = run(&t, &s, &mut ours(&s)).report;
    assert_clean(&r);
    assert!(r.create_failures > 0, "capacity errors were injected");
    assert!(
        r.api_failures.iter().sum::<u64>() > 0,
        "outages were injected"
    );
}

#[test]
fn a_request_budget_below_the_poll_rate_kills_nothing() {
    let mut s = Scenario::default();
    // Polling every 5 s lists servers 720 times an hour, more than this budget: lists fail
    // often, so teardowns stall (fail-static) and servers are left at the end. That is the
    // safe failure; the daemon must pace its polling to the budget so it never gets here.
    s.world.hetzner_requests_per_hour = 500;
    let t = morning();
    let r = run(&t, &s, &mut ours(&s)).report;
    assert_eq!(r.killed, 0);
    assert!(
        r.leaked_servers > 0,
        "stalled teardowns are reported, not hidden"
    );
    assert!(r.api_failures[1] > 0, "Hetzner refused requests: {r:?}");
}

#[test]
fn warm_slots_are_kept_not_leaked() {
    let mut s = fixed_boot(60);
    s.autoscaler.pools[0].warm_slots = 2;
    let t = csv(&[(1_700_000_000, 60)]);
    let r = run(&t, &s, &mut ours(&s)).report;
    assert_eq!(r.killed, 0);
    assert_eq!(r.leaked_servers, 0);
    assert_eq!(r.kept_servers, 2);
}

#[test]
fn the_chart_has_a_panel_per_policy() {
    let s = Scenario::default();
    let t = csv(&[(1_700_000_000, 300), (1_700_000_000, 300)]);
    let a = run(&t, &s, &mut ours(&s));
    let b = run(&t, &s, &mut Baseline::new(s.autoscaler.clone()));
    let svg = chart::svg("two <jobs>", &[&a, &b]);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("two &lt;jobs&gt;"));
    assert!(svg.contains("ours —") && svg.contains("baseline —"));
    assert_eq!(svg.matches("<path").count(), 2 * (5 + 2));
}

#[test]
fn a_bad_scenario_is_refused_before_the_replay() {
    let mut s = Scenario::default();
    s.world.poll_interval = autoscaler_core::SignedDuration::ZERO;
    let t = csv(&[(1_700_000_000, 60)]);
    let e = replay(&t, &s, &mut ours(&Scenario::default()), &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("world.poll_interval"), "{e}");
}

/// The phased cold start: from a baked image servers come up sooner, so on the same morning and
/// the same seed jobs wait less, nothing is killed or leaked, and the run repeats exactly.
#[test]
fn a_baked_image_shortens_the_waits_that_a_cold_start_makes() {
    use autoscaler_sim::BootModel;
    let t = morning();
    // The pool names a baked image (the world lists one for it) or does not; the core chooses
    // as the daemon does, and the servers it creates from the image boot as baked ones.
    let with = |baked: Option<&str>| {
        let mut s = Scenario::default();
        s.world.boot_model = Some(BootModel::base());
        s.autoscaler.pools[0].baked_image = baked.map(|b| b.parse().unwrap());
        s
    };
    let (base, baked) = (with(None), with(Some("auto")));
    let b = run(&t, &base, &mut ours(&base)).report;
    let k = run(&t, &baked, &mut ours(&baked)).report;
    assert_clean(&b);
    assert_clean(&k);
    assert!(
        k.wait.p95 < b.wait.p95,
        "p95 {} s baked, {} s from the base image",
        k.wait.p95,
        b.wait.p95
    );
    assert!(k.wait.max <= b.wait.max, "{} vs {}", k.wait.max, b.wait.max);
    assert_eq!(
        run(&t, &baked, &mut ours(&baked)).report.euros,
        k.euros,
        "deterministic"
    );
    // A selector no image matches falls back to the base image: the same run as without.
    let unmatched = with(Some("team=nobody"));
    let u = run(&t, &unmatched, &mut ours(&unmatched)).report;
    assert_eq!((u.euros, u.wait.p95), (b.euros, b.wait.p95));
    // A scenario file can carry a model of its own, checked phase by phase.
    let s = Scenario::from_json(
        r#"{"world": {"boot_model": {"name": "mine", "phases": [
            {"phase": "server_running", "min": 10, "max": "20s"},
            {"phase": "runner_registered", "min": 30, "max": 20}]}}}"#,
    )
    .expect("parses");
    let problem = s.check().expect_err("max below min").to_string();
    assert!(
        problem.contains("RunnerRegistered: max must not be shorter"),
        "{problem}"
    );
}
