//! The ports as a shell uses them: every action's effect (which port, which call, which typed
//! id, which label or annotation encoding), and mocks standing in for the providers.

use std::collections::BTreeMap;

use autoscaler_core::ports::{
    Cloud, ErrorKind, MockCloud, MockCluster, NewServer, ProviderError, Service,
};
use autoscaler_core::{
    Action, CloudEffect, ClusterEffect, Effect, ForgeEffect, RunnerId, ServerId, ServerSpec,
    Source, Timestamp, keys,
};

fn at() -> Timestamp {
    "2026-11-25T10:00:00Z".parse().unwrap()
}

fn label(key: &'static str, value: Option<String>) -> Effect<'static> {
    Effect::Cloud(CloudEffect::Label {
        server: ServerId(1),
        key,
        value,
        revoke_first: None,
    })
}

#[test]
fn server_label_writes_follow_the_keys_and_encodings() {
    let unix = Some(at().as_second().to_string());
    let cases = [
        (
            Action::RecordCluster {
                server_id: 1,
                cluster: "c".into(),
            },
            label(keys::CLUSTER, Some("c".into())),
        ),
        (
            Action::RecordJoined {
                server_id: 1,
                at: at(),
            },
            label(keys::JOINED, unix.clone()),
        ),
        (
            Action::BeginTeardown {
                server_id: 1,
                at: at(),
            },
            label(keys::TEARDOWN, unix.clone()),
        ),
        (
            Action::AbortTeardown { server_id: 1 },
            label(keys::TEARDOWN, None),
        ),
        (
            Action::MarkNodeMissing {
                server_id: 1,
                since: at(),
            },
            label(keys::NODE_MISSING, unix),
        ),
        (
            Action::ClearNodeMissing { server_id: 1 },
            label(keys::NODE_MISSING, None),
        ),
    ];
    for (action, effect) in cases {
        assert!(action.writes_server_labels());
        assert_eq!(action.effect(), effect, "{action:?}");
        assert_eq!(action.effect().service(), Service::Hetzner);
        assert_eq!(action.server_id(), Some(1));
    }
    assert!(!Action::Cordon { node: "n".into() }.writes_server_labels());
}

#[test]
fn a_join_token_is_revoked_before_the_step_that_forgets_it() {
    let retire = Action::RetireJoinToken {
        server_id: 3,
        token_id: "abcdef".into(),
    };
    assert_eq!(
        retire.effect(),
        Effect::Cloud(CloudEffect::Label {
            server: ServerId(3),
            key: keys::JOIN_TOKEN,
            value: None,
            revoke_first: Some("abcdef"),
        })
    );
    let delete = |join_token: Option<&str>| Action::DeleteServer {
        server_id: 3,
        server_name: "ci-linux-3".into(),
        join_token: join_token.map(str::to_owned),
    };
    assert_eq!(
        delete(Some("abcdef")).effect(),
        Effect::Cloud(CloudEffect::Delete {
            server: ServerId(3),
            name: "ci-linux-3",
            revoke_first: Some("abcdef"),
        })
    );
    assert!(matches!(
        delete(None).effect(),
        Effect::Cloud(CloudEffect::Delete {
            revoke_first: None,
            ..
        })
    ));
}

#[test]
fn node_annotation_writes_use_rfc3339() {
    let rfc3339 = Some("2026-11-25T10:00:00Z".to_owned());
    let annotate = |key, value| {
        Effect::Cluster(ClusterEffect::Annotate {
            node: "n",
            key,
            value,
        })
    };
    let cases = [
        (
            Action::MarkIdle {
                node: "n".into(),
                since: at(),
            },
            annotate(keys::IDLE_SINCE, rfc3339.clone()),
        ),
        (
            Action::ClearIdle { node: "n".into() },
            annotate(keys::IDLE_SINCE, None),
        ),
        (
            Action::MarkServerMissing {
                node: "n".into(),
                since: at(),
            },
            annotate(keys::SERVER_MISSING, rfc3339),
        ),
        (
            Action::ClearServerMissing { node: "n".into() },
            annotate(keys::SERVER_MISSING, None),
        ),
        (
            Action::RecordRunners {
                node: "n".into(),
                runners: "n-0=4".into(),
            },
            annotate(keys::RUNNERS, Some("n-0=4".into())),
        ),
    ];
    for (action, effect) in cases {
        assert_eq!(action.effect(), effect, "{action:?}");
        assert_eq!(action.node(), Some("n"));
        assert!(!action.writes_server_labels());
    }
}

#[test]
fn runner_and_node_steps_go_to_their_ports_with_typed_ids() {
    let runner = |f: fn(u64, String) -> Action| f(9, "r".into());
    let cases = [
        (
            runner(|runner_id, runner_name| Action::DisableRunner {
                runner_id,
                runner_name,
            }),
            Effect::Forge(ForgeEffect::SetDisabled(RunnerId(9), true)),
        ),
        (
            runner(|runner_id, runner_name| Action::EnableRunner {
                runner_id,
                runner_name,
            }),
            Effect::Forge(ForgeEffect::SetDisabled(RunnerId(9), false)),
        ),
        (
            runner(|runner_id, runner_name| Action::DeleteRunner {
                runner_id,
                runner_name,
            }),
            Effect::Forge(ForgeEffect::Delete(RunnerId(9))),
        ),
        (
            Action::Cordon { node: "n".into() },
            Effect::Cluster(ClusterEffect::Cordon("n")),
        ),
        (
            Action::Drain { node: "n".into() },
            Effect::Cluster(ClusterEffect::Drain("n")),
        ),
        (
            Action::DeleteNode { node: "n".into() },
            Effect::Cluster(ClusterEffect::DeleteNode("n")),
        ),
    ];
    for (action, effect) in cases {
        assert_eq!(action.effect(), effect, "{action:?}");
    }
    assert_eq!(
        Action::Drain { node: "n".into() }.effect().service(),
        Service::Kubernetes
    );
    assert_eq!(
        runner(|runner_id, runner_name| Action::DeleteRunner {
            runner_id,
            runner_name
        })
        .effect()
        .service(),
        Service::Gitea
    );
}

#[test]
fn a_create_action_is_its_spec_and_serializes_as_plan_version_1() {
    let labels = BTreeMap::from([(keys::OWNER.to_owned(), "ci".to_owned())]);
    let spec = ServerSpec {
        pool: "linux".into(),
        name: "ci-linux-1".into(),
        server_type: "ccx33".into(),
        location: "nbg1".into(),
        image: "ubuntu-24.04".into(),
        baked_image: None,
        labels: labels.clone(),
        node_labels: labels,
    };
    let create = Action::CreateServer(spec.clone());
    assert_eq!(create.effect(), Effect::Cloud(CloudEffect::Create(&spec)));
    assert_eq!(NewServer::new(spec).join_token, None);
    let json = serde_json::to_value(&create).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "action": "create_server",
            "pool": "linux",
            "name": "ci-linux-1",
            "server_type": "ccx33",
            "location": "nbg1",
            "image": "ubuntu-24.04",
            "labels": {"gitea-ci-autoscaler/owner": "ci"},
            "node_labels": {"gitea-ci-autoscaler/owner": "ci"},
        }),
        "the fields stay beside the tag, as in version 1"
    );
    let back: Action = serde_json::from_value(json).unwrap();
    assert_eq!(back, create);
}

