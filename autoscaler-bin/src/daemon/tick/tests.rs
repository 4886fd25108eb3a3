//! The tick against mocked ports: what is called, concurrently, within the timeout, and what is
//! fed back into the next snapshot.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use autoscaler_core::ports::{
    Cluster, DrainProgress, ErrorKind, MockCloud, MockCluster, MockForge, ProviderError, Service,
};
use autoscaler_core::{
    Action, Config, CreateFailureKind, ForgeCapabilities, Job, Node, Plan, PlannedAction,
    RunnerPod, Server, ServerId, ServerSpec, Source, Timestamp, synthetic,
};

use super::*;
use crate::daemon::execute::{Done, execute};

const LIMIT: Duration = Duration::from_secs(10);

fn now() -> Timestamp {
    "2026-11-25T10:00:00Z".parse().unwrap()
}

fn labels() -> Vec<String> {
    vec!["ubuntu-latest".to_owned()]
}

fn forge(jobs: Vec<Job>) -> MockForge {
    let mut f = MockForge::new();
    f.expect_capabilities()
        .returning(|| Ok(ForgeCapabilities::read(true)));
    f.expect_jobs()
        .returning(move || Ok(Source::complete(jobs.clone())));
    f.expect_runners()
        .returning(|| Ok(Source::complete(vec![])));
    f
}

fn cloud(servers: Vec<Server>) -> MockCloud {
    let mut c = MockCloud::new();
    c.expect_servers()
        .returning(move || Ok(Source::complete(servers.clone())));
    c.expect_budget().return_const(None);
    c
}

fn cluster() -> MockCluster {
    let mut k = MockCluster::new();
    k.expect_identity().returning(|| Ok("test-cluster".into()));
    k.expect_nodes().returning(|| Ok(Source::complete(vec![])));
    k.expect_runner_pods()
        .returning(|| Ok(Source::complete(vec![])));
    k
}

fn providers(forge: MockForge, cloud: MockCloud, cluster: impl Cluster + 'static) -> Providers {
    Providers {
        forge: Arc::new(forge),
        cloud: Arc::new(cloud),
        cluster: Arc::new(cluster),
        mint_join_tokens: false,
        k3s_version: None,
    }
}

fn config() -> Config {
    let mut c = Config {
        installation: "ci".into(),
        ..Config::default()
    };
    c.pools[0].locations = vec!["nbg1".into(), "fsn1".into()];
    c
}

/// One tick at `now()`.
async fn tick_once(p: &Providers, shell: &mut Shell, leading: bool) -> TickReport {
    tick(p, shell, now(), leading, LIMIT).await
}

fn shell_of(config: &Config) -> Shell {
    Shell::new(config.validate().unwrap())
}

#[tokio::test]
async fn a_waiting_job_creates_a_server_with_the_pools_shape() {
    let config = config();
    let mut cloud = cloud(vec![]);
    cloud
        .expect_create_server()
        .withf(|s| {
            s.spec.pool == "linux" && s.spec.server_type == "ccx33" && s.spec.location == "nbg1"
        })
        .times(1)
        .returning(|s| {
            Ok(synthetic::server(
                "ci",
                &s.spec.pool,
                1,
                &s.spec.name,
                now(),
            ))
        });
    let p = providers(
        forge(vec![synthetic::queued_job(1, &labels(), now())]),
        cloud,
        cluster(),
    );
    let mut shell = shell_of(&config);
    let report = tick_once(&p, &mut shell, true).await;
    assert!(report.read_everything());
    assert_eq!(report.outcomes.len(), 1);
    assert!(matches!(report.outcomes[0].result, Ok(Done::Created(_))));
    assert_eq!(
        report.calls.len(),
        8,
        "six reads, the cluster's identity (once) and one create"
    );
    assert_eq!(shell.cluster(), Some("test-cluster"));
    assert_eq!(report.next_decision, None);
    // The identity is read once.
    let report = tick_once(&p, &mut shell, false).await;
    assert!(report.calls.iter().all(|c| c.name != "cluster_identity"));
}

