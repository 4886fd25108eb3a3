//! Baked images: a pool boots the image its bakes made when it fits the cluster's K3s version,
//! falls back to its base image with a warning when not, and a bake's temporary server is
//! never a node, never capacity, and deleted only once it is surely left behind.

mod common;

use std::collections::BTreeMap;

use autoscaler_core::{
    Action, BAKE_SERVER_LIMIT, BakedImage, Image, ImageStatus, ServerSpec, Source, WarningKind,
    keys, synthetic,
};
use common::*;
use proptest::prelude::*;

const VERSION: &str = "v1.33.4+k3s1";

fn world(baked: Option<BakedImage>) -> World {
    let mut c = config(&["linux"]);
    c.pools[0].baked_image = baked;
    let mut w = World::new(c);
    w.truth.k3s_version = Some(VERSION.into());
    w
}

fn baked(id: u64, version: &str, status: ImageStatus, created: &str) -> Image {
    let mut labels = autoscaler_core::baked_image_labels(INSTALLATION, "linux", version);
    labels.insert(keys::BAKE.into(), format!("{id:016x}"));
    Image {
        id,
        labels,
        created: t(created),
        status,
    }
}

fn created(w: &mut World) -> (ServerSpec, Vec<String>) {
    w.queue(&["linux"]);
    let plan = w.decide();
    let spec = plan
        .action_list()
        .find_map(|a| match a {
            Action::CreateServer(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no create: {:?}", kinds(&plan)));
    let fallbacks = plan
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::BakedImageFallback)
        .map(|w| w.message.clone())
        .collect();
    (spec, fallbacks)
}

#[test]
fn a_pool_boots_the_newest_available_image_of_the_clusters_version() {
    let mut w = world(Some(BakedImage::Auto));
    w.truth.images = Source::complete(vec![
        baked(70, VERSION, ImageStatus::Available, "2026-11-20T00:00:00Z"),
        baked(71, VERSION, ImageStatus::Available, "2026-11-24T00:00:00Z"),
        baked(72, VERSION, ImageStatus::Creating, "2026-11-25T09:00:00Z"),
        baked(
            73,
            "v1.32.1+k3s1",
            ImageStatus::Available,
            "2026-11-25T09:30:00Z",
        ),
    ]);
    let (spec, fallbacks) = created(&mut w);
    assert_eq!(spec.baked_image, Some(71));
    assert_eq!(spec.image, "71");
    assert!(fallbacks.is_empty(), "{fallbacks:?}");
}

#[test]
fn without_a_fitting_image_the_pool_boots_its_base_image_and_the_plan_says_why() {
    for (images, why) in [
        (Source::complete(vec![]), "no"),
        (
            Source::complete(vec![baked(
                73,
                "v1.32.1+k3s1",
                ImageStatus::Available,
                "2026-11-25T09:30:00Z",
            )]),
            "v1.33.4",
        ),
        (Source::unavailable("HTTP 503"), "could not be read"),
    ] {
        let mut w = world(Some(BakedImage::Auto));
        w.truth.images = images;
        let (spec, fallbacks) = created(&mut w);
        assert_eq!(spec.baked_image, None);
        assert_eq!(spec.image, "ubuntu-24.04");
        assert_eq!(fallbacks.len(), 1);
        assert!(fallbacks[0].contains(why), "{why}: {}", fallbacks[0]);
    }
    // An unknown cluster version is no version to check an image against.
    let mut w = world(Some(BakedImage::Id(71)));
    w.truth.k3s_version = None;
    w.truth.images = Source::complete(vec![baked(
        71,
        VERSION,
        ImageStatus::Available,
        "2026-11-24T00:00:00Z",
    )]);
    let (spec, fallbacks) = created(&mut w);
    assert_eq!(spec.baked_image, None);
    assert!(fallbacks[0].contains("not known"), "{fallbacks:?}");
}

#[test]
fn a_pool_without_a_baked_image_is_not_warned_about() {
    let mut w = world(None);
    w.truth.images = Source::unavailable("never read");
    let (spec, fallbacks) = created(&mut w);
    assert_eq!(spec.image, "ubuntu-24.04");
    assert!(fallbacks.is_empty());
}

fn bake_server(w: &mut World, installation: &str, id: u64, age: jiff::SignedDuration) {
    let mut s = synthetic::server(
        installation,
        "linux",
        id,
        &format!("{installation}-bake-{id:016x}"),
        w.now() - age,
    );
    s.labels.insert(keys::BAKE.into(), format!("{id:016x}"));
    items_mut(&mut w.truth.servers).push(s);
}

fn deleted(plan: &autoscaler_core::Plan) -> Vec<u64> {
    plan.action_list()
        .filter_map(|a| match a {
            Action::DeleteServer { server_id, .. } => Some(*server_id),
            _ => None,
        })
        .collect()
}

#[test]
fn a_bake_server_is_never_capacity_and_is_deleted_only_past_the_limit() {
    let mut w = world(None);
    bake_server(&mut w, INSTALLATION, 900, BAKE_SERVER_LIMIT - mins(1));
    bake_server(&mut w, "other", 901, BAKE_SERVER_LIMIT * 3);
    // A waiting job still buys a server: the bake server runs no runner.
    let (_, _) = created(&mut w);
    let plan = w.decide();
    assert!(deleted(&plan).is_empty(), "{:?}", kinds(&plan));
    assert!(plan.nodes.iter().all(|n| !n.name.contains("-bake-")));
    // The plan asks to be called again when the limit is reached.
    assert!(
        plan.wake_at
            .is_some_and(|t| t <= w.now() + mins(1) + secs(1))
    );
    w.advance(mins(1));
    let plan = w.decide();
    assert_eq!(deleted(&plan), [900], "only this installation's, once past");
    assert!(
        plan.warnings
            .iter()
            .any(|x| x.kind == WarningKind::BakeLeftover && x.message.contains("900"))
    );
}

#[test]
fn a_left_bake_server_is_held_while_any_source_is_incomplete() {
    // The evidence is the server itself (this installation's owner and bake labels, and its
    // age) read in a complete list, with every other source complete too: a list that could not
    // be read in full holds the delete.
    let mut w = world(None);
    bake_server(&mut w, INSTALLATION, 900, BAKE_SERVER_LIMIT * 2);
    assert_eq!(deleted(&w.decide()), [900]);
    for hole in 0..3 {
        let mut v = world(None);
        bake_server(&mut v, INSTALLATION, 900, BAKE_SERVER_LIMIT * 2);
        match hole {
            0 => v.truth.nodes = Source::unavailable("the API server is down"),
            1 => v.truth.jobs = Source::unavailable("Gitea is down"),
            _ => {
                let servers = v.truth.servers.items().to_vec();
                v.truth.servers = Source::Partial {
                    items: servers,
                    reason: "page 2 failed".into(),
                };
            }
        }
        let plan = v.decide();
        assert!(deleted(&plan).is_empty(), "hole {hole}: {:?}", kinds(&plan));
    }
}

proptest! {
    /// Whatever a bake server's age (any instant, also in the future) and status, it is deleted
    /// exactly when it is at least the limit old, and never counted as a machine.
    #[test]
    fn bake_servers_go_only_past_the_limit(age_secs in any::<i32>(), labels in prop::collection::btree_map("[a-z]{1,3}", "[a-z]{0,3}", 0..3)) {
        let mut w = world(None);
        let age = secs(i64::from(age_secs));
        bake_server(&mut w, INSTALLATION, 900, age);
        items_mut(&mut w.truth.servers)[0].labels.extend(labels.into_iter().collect::<BTreeMap<_, _>>());
        let plan = w.decide();
        prop_assert_eq!(deleted(&plan).contains(&900), age >= BAKE_SERVER_LIMIT);
        prop_assert!(plan.nodes.iter().all(|n| !n.name.contains("-bake-")));
    }
}
