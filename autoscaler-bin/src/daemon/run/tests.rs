//! The loop on paused time against mocked ports: its rhythm, webhook ticks coalescing, and
//! leadership.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use autoscaler_core::ports::{
    ErrorKind, MockCloud, MockCluster, MockForge, MockLeadership, ProviderError, Service,
};
use autoscaler_core::{Config, ForgeCapabilities, Source, Timestamp, synthetic};

use super::*;

struct World {
    reads: Arc<AtomicUsize>,
    creates: Arc<AtomicUsize>,
}

fn providers(waiting_job: bool) -> (Providers, World) {
    let reads = Arc::new(AtomicUsize::new(0));
    let creates = Arc::new(AtomicUsize::new(0));
    let mut f = MockForge::new();
    f.expect_capabilities()
        .returning(|| Ok(ForgeCapabilities::read(true)));
    let r = reads.clone();
    f.expect_jobs().returning(move || {
        r.fetch_add(1, Ordering::SeqCst);
        let now: Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
        let jobs = if waiting_job {
            vec![synthetic::queued_job(1, &["ubuntu-latest".to_owned()], now)]
        } else {
            vec![]
        };
        Ok(Source::complete(jobs))
    });
    f.expect_runners()
        .returning(|| Ok(Source::complete(vec![])));
    let mut c = MockCloud::new();
    c.expect_servers()
        .returning(|| Ok(Source::complete(vec![])));
    c.expect_budget().return_const(None);
    c.expect_prices().returning(|| Ok(vec![]));
    let n = creates.clone();
    c.expect_create_server().returning(move |s| {
        n.fetch_add(1, Ordering::SeqCst);
        Err(ProviderError::new(
            Service::Hetzner,
            ErrorKind::Quota,
            format!("{}: project limit", s.spec.name),
        ))
    });
    let mut k = MockCluster::new();
    k.expect_identity().returning(|| Ok("test-cluster".into()));
    k.expect_nodes().returning(|| Ok(Source::complete(vec![])));
    k.expect_runner_pods()
        .returning(|| Ok(Source::complete(vec![])));
    let p = Providers {
        forge: Arc::new(f),
        cloud: Arc::new(c),
        cluster: Arc::new(k),
        mint_join_tokens: false,
        k3s_version: None,
    };
    (p, World { reads, creates })
}

fn the_loop(p: Providers, lease: Option<Arc<dyn Leadership>>) -> (Loop, Arc<Notify>) {
    let config = Config::default();
    let trigger = Arc::new(Notify::new());
    let l = Loop {
        providers: p,
        policy: config.validate().unwrap(),
        poll: Duration::from_secs(5),
        call_timeout: Duration::from_secs(10),
        lease,
        metrics: Arc::new(Metrics::new(&autoscaler_core::Config::default())),
        health: Arc::new(Health::new(
            Timestamp::now(),
            Duration::from_secs(5),
            Duration::from_secs(10),
        )),
        trigger: trigger.clone(),
        pusher: None,
    };
    (l, trigger)
}