#[tokio::test]
async fn a_pool_with_a_baked_image_lists_the_images_now_and_then_and_boots_from_one() {
    let mut config = config();
    config.pools[0].baked_image = Some(autoscaler_core::BakedImage::Auto);
    let mut cloud = cloud(vec![]);
    cloud.expect_images().times(1).returning(|| {
        let labels = autoscaler_core::baked_image_labels("ci", "linux", "v1.33.4+k3s1");
        Ok(Source::complete(vec![autoscaler_core::Image {
            id: 77,
            labels,
            created: now(),
            status: autoscaler_core::ImageStatus::Available,
        }]))
    });
    cloud
        .expect_create_server()
        .withf(|s| s.spec.baked_image == Some(77) && s.spec.image == "77")
        .times(1)
        .returning(|s| {
            Ok(synthetic::server(
                "ci",
                &s.spec.pool,
                1,
                &s.spec.name,
                now(),
            ))
        });
    let mut p = providers(
        forge(vec![synthetic::queued_job(1, &labels(), now())]),
        cloud,
        cluster(),
    );
    p.k3s_version = Some("v1.33.4+k3s1".into());
    let mut shell = shell_of(&config);
    let report = tick_once(&p, &mut shell, true).await;
    assert!(report.calls.iter().any(|c| c.name == "list_images"));
    assert!(
        report.plan.warnings.is_empty(),
        "{:?}",
        report.plan.warnings
    );
    // Read again only after a while: the second tick uses the list it has.
    let report = tick_once(&p, &mut shell, false).await;
    assert!(report.calls.iter().all(|c| c.name != "list_images"));
}

#[tokio::test]
async fn without_the_clusters_identity_nothing_destructive_and_nothing_is_created() {
    let config = config();
    let mut cloud = cloud(vec![]);
    cloud.expect_create_server().never();
    let mut k = MockCluster::new();
    k.expect_identity().returning(|| {
        Err(ProviderError::new(
            Service::Kubernetes,
            ErrorKind::Auth,
            "namespaces \"kube-system\" is forbidden",
        ))
    });
    k.expect_nodes().returning(|| Ok(Source::complete(vec![])));
    k.expect_runner_pods()
        .returning(|| Ok(Source::complete(vec![])));
    let p = providers(
        forge(vec![synthetic::queued_job(1, &labels(), now())]),
        cloud,
        k,
    );
    let mut shell = shell_of(&config);
    let report = tick_once(&p, &mut shell, true).await;
    assert!(report.outcomes.is_empty());
    assert!(
        report
            .snapshot
            .servers
            .problem()
            .is_some_and(|p| p.contains("identity could not be read")),
        "{:?}",
        report.snapshot.servers
    );
}

#[tokio::test]
async fn a_replica_that_does_not_lead_reads_and_decides_but_changes_nothing() {
    let config = config();
    let mut cloud = cloud(vec![]);
    cloud.expect_create_server().never();
    let p = providers(
        forge(vec![synthetic::queued_job(1, &labels(), now())]),
        cloud,
        cluster(),
    );
    let mut shell = shell_of(&config);
    let report = tick_once(&p, &mut shell, false).await;
    assert_eq!(
        report.plan.actions.len(),
        1,
        "the plan is still made (for /metrics and plan)"
    );
    assert!(report.outcomes.is_empty());
}

#[tokio::test]
async fn a_capacity_error_is_fed_back_and_the_next_location_is_tried() {
    let config = config();
    let mut cloud = cloud(vec![]);
    cloud
        .expect_create_server()
        .withf(|s| s.spec.location == "nbg1")
        .times(1)
        .returning(|_| {
            Err(ProviderError::new(
                Service::Hetzner,
                ErrorKind::Capacity,
                "POST /servers: HTTP 412 resource_unavailable",
            ))
        });
    cloud
        .expect_create_server()
        .withf(|s| s.spec.location == "fsn1")
        .times(1)
        .returning(|s| {
            Ok(synthetic::server(
                "ci",
                &s.spec.pool,
                2,
                &s.spec.name,
                now(),
            ))
        });
    let p = providers(
        forge(vec![synthetic::queued_job(1, &labels(), now())]),
        cloud,
        cluster(),
    );
    let mut shell = shell_of(&config);
    let first = tick(&p, &mut shell, now(), true, LIMIT).await;
    assert!(first.outcomes[0].result.is_err());
    let later = now() + jiff::SignedDuration::from_secs(5);
    let second = tick(&p, &mut shell, later, true, LIMIT).await;
    assert_eq!(second.snapshot.create_failures.len(), 1);
    assert_eq!(
        second.snapshot.create_failures[0].kind,
        CreateFailureKind::Capacity
    );
    assert!(matches!(second.outcomes[0].result, Ok(Done::Created(_))));
}