#[tokio::test]
async fn the_mocks_stand_in_for_providers() {
    let mut cloud = MockCloud::new();
    cloud
        .expect_servers()
        .returning(|| Ok(Source::complete(vec![])));
    cloud
        .expect_delete_server()
        .withf(|id| *id == ServerId(7))
        .times(1)
        .returning(|_| {
            Err(ProviderError::new(
                Service::Hetzner,
                ErrorKind::Conflict,
                "locked",
            ))
        });
    cloud.expect_budget().return_const(None);
    let cloud: Box<dyn Cloud> = Box::new(cloud);
    assert!(cloud.servers().await.unwrap().is_complete());
    let e = cloud.delete_server(ServerId(7)).await.unwrap_err();
    assert!(e.kind.is_retryable());
    assert_eq!(e.to_string(), "hetzner: locked");
    let mut cluster = MockCluster::new();
    cluster
        .expect_server_version()
        .returning(|| Ok("v1.33.4+k3s1".into()));
    assert_eq!(
        autoscaler_core::ports::Cluster::server_version(&cluster)
            .await
            .unwrap(),
        "v1.33.4+k3s1"
    );
}

#[test]
fn error_kinds_say_what_may_pass_by_itself() {
    for k in [
        ErrorKind::Transient,
        ErrorKind::Timeout,
        ErrorKind::RateLimited,
        ErrorKind::Capacity,
        ErrorKind::Conflict,
    ] {
        assert!(k.is_retryable(), "{k:?}");
    }
    for k in [
        ErrorKind::Auth,
        ErrorKind::Quota,
        ErrorKind::Invalid,
        ErrorKind::Unsupported,
        ErrorKind::NotFound,
        ErrorKind::BadResponse,
    ] {
        assert!(!k.is_retryable(), "{k:?}");
    }
}

