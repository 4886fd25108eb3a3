use std::collections::BTreeMap;

use autoscaler_core::{Image, ImageStatus, Server, ServerStatus, SignedDuration, Timestamp, keys};
use proptest::prelude::*;

use super::recipe::example;
use super::{Step, next_step};

const MIN: i64 = 60;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_790_000_000 + secs).unwrap()
}

fn server(id: u64, labels: BTreeMap<String, String>, status: ServerStatus, created: i64) -> Server {
    Server {
        id,
        name: format!("ci-bake-{id}"),
        labels,
        created: at(created),
        status,
        server_type: "cx33".into(),
        location: "nbg1".into(),
    }
}

fn image(id: u64, labels: BTreeMap<String, String>, status: ImageStatus, created: i64) -> Image {
    Image {
        id,
        labels,
        created: at(created),
        status,
    }
}

fn other_hash() -> BTreeMap<String, String> {
    let mut l = example().labels();
    l.insert(keys::BAKE.into(), "0123456789abcdef".into());
    l
}

fn step(servers: &[Server], images: &[Image], now: i64) -> Step {
    next_step(
        &example(),
        servers,
        images,
        at(now),
        SignedDuration::from_mins(30),
        2,
    )
}

#[test]
fn the_bake_goes_through_its_steps_in_order() {
    let l = example().labels();
    assert_eq!(step(&[], &[], 0), Step::CreateServer);
    let running = server(7, l.clone(), ServerStatus::Running, 0);
    assert_eq!(
        step(std::slice::from_ref(&running), &[], 5 * MIN),
        Step::AwaitPowerOff { server: 7 }
    );
    let off = server(7, l.clone(), ServerStatus::Off, 0);
    assert_eq!(
        step(std::slice::from_ref(&off), &[], 6 * MIN),
        Step::Snapshot { server: 7 }
    );
    let writing = image(50, l.clone(), ImageStatus::Creating, 6 * MIN);
    assert_eq!(
        step(
            std::slice::from_ref(&off),
            std::slice::from_ref(&writing),
            7 * MIN
        ),
        Step::AwaitImage { image: 50 }
    );
    let made = image(50, l.clone(), ImageStatus::Available, 6 * MIN);
    assert!(matches!(
        step(
            std::slice::from_ref(&off),
            std::slice::from_ref(&made),
            8 * MIN
        ),
        Step::DeleteServer { server: 7, .. }
    ));
    assert_eq!(step(&[], &[made], 9 * MIN), Step::Done { image: 50 });
}

#[test]
fn a_server_that_never_powers_off_is_given_up_at_the_timeout() {
    let running = server(7, example().labels(), ServerStatus::Running, 0);
    assert_eq!(
        step(std::slice::from_ref(&running), &[], 29 * MIN),
        Step::AwaitPowerOff { server: 7 }
    );
    assert_eq!(step(&[running], &[], 30 * MIN), Step::GiveUp { server: 7 });
}

#[test]
fn a_failed_snapshot_is_deleted_and_the_bake_starts_over() {
    let l = example().labels();
    let failed = image(50, l.clone(), ImageStatus::Unavailable, 0);
    assert!(matches!(
        step(&[], std::slice::from_ref(&failed), MIN),
        Step::DeleteImage { image: 50, .. }
    ));
}

#[test]
fn old_images_beyond_the_kept_ones_are_pruned_oldest_first() {
    let l = example().labels();
    let made = image(60, l.clone(), ImageStatus::Available, 100 * MIN);
    let older = [
        image(10, other_hash(), ImageStatus::Available, 0),
        image(20, other_hash(), ImageStatus::Available, 10 * MIN),
        image(30, other_hash(), ImageStatus::Available, 20 * MIN),
    ];
    let mut all = older.to_vec();
    all.push(made.clone());
    // Keep 2: the new one and the newest older one (30); 10 goes first, then 20.
    assert!(matches!(
        step(&[], &all, 101 * MIN),
        Step::DeleteImage { image: 10, .. }
    ));
    all.retain(|i| i.id != 10);
    assert!(matches!(
        step(&[], &all, 101 * MIN),
        Step::DeleteImage { image: 20, .. }
    ));
    all.retain(|i| i.id != 20);
    assert_eq!(step(&[], &all, 101 * MIN), Step::Done { image: 60 });
}