#[tokio::test]
async fn an_unreadable_source_is_unavailable_and_nothing_is_created() {
    let config = config();
    let mut f = MockForge::new();
    f.expect_capabilities()
        .returning(|| Ok(ForgeCapabilities::read(true)));
    f.expect_jobs().returning(|| {
        Err(ProviderError::new(
            Service::Gitea,
            ErrorKind::Transient,
            "HTTP 502",
        ))
    });
    f.expect_runners()
        .returning(|| Ok(Source::complete(vec![])));
    let mut cloud = cloud(vec![]);
    cloud.expect_create_server().never();
    let p = providers(f, cloud, cluster());
    let mut shell = shell_of(&config);
    let report = tick_once(&p, &mut shell, true).await;
    assert!(!report.snapshot.jobs.is_complete());
    assert_eq!(report.read_errors.len(), 1);
    assert!(!report.read_everything());
    assert!(report.outcomes.is_empty());
}

/// A cluster whose node list never answers.
struct StuckCluster;

#[async_trait]
impl Cluster for StuckCluster {
    async fn nodes(&self) -> Result<Source<Node>, ProviderError> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(Source::complete(vec![]))
    }
    async fn runner_pods(&self) -> Result<Source<RunnerPod>, ProviderError> {
        Ok(Source::complete(vec![]))
    }
    async fn annotate_node(
        &self,
        _: &str,
        _: &str,
        _: Option<String>,
    ) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn cordon(&self, _: &str) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn drain(&self, _: &str, _: Timestamp) -> Result<DrainProgress, ProviderError> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(DrainProgress::Drained)
    }
    async fn delete_node(&self, _: &str) -> Result<(), ProviderError> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(())
    }
    async fn server_version(&self) -> Result<String, ProviderError> {
        Ok("v1.33.4+k3s1".into())
    }
    async fn control_plane_url(&self) -> Result<String, ProviderError> {
        Ok("https://10.0.0.2:6443".into())
    }
    async fn identity(&self) -> Result<String, ProviderError> {
        Ok("test-cluster".into())
    }
    async fn mint_join_token(
        &self,
        _: &str,
        _: Timestamp,
    ) -> Result<autoscaler_core::ports::JoinToken, ProviderError> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Err(ProviderError::new(
            autoscaler_core::ports::Service::Kubernetes,
            autoscaler_core::ports::ErrorKind::Timeout,
            "stuck",
        ))
    }
    async fn revoke_join_token(&self, _: &str) -> Result<(), ProviderError> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_that_never_answers_ends_at_the_timeout_as_unavailable() {
    let config = config();
    let p = providers(forge(vec![]), cloud(vec![]), StuckCluster);
    let mut shell = shell_of(&config);
    let started = tokio::time::Instant::now();
    let report = tick_once(&p, &mut shell, true).await;
    assert_eq!(started.elapsed(), LIMIT);
    assert!(!report.snapshot.nodes.is_complete());
    assert_eq!(report.read_errors[0].kind, ErrorKind::Timeout);
}

fn plan_of(actions: Vec<Action>) -> Plan {
    Plan {
        version: autoscaler_core::PLAN_VERSION,
        now: now(),
        actions: actions
            .into_iter()
            .map(|action| PlannedAction {
                action,
                reason: "test".into(),
            })
            .collect(),
        nodes: vec![],
        pools: vec![],
        unservable: vec![],
        warnings: vec![],
        next_decision: None,
        wake_at: None,
    }
}

#[tokio::test(start_paused = true)]
async fn actions_run_concurrently_and_come_back_in_plan_order() {
    let p = providers(forge(vec![]), cloud(vec![]), StuckCluster);
    let plan = plan_of(vec![
        Action::DeleteNode { node: "a".into() },
        Action::Drain { node: "b".into() },
        Action::DeleteNode { node: "c".into() },
    ]);
    let started = tokio::time::Instant::now();
    let outcomes = execute(&p, &config().validate().unwrap(), &plan, now(), LIMIT).await;
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1),
        "three 1 s calls at once"
    );
    let nodes: Vec<&str> = outcomes.iter().map(|o| o.action.node().unwrap()).collect();
    assert_eq!(nodes, ["a", "b", "c"]);
    assert_eq!(
        outcomes[1].result.as_ref().unwrap(),
        &Done::Drain(DrainProgress::Drained)
    );
}

