//! The ports as a shell uses them: mocks stand in for the providers, and the actions' label and
//! annotation writes are what the shell sends.

use std::collections::BTreeMap;

use autoscaler_core::ports::{
    Cloud, ErrorKind, MockCloud, MockCluster, NewServer, ProviderError, Service,
};
use autoscaler_core::{Action, Source, Timestamp, keys};

fn at() -> Timestamp {
    "2026-11-25T10:00:00Z".parse().unwrap()
}

#[test]
fn server_label_writes_follow_the_keys_and_encodings() {
    let cases = [
        (
            Action::RecordJoined {
                server_id: 1,
                at: at(),
            },
            keys::JOINED,
            Some(at().as_second().to_string()),
        ),
        (
            Action::BeginTeardown {
                server_id: 1,
                at: at(),
            },
            keys::TEARDOWN,
            Some(at().as_second().to_string()),
        ),
        (Action::AbortTeardown { server_id: 1 }, keys::TEARDOWN, None),
        (
            Action::MarkNodeMissing {
                server_id: 1,
                since: at(),
            },
            keys::NODE_MISSING,
            Some(at().as_second().to_string()),
        ),
        (
            Action::ClearNodeMissing { server_id: 1 },
            keys::NODE_MISSING,
            None,
        ),
    ];
    for (action, key, value) in cases {
        assert!(action.writes_server_labels());
        assert_eq!(
            action.server_label_write(),
            Some((key, value)),
            "{action:?}"
        );
        assert_eq!(action.node_annotation_write(), None);
    }
    assert_eq!(
        Action::Cordon { node: "n".into() }.server_label_write(),
        None
    );
}

#[test]
fn node_annotation_writes_use_rfc3339() {
    let cases = [
        (
            Action::MarkIdle {
                node: "n".into(),
                since: at(),
            },
            keys::IDLE_SINCE,
            Some("2026-11-25T10:00:00Z".to_owned()),
        ),
        (
            Action::ClearIdle { node: "n".into() },
            keys::IDLE_SINCE,
            None,
        ),
        (
            Action::MarkServerMissing {
                node: "n".into(),
                since: at(),
            },
            keys::SERVER_MISSING,
            Some("2026-11-25T10:00:00Z".to_owned()),
        ),
        (
            Action::ClearServerMissing { node: "n".into() },
            keys::SERVER_MISSING,
            None,
        ),
    ];
    for (action, key, value) in cases {
        assert_eq!(
            action.node_annotation_write(),
            Some((key, value)),
            "{action:?}"
        );
    }
}

#[test]
fn a_create_action_becomes_a_new_server_and_nothing_else_does() {
    let labels = BTreeMap::from([(keys::OWNER.to_owned(), "ci".to_owned())]);
    let create = Action::CreateServer {
        pool: "linux".into(),
        name: "ci-linux-1".into(),
        server_type: "ccx33".into(),
        location: "nbg1".into(),
        image: "ubuntu-24.04".into(),
        labels: labels.clone(),
        node_labels: labels.clone(),
    };
    let new = NewServer::from_action(&create).unwrap();
    assert_eq!(
        (new.name.as_str(), new.server_type.as_str(), new.labels),
        ("ci-linux-1", "ccx33", labels)
    );
    assert_eq!(
        NewServer::from_action(&Action::ClearIdle { node: "n".into() }),
        None
    );
}

#[tokio::test]
async fn the_mocks_stand_in_for_providers() {
    let mut cloud = MockCloud::new();
    cloud
        .expect_servers()
        .returning(|| Ok(Source::complete(vec![])));
    cloud
        .expect_delete_server()
        .withf(|id| *id == 7)
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
    let e = cloud.delete_server(7).await.unwrap_err();
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