#[test]
fn what_is_not_this_installations_or_pools_is_never_touched() {
    let mut foreign = example().labels();
    foreign.insert(keys::OWNER.into(), "other".into());
    let mut other_pool = other_hash();
    other_pool.insert(keys::POOL.into(), "big".into());
    let mut hand_made = BTreeMap::from([(keys::OWNER.to_owned(), "ci".to_owned())]);
    hand_made.insert(keys::POOL.into(), "linux".into());
    let made = image(60, example().labels(), ImageStatus::Available, 100 * MIN);
    let images = [
        image(1, foreign.clone(), ImageStatus::Available, 0),
        image(2, other_pool, ImageStatus::Available, 0),
        image(3, hand_made, ImageStatus::Unavailable, 0),
        image(4, foreign.clone(), ImageStatus::Unavailable, 0),
        made,
    ];
    let servers = [server(9, foreign, ServerStatus::Off, 0)];
    assert_eq!(step(&servers, &images, 101 * MIN), Step::Done { image: 60 });
}

fn labels_strategy() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop_oneof![
        Just(example().labels()),
        Just(other_hash()),
        Just(BTreeMap::new()),
        Just({
            let mut l = example().labels();
            l.insert(keys::OWNER.into(), "other".into());
            l
        }),
    ]
}

fn status_strategy() -> impl Strategy<Value = ServerStatus> {
    prop_oneof![
        Just(ServerStatus::Running),
        Just(ServerStatus::Initializing),
        Just(ServerStatus::Off),
        Just(ServerStatus::Deleting),
        Just(ServerStatus::Unknown),
    ]
}

fn image_status_strategy() -> impl Strategy<Value = ImageStatus> {
    prop_oneof![
        Just(ImageStatus::Available),
        Just(ImageStatus::Creating),
        Just(ImageStatus::Unavailable),
    ]
}

proptest! {
    /// Whatever is listed, at any time and with any timeout, a step only ever touches this
    /// installation's bake servers and this pool's baked images, never deletes the image it is
    /// done with or one still being written, and never panics.
    #[test]
    fn steps_touch_only_what_the_bake_owns(
        servers in prop::collection::vec((1u64..20, labels_strategy(), status_strategy(), -1_000_000i64..1_000_000), 0..5),
        images in prop::collection::vec((20u64..40, labels_strategy(), image_status_strategy(), -1_000_000i64..1_000_000), 0..6),
        now in any::<i64>(),
        timeout in any::<i64>(),
        keep in 0usize..5,
    ) {
        let servers: Vec<Server> = servers.into_iter().enumerate().map(|(n, (i, l, s, c))| server(i * 10 + n as u64, l, s, c)).collect();
        let images: Vec<Image> = images.into_iter().enumerate().map(|(n, (i, l, s, c))| image(i * 10 + n as u64, l, s, c)).collect();
        let now = Timestamp::from_second(now.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second())).unwrap();
        let r = example();
        let got = next_step(&r, &servers, &images, now, SignedDuration::from_secs(timeout), keep);
        let hash = r.hash();
        let ours = |l: &BTreeMap<String, String>| l.get(keys::OWNER) == Some(&r.installation);
        match got {
            Step::DeleteServer { server, .. } | Step::GiveUp { server } => {
                let s = servers.iter().find(|s| s.id == server).unwrap();
                prop_assert!(ours(&s.labels) && s.labels.get(keys::BAKE) == Some(&hash));
            }
            Step::DeleteImage { image, .. } => {
                let i = images.iter().find(|i| i.id == image).unwrap();
                prop_assert!(ours(&i.labels) && i.labels.get(keys::POOL) == Some(&r.pool));
                prop_assert!(i.labels.contains_key(keys::BAKE));
                prop_assert!(i.status != ImageStatus::Creating);
                let made = images.iter().filter(|j| j.labels.get(keys::BAKE) == Some(&hash) && ours(&j.labels) && j.labels.get(keys::POOL) == Some(&r.pool));
                let best = made.filter(|j| j.status == ImageStatus::Available).max_by_key(|j| (j.created, j.id));
                prop_assert!(best.is_none_or(|b| b.id != image), "the image made is kept");
            }
            Step::Snapshot { server } => {
                let s = servers.iter().find(|s| s.id == server).unwrap();
                prop_assert_eq!(s.status, ServerStatus::Off);
            }
            Step::Done { image } => {
                let i = images.iter().find(|i| i.id == image).unwrap();
                prop_assert_eq!(i.status, ImageStatus::Available);
                prop_assert_eq!(i.labels.get(keys::BAKE), Some(&hash));
            }
            _ => {}
        }
    }
}