#[tokio::test]
async fn a_label_write_asks_the_cloud_adapter_for_one_key() {
    let mut cloud = cloud(vec![]);
    let at = now().as_second().to_string();
    cloud
        .expect_label_server()
        .withf(move |id, key, value| {
            *id == ServerId(7)
                && key == autoscaler_core::keys::TEARDOWN
                && value.as_deref() == Some(at.as_str())
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    cloud
        .expect_label_server()
        .withf(|id, key, value| {
            *id == ServerId(99) && key == autoscaler_core::keys::TEARDOWN && value.is_none()
        })
        .times(1)
        .returning(|id, _, _| {
            Err(ProviderError::new(
                Service::Hetzner,
                ErrorKind::Invalid,
                format!("server {id}: its labels are unknown"),
            ))
        });
    let p = providers(forge(vec![]), cloud, cluster());
    let plan = plan_of(vec![
        Action::BeginTeardown {
            server_id: 7,
            at: now(),
        },
        Action::AbortTeardown { server_id: 99 },
    ]);
    let outcomes = execute(&p, &config().validate().unwrap(), &plan, now(), LIMIT).await;
    assert!(outcomes[0].result.is_ok());
    assert_eq!(outcomes[1].call.service, Service::Hetzner);
    let e = outcomes[1].result.as_ref().unwrap_err();
    assert!(e.message.contains("server 99"), "{e}");
}

fn outcome(action: Action, result: Result<Done, ProviderError>) -> Outcome {
    Outcome {
        call: Call {
            service: Service::Kubernetes,
            name: action.kind(),
            seconds: 0.0,
            error: result.as_ref().err().map(|e| e.kind),
        },
        action,
        reason: "a test".into(),
        result,
    }
}

#[test]
fn the_pure_shell_hears_a_drain_still_waiting_and_a_failure_as_such() {
    let drain = || Action::Drain { node: "n".into() };
    let blocked = Done::Drain(DrainProgress::Pending {
        evicted: 0,
        blocked: vec!["ci/pod".into()],
        terminating: 0,
    });
    let failed = Err(ProviderError::new(
        Service::Kubernetes,
        ErrorKind::Transient,
        "x",
    ));
    let heard: Vec<shell::Outcome> = [
        outcome(drain(), Ok(Done::Drain(DrainProgress::Drained))),
        outcome(Action::Cordon { node: "n".into() }, Ok(Done::Ok)),
        outcome(drain(), Ok(blocked)),
        outcome(Action::DeleteNode { node: "n".into() }, failed),
    ]
    .iter()
    .map(settled)
    .collect();
    assert_eq!(
        heard,
        [
            shell::Outcome::Done,
            shell::Outcome::Done,
            shell::Outcome::Waiting,
            shell::Outcome::Failed {
                kind: ErrorKind::Transient,
                message: "x".into()
            }
        ]
    );
}

fn create_action() -> Action {
    Action::CreateServer(ServerSpec {
        pool: "linux".into(),
        name: "ci-linux-new".into(),
        server_type: "cx33".into(),
        location: "nbg1".into(),
        image: "ubuntu-24.04".into(),
        baked_image: None,
        labels: std::collections::BTreeMap::new(),
        node_labels: std::collections::BTreeMap::new(),
    })
}

fn minted(expires: Timestamp) -> autoscaler_core::ports::JoinToken {
    autoscaler_core::ports::JoinToken {
        id: "abc123".into(),
        token: secrecy::SecretString::from("K10ff::abc123.0123456789abcdef"),
        expires,
    }
}

#[tokio::test]
async fn each_new_server_gets_a_token_of_its_own_expiring_after_its_provisioning_timeout() {
    let config = config();
    let policy = config.validate().unwrap();
    let pool = config.pools.iter().find(|p| p.name == "linux").unwrap();
    let expires = pool.join_token_expiry(now());
    let mut k = cluster();
    k.expect_mint_join_token()
        .withf(move |name, at| name == "ci-linux-new" && *at == expires)
        .times(1)
        .returning(|_, at| Ok(minted(at)));
    k.expect_revoke_join_token().times(0);
    let mut c = cloud(vec![]);
    c.expect_create_server()
        .withf(|new| new.join_token.as_ref().is_some_and(|t| t.id == "abc123"))
        .times(1)
        .returning(|new| Ok(synthetic::server("ci", "linux", 5, &new.spec.name, now())));
    let mut p = providers(forge(vec![]), c, k);
    p.mint_join_tokens = true;
    let out = execute(&p, &policy, &plan_of(vec![create_action()]), now(), LIMIT).await;
    assert!(
        matches!(out[0].result, Ok(Done::Created(_))),
        "{:?}",
        out[0].result
    );
}

#[tokio::test]
async fn a_refused_create_revokes_its_token_at_once() {
    let mut k = cluster();
    k.expect_mint_join_token().returning(|_, at| Ok(minted(at)));
    k.expect_revoke_join_token()
        .withf(|id| id == "abc123")
        .times(1)
        .returning(|_| Ok(()));
    let mut c = cloud(vec![]);
    c.expect_create_server().returning(|_| {
        Err(ProviderError::new(
            Service::Hetzner,
            ErrorKind::Capacity,
            "no capacity",
        ))
    });
    let mut p = providers(forge(vec![]), c, k);
    p.mint_join_tokens = true;
    let policy = config().validate().unwrap();
    let out = execute(&p, &policy, &plan_of(vec![create_action()]), now(), LIMIT).await;
    assert_eq!(
        out[0].result.as_ref().unwrap_err().kind,
        ErrorKind::Capacity
    );
}

#[tokio::test]
async fn a_token_is_revoked_before_its_label_goes_and_a_failed_revoke_keeps_the_label() {
    let retire = plan_of(vec![Action::RetireJoinToken {
        server_id: 7,
        token_id: "abc123".into(),
    }]);
    let policy = config().validate().unwrap();

    let mut seq = mockall::Sequence::new();
    let mut k = cluster();
    k.expect_revoke_join_token()
        .withf(|id| id == "abc123")
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    let mut c = cloud(vec![]);
    c.expect_label_server()
        .withf(|id, key, value| {
            *id == ServerId(7) && key == autoscaler_core::keys::JOIN_TOKEN && value.is_none()
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    let p = providers(forge(vec![]), c, k);
    assert!(
        execute(&p, &policy, &retire, now(), LIMIT).await[0]
            .result
            .is_ok()
    );

    let mut k = cluster();
    k.expect_revoke_join_token().returning(|_| {
        Err(ProviderError::new(
            Service::Kubernetes,
            ErrorKind::Auth,
            "forbidden",
        ))
    });
    let mut c = cloud(vec![]);
    c.expect_label_server().times(0);
    let p = providers(forge(vec![]), c, k);
    assert!(
        execute(&p, &policy, &retire, now(), LIMIT).await[0]
            .result
            .is_err()
    );
}

#[tokio::test]
async fn a_deleted_server_takes_its_token_and_a_failed_revoke_never_keeps_the_server() {
    let mut k = cluster();
    k.expect_revoke_join_token()
        .withf(|id| id == "abc123")
        .times(1)
        .returning(|_| {
            Err(ProviderError::new(
                Service::Kubernetes,
                ErrorKind::Transient,
                "503",
            ))
        });
    let mut c = cloud(vec![]);
    c.expect_delete_server()
        .withf(|id| *id == ServerId(7))
        .times(1)
        .returning(|_| Ok(()));
    let p = providers(forge(vec![]), c, k);
    let plan = plan_of(vec![Action::DeleteServer {
        server_id: 7,
        server_name: "m7".into(),
        join_token: Some("abc123".into()),
    }]);
    let out = execute(&p, &config().validate().unwrap(), &plan, now(), LIMIT).await;
    assert!(out[0].result.is_ok());
}

#[tokio::test]
async fn a_create_for_a_pool_not_configured_is_refused_before_any_call() {
    let mut c = cloud(vec![]);
    c.expect_create_server().times(0);
    let mut k = cluster();
    k.expect_mint_join_token().times(0);
    let mut p = providers(forge(vec![]), c, k);
    p.mint_join_tokens = true;
    let mut create = create_action();
    if let Action::CreateServer(spec) = &mut create {
        spec.pool = "gpu".into();
    }
    let out = execute(
        &p,
        &config().validate().unwrap(),
        &plan_of(vec![create]),
        now(),
        LIMIT,
    )
    .await;
    let e = out[0].result.as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("pool gpu"), "{e}");
}