#[tokio::test(start_paused = true)]
async fn the_loop_ticks_every_poll_interval_and_stops_on_shutdown() {
    let (p, world) = providers(false);
    let (l, _) = the_loop(p, None);
    let stop = CancellationToken::new();
    let task = tokio::spawn(l.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(12_500)).await;
    stop.cancel();
    let ticks = task.await.unwrap();
    assert_eq!(ticks, 3, "at 0 s, 5 s and 10 s");
    assert_eq!(world.reads.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_webhooks_is_one_early_tick() {
    let (p, world) = providers(false);
    let (l, trigger) = the_loop(p, None);
    let stop = CancellationToken::new();
    let task = tokio::spawn(l.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    for _ in 0..20 {
        trigger.notify_one();
    }
    // The early tick comes 1 s after the burst, not at the 5 s poll.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        world.reads.load(Ordering::SeqCst),
        2,
        "the first tick and one for the burst"
    );
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    stop.cancel();
    assert_eq!(
        task.await.unwrap(),
        3,
        "then the poll rhythm again, 5 s after the early tick"
    );
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_webhooks_brings_a_tick_forward_at_most_every_three_seconds() {
    let (p, world) = providers(false);
    let (l, trigger) = the_loop(p, None);
    let stop = CancellationToken::new();
    let task = tokio::spawn(l.run(stop.clone()));
    // A delivery every 200 ms for 12 s.
    for _ in 0..60 {
        trigger.notify_one();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    let ticks = task.await.unwrap();
    // The first tick, then one early tick 1 s after the flood began and one every 3 s.
    assert!(ticks <= 6, "{ticks} ticks in 12 s");
    assert!(ticks >= 4, "webhooks still bring ticks forward: {ticks}");
    assert_eq!(world.reads.load(Ordering::SeqCst) as u64, ticks);
}

#[tokio::test(start_paused = true)]
async fn only_the_leader_acts_and_the_lease_is_released_on_shutdown() {
    let (p, world) = providers(true);
    let mut lease = MockLeadership::new();
    let mut leads = [false, true].into_iter().cycle();
    lease
        .expect_acquire_or_renew()
        .returning(move |_| Ok(leads.next().unwrap()));
    lease.expect_release().times(1).returning(|| Ok(()));
    let (l, _) = the_loop(p, Some(Arc::new(lease)));
    let metrics = l.metrics.clone();
    let health = l.health.clone();
    health.connected(Timestamp::now());
    let stop = CancellationToken::new();
    let task = tokio::spawn(l.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    // Following: ready, nothing read, nothing of the fleet reported.
    assert_eq!(
        world.reads.load(Ordering::SeqCst),
        0,
        "a follower reads nothing"
    );
    assert!(health.readiness(Timestamp::now()).is_ok());
    let text = metrics.encode();
    assert!(text.contains("autoscaler_leader 0"), "{text}");
    for absent in [
        "autoscaler_jobs_waiting ",
        "autoscaler_managed_nodes{",
        "autoscaler_desired_nodes ",
        "autoscaler_source_readable{",
    ] {
        assert!(
            !text.contains(absent),
            "a follower reports {absent}:\n{text}"
        );
    }
    tokio::time::sleep(Duration::from_millis(6_000)).await;
    stop.cancel();
    assert_eq!(task.await.unwrap(), 2);
    assert_eq!(
        world.creates.load(Ordering::SeqCst),
        1,
        "only the second round led"
    );
    assert_eq!(world.reads.load(Ordering::SeqCst), 1, "and only it read");
    let text = metrics.encode();
    assert!(text.contains("autoscaler_leader 1"));
    assert!(text.contains("autoscaler_jobs_waiting 1"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_lease_that_cannot_be_renewed_means_following() {
    let (p, world) = providers(true);
    let mut lease = MockLeadership::new();
    lease.expect_acquire_or_renew().returning(|_| {
        Err(ProviderError::new(
            Service::Kubernetes,
            ErrorKind::Transient,
            "apiserver down",
        ))
    });
    lease.expect_release().returning(|| Ok(()));
    let (l, _) = the_loop(p, Some(Arc::new(lease)));
    let health = l.health.clone();
    health.connected(Timestamp::now());
    let stop = CancellationToken::new();
    let task = tokio::spawn(l.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(6_000)).await;
    stop.cancel();
    task.await.unwrap();
    assert_eq!(world.creates.load(Ordering::SeqCst), 0);
    assert_eq!(world.reads.load(Ordering::SeqCst), 0);
    let why = health.readiness(Timestamp::now()).unwrap_err();
    assert!(why.contains("cannot read the lease"), "{why}");
}

#[tokio::test]
async fn metrics_are_pushed_to_the_pushgateway_after_each_tick() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    crate::wiring::install_crypto();
    let gateway = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/metrics/job/gitea-ci-autoscaler"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&gateway)
        .await;
    let (p, _) = providers(false);
    let (mut l, _) = the_loop(p, None);
    l.pusher = Some(Pusher {
        http: reqwest::Client::new(),
        url: format!("{}/", gateway.uri()),
    });
    let stop = CancellationToken::new();
    let task = tokio::spawn(l.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    assert_eq!(task.await.unwrap(), 1);
    let body =
        String::from_utf8(gateway.received_requests().await.unwrap()[0].body.clone()).unwrap();
    assert!(
        body.contains("# TYPE autoscaler_loop_duration_seconds histogram"),
        "{body}"
    );
    assert!(
        !body.contains("# EOF"),
        "the 0.0.4 text format, not OpenMetrics"
    );
}