/// One action of every kind. [`kind_index`] is an exhaustive match, so a new kind of action
/// fails to compile until it has a number, and the test below until it has a sample here.
fn one_of_each() -> Vec<Action> {
    let spec = autoscaler_core::synthetic::server_spec("ci", "linux", "n");
    let node = || "n".to_owned();
    vec![
        Action::CreateServer(spec),
        Action::RecordCluster {
            server_id: 1,
            cluster: "c".into(),
        },
        Action::RetireJoinToken {
            server_id: 1,
            token_id: "abcdef".into(),
        },
        Action::RecordJoined {
            server_id: 1,
            at: at(),
        },
        Action::MarkIdle {
            node: node(),
            since: at(),
        },
        Action::RecordRunners {
            node: node(),
            runners: "n-0=1".into(),
        },
        Action::ClearIdle { node: node() },
        Action::BeginTeardown {
            server_id: 1,
            at: at(),
        },
        Action::AbortTeardown { server_id: 1 },
        Action::DisableRunner {
            runner_id: 1,
            runner_name: "r".into(),
        },
        Action::EnableRunner {
            runner_id: 1,
            runner_name: "r".into(),
        },
        Action::DeleteRunner {
            runner_id: 1,
            runner_name: "r".into(),
        },
        Action::Cordon { node: node() },
        Action::Drain { node: node() },
        Action::DeleteNode { node: node() },
        Action::MarkNodeMissing {
            server_id: 1,
            since: at(),
        },
        Action::ClearNodeMissing { server_id: 1 },
        Action::MarkServerMissing {
            node: node(),
            since: at(),
        },
        Action::ClearServerMissing { node: node() },
        Action::DeleteServer {
            server_id: 1,
            server_name: "n".into(),
            join_token: None,
        },
    ]
}

fn kind_index(a: &Action) -> usize {
    match a {
        Action::CreateServer(_) => 0,
        Action::RecordCluster { .. } => 1,
        Action::RetireJoinToken { .. } => 2,
        Action::RecordJoined { .. } => 3,
        Action::MarkIdle { .. } => 4,
        Action::RecordRunners { .. } => 5,
        Action::ClearIdle { .. } => 6,
        Action::BeginTeardown { .. } => 7,
        Action::AbortTeardown { .. } => 8,
        Action::DisableRunner { .. } => 9,
        Action::EnableRunner { .. } => 10,
        Action::DeleteRunner { .. } => 11,
        Action::Cordon { .. } => 12,
        Action::Drain { .. } => 13,
        Action::DeleteNode { .. } => 14,
        Action::MarkNodeMissing { .. } => 15,
        Action::ClearNodeMissing { .. } => 16,
        Action::MarkServerMissing { .. } => 17,
        Action::ClearServerMissing { .. } => 18,
        Action::DeleteServer { .. } => 19,
    }
}

#[test]
fn every_kind_of_action_agrees_with_its_effect_and_reads_back_from_json() {
    let all = one_of_each();
    let mut seen: Vec<usize> = all.iter().map(kind_index).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen,
        (0..20).collect::<Vec<_>>(),
        "one sample of every kind"
    );
    for a in &all {
        let effect = a.effect();
        assert_eq!(
            a.writes_server_labels(),
            matches!(effect, Effect::Cloud(CloudEffect::Label { .. })),
            "{a:?}"
        );
        let targets_server = matches!(
            effect,
            Effect::Cloud(CloudEffect::Label { .. } | CloudEffect::Delete { .. })
        );
        assert_eq!(a.server_id().is_some(), targets_server, "{a:?}");
        assert_eq!(
            a.node().is_some(),
            matches!(effect, Effect::Cluster(_)),
            "{a:?}"
        );
        assert_eq!(
            a.runner_id().is_some(),
            matches!(effect, Effect::Forge(_)),
            "{a:?}"
        );
        let json = serde_json::to_value(a).unwrap();
        assert_eq!(json["action"], a.kind(), "the JSON tag is the kind");
        assert_eq!(&serde_json::from_value::<Action>(json).unwrap(), a);
    }
}
