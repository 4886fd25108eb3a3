//! Per-server join tokens: each is revoked as soon as nobody needs it (its node joined, it
//! expired, or its server goes), and nothing else about a machine changes because of it.

mod common;

use autoscaler_core::{Action, ServerSpec, WarningKind, keys};
use common::*;

fn world() -> World {
    World::new(config(&["linux"]))
}

/// Queues a job, lets the core create its server, and gives the server a minted token id as the
/// cloud adapter does.
fn provisioning(w: &mut World, token: &str) -> String {
    w.queue(&["linux"]);
    let plan = w.step();
    let Some(Action::CreateServer(ServerSpec { name, .. })) = plan
        .action_list()
        .find(|a| matches!(a, Action::CreateServer { .. }))
        .cloned()
    else {
        panic!("no create: {:?}", kinds(&plan));
    };
    w.server_mut(&name)
        .labels
        .insert(keys::JOIN_TOKEN.into(), token.into());
    name
}

fn retired(w: &World) -> Vec<String> {
    w.applied
        .iter()
        .filter_map(|a| match a {
            Action::RetireJoinToken { token_id, .. } => Some(token_id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_token_lives_while_its_server_boots_and_is_revoked_once_the_node_joined() {
    let mut w = world();
    let name = provisioning(&mut w, "abc123");
    for _ in 0..4 {
        w.advance(secs(10));
        w.step();
    }
    assert!(retired(&w).is_empty(), "revoked before the join");
    w.join(&name, w.now());
    let plan = w.step();
    assert!(
        kinds(&plan).contains(&"record_joined"),
        "{:?}",
        kinds(&plan)
    );
    w.advance(secs(5));
    w.step();
    assert_eq!(retired(&w), ["abc123"]);
    assert!(
        !w.server(&name)
            .unwrap()
            .labels
            .contains_key(keys::JOIN_TOKEN)
    );
    for _ in 0..3 {
        w.advance(secs(5));
        w.step();
    }
    assert_eq!(retired(&w), ["abc123"], "once");
}

#[test]
fn a_server_that_never_joined_takes_its_live_token_with_it() {
    let mut w = world();
    let name = provisioning(&mut w, "zz9zz9");
    let id = w.server(&name).unwrap().id;
    let timeout = w.pool("linux").provisioning_timeout;
    w.advance(timeout + secs(1));
    let mut deleted = None;
    for _ in 0..10 {
        w.advance(secs(10));
        let plan = w.step();
        if let Some(Action::DeleteServer { join_token, .. }) = plan
            .action_list()
            .find(|a| matches!(a, Action::DeleteServer { server_id, .. } if *server_id == id))
        {
            deleted = Some(join_token.clone());
            break;
        }
    }
    assert_eq!(deleted, Some(Some("zz9zz9".to_owned())));
}

#[test]
fn an_expired_token_is_revoked_even_while_its_node_is_missing() {
    let mut w = world();
    let name = provisioning(&mut w, "exp123");
    let pool = w.pool("linux");
    let created = w.server(&name).unwrap().created;
    // The server is old (its teardown held by a pod that still names the node), its token past
    // its expiry.
    w.truth.now = pool.join_token_expiry(created) + secs(1);
    items_mut(&mut w.truth.pods).push(autoscaler_core::synthetic::pod("p", &name));
    let plan = w.step();
    assert!(
        plan.action_list().any(|a| matches!(a,
            Action::RetireJoinToken { token_id, .. } if token_id == "exp123")),
        "{:?}",
        kinds(&plan)
    );
}

#[test]
fn a_label_that_is_no_token_id_is_reported_and_never_acted_on() {
    let mut w = world();
    let name = provisioning(&mut w, "../../etc");
    w.join(&name, w.now());
    w.step();
    let plan = w.step();
    assert!(
        plan.has_warning(WarningKind::GarbledMemory),
        "{:#?}",
        plan.warnings
    );
    assert!(retired(&w).is_empty());
}

#[test]
fn the_token_expires_five_minutes_after_the_provisioning_timeout() {
    let pool = world().pool("linux");
    let t = world().now();
    assert_eq!(
        pool.join_token_expiry(t),
        t + pool.provisioning_timeout + keys::JOIN_TOKEN_GRACE
    );
    // Never a panic at the end of time.
    assert_eq!(
        pool.join_token_expiry(autoscaler_core::Timestamp::MAX),
        autoscaler_core::Timestamp::MAX
    );
}
