//! `image bake` against the Hetzner fake: the whole flow, a second run that has nothing to do,
//! a stop before every step and a resume, a script that never finishes, pruning, and a pool's
//! server booting the image made.

use std::collections::BTreeMap;
use std::time::Duration;

use autoscaler_contract::{Request, Spec};
use autoscaler_core::ports::{Cloud, NewServer};
use autoscaler_core::{ImageStatus, ServerSpec, SignedDuration, keys};
use autoscaler_fakes::hetzner::{FakeHetzner, State, TOKEN};
use autoscaler_hetzner::bake::{BakeOptions, Baked, K3S_RELEASES, Recipe, Step, bake};
use autoscaler_hetzner::{HetznerClient, HetznerConfig, K3sJoin};
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer};

fn recipe() -> Recipe {
    Recipe {
        installation: "ci".into(),
        pool: "linux".into(),
        server_type: "cx33".into(),
        architecture: "x86".into(),
        location: "nbg1".into(),
        base_image: "ubuntu-24.04".into(),
        k3s_version: "v1.33.4+k3s1".into(),
        install_script_url: "https://get.k3s.io".into(),
        releases_url: K3S_RELEASES.into(),
        runner_images: vec!["docker.io/gitea/act_runner:0.2.12".into()],
    }
}

fn options() -> BakeOptions {
    BakeOptions {
        keep: 2,
        timeout: SignedDuration::from_mins(30),
        poll: Duration::from_millis(5),
    }
}

async fn setup(state: State) -> (MockServer, FakeHetzner, HetznerClient) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mock = MockServer::start().await;
    let fake = FakeHetzner::new(state);
    Mock::given(any())
        .respond_with(fake.clone())
        .mount(&mock)
        .await;
    let join = K3sJoin::new(
        "https://10.0.0.2:6443",
        Some(SecretString::from("K10x")),
        "v1.33.4+k3s1",
    );
    let mut config = HetznerConfig::new(SecretString::from(TOKEN), "ci", join);
    config.settings.url = format!("{}/v1", mock.uri());
    config.settings.ssh_keys = vec!["ops".into()];
    let client = HetznerClient::new(reqwest::Client::new(), config).unwrap();
    (mock, fake, client)
}

async fn run(client: &HetznerClient, options: &BakeOptions) -> (Result<Baked, String>, Vec<Step>) {
    let mut steps = Vec::new();
    let result = bake(client, &recipe(), options, &mut |s| {
        steps.push(s.clone());
        true
    })
    .await
    .map_err(|e| e.to_string());
    (result, steps)
}

async fn creates(mock: &MockServer) -> usize {
    mock.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/servers")
        .count()
}

#[tokio::test]
async fn a_bake_makes_one_labelled_image_and_leaves_no_server() {
    let (mock, fake, client) = setup(State::default()).await;
    // The fake tells a bake's server by the marker the bake writes.
    assert_eq!(
        autoscaler_fakes::hetzner::BAKE_MARKER,
        autoscaler_hetzner::bake::BAKE_MARKER
    );
    let (result, steps) = run(&client, &options()).await;
    let Ok(Baked::Image(id)) = result else {
        panic!("{result:?}")
    };
    let names: Vec<&str> = steps
        .iter()
        .map(|s| match s {
            Step::CreateServer => "create",
            Step::AwaitPowerOff { .. } => "install",
            Step::Snapshot { .. } => "snapshot",
            Step::AwaitImage { .. } => "write",
            Step::DeleteServer { .. } => "delete server",
            Step::Done { .. } => "done",
            _ => "other",
        })
        .collect();
    assert_eq!(
        names,
        [
            "create",
            "install",
            "snapshot",
            "write",
            "delete server",
            "done"
        ]
    );
    let (servers, snapshots) = {
        let state = fake.state();
        (state.servers.clone(), state.snapshots.clone())
    };
    assert!(servers.is_empty(), "the temporary server is gone");
    assert_eq!(snapshots.len(), 1);
    let image = &snapshots[0];
    assert_eq!(image["id"], id);
    assert_eq!(image["status"], "available");
    let r = recipe();
    assert_eq!(image["labels"][keys::OWNER], "ci");
    assert_eq!(image["labels"][keys::POOL], "linux");
    assert_eq!(image["labels"][keys::K3S_VERSION], "v1.33.4_k3s1");
    assert_eq!(image["labels"][keys::BAKE], r.hash().as_str());
    // The temporary server got the bake script, and IPv4 to download with.
    let created: Vec<_> = mock
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/servers")
        .collect();
    let body: serde_json::Value = serde_json::from_slice(&created[0].body).unwrap();
    assert_eq!(body["name"], r.server_name());
    assert_eq!(body["image"], "ubuntu-24.04");
    assert_eq!(body["public_net"]["enable_ipv4"], true);
    assert_eq!(body["ssh_keys"], json!(["ops"]));
    assert!(
        body["user_data"]
            .as_str()
            .unwrap()
            .contains(autoscaler_hetzner::bake::BAKE_MARKER)
    );
    // Every request was one the spec knows.
    let spec = Spec::hetzner();
    for r in &mock.received_requests().await.unwrap() {
        spec.check_request(&Request::recorded(r))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // A second run has nothing to do.
    let (again, steps) = run(&client, &options()).await;
    assert_eq!(again, Ok(Baked::Image(id)));
    assert_eq!(steps, [Step::Done { image: id }]);
    assert_eq!(creates(&mock).await, 1);
}

#[tokio::test]
async fn a_bake_stopped_before_any_step_resumes_to_the_same_result() {
    // The steps of an uninterrupted bake.
    let (_m, _f, client) = setup(State::default()).await;
    let (_, all) = run(&client, &options()).await;
    for stop_at in 0..all.len() {
        let (mock, fake, client) = setup(State::default()).await;
        let mut seen = 0;
        let stopped = bake(&client, &recipe(), &options(), &mut |_| {
            seen += 1;
            seen <= stop_at
        })
        .await
        .unwrap();
        assert_eq!(stopped, Baked::Stopped, "stopped before step {stop_at}");
        let (result, _) = run(&client, &options()).await;
        assert!(
            matches!(result, Ok(Baked::Image(_))),
            "{stop_at}: {result:?}"
        );
        let (servers, snapshots) = {
            let state = fake.state();
            (state.servers.len(), state.snapshots.len())
        };
        assert_eq!(servers, 0, "{stop_at}: a server is left");
        assert_eq!(snapshots, 1, "{stop_at}: one image");
        assert_eq!(creates(&mock).await, 1, "{stop_at}: one server created");
    }
}

#[tokio::test]
async fn a_script_that_never_powers_off_is_deleted_at_the_timeout() {
    let state = State {
        bake_hangs: true,
        ..State::default()
    };
    let (_mock, fake, client) = setup(state).await;
    let mut opts = options();
    opts.timeout = SignedDuration::from_millis(300);
    let (result, _) = run(&client, &opts).await;
    let e = result.unwrap_err();
    assert!(
        e.contains("did not power off") || e.contains("took longer"),
        "{e}"
    );
    assert!(e.contains("console") && e.contains("was deleted"), "{e}");
    let state = fake.state();
    assert!(state.servers.is_empty(), "no paid server is left");
    assert!(state.snapshots.is_empty());
}

#[tokio::test]
async fn old_images_of_the_pool_are_pruned_and_others_kept() {
    let labels = |pool: &str, hash: &str| json!({keys::OWNER: "ci", keys::POOL: pool, keys::BAKE: hash, keys::K3S_VERSION: "v1.33.3_k3s1"});
    let image = |id: u64, labels: serde_json::Value, created: &str| {
        json!({"id": id, "type": "snapshot", "status": "available", "name": null,
            "description": "old", "image_size": 3.0, "disk_size": 80, "created": created,
            "created_from": null, "bound_to": null, "os_flavor": "ubuntu", "os_version": null,
            "rapid_deploy": false, "protection": {"delete": false}, "deprecated": null,
            "deleted": null, "labels": labels, "architecture": "x86"})
    };
    let state = State {
        snapshots: vec![
            image(
                11,
                labels("linux", "aaaaaaaaaaaaaaaa"),
                "2026-10-01T00:00:00Z",
            ),
            image(
                12,
                labels("linux", "bbbbbbbbbbbbbbbb"),
                "2026-11-01T00:00:00Z",
            ),
            image(
                13,
                labels("big", "cccccccccccccccc"),
                "2026-09-01T00:00:00Z",
            ),
            image(14, json!({"made": "by-hand"}), "2026-08-01T00:00:00Z"),
        ],
        ..State::default()
    };
    let (_mock, fake, client) = setup(state).await;
    let (result, _) = run(&client, &options()).await;
    let Ok(Baked::Image(new)) = result else {
        panic!("{result:?}")
    };
    let mut left: Vec<u64> = fake
        .state()
        .snapshots
        .iter()
        .filter_map(|i| i["id"].as_u64())
        .collect();
    left.sort_unstable();
    assert_eq!(
        left,
        [12, 13, 14, new],
        "keep 2: the new one and the newest older one"
    );
}

#[tokio::test]
async fn a_pool_server_boots_the_image_made_and_skips_the_install() {
    let (_mock, fake, client) = setup(State::default()).await;
    let (result, _) = run(&client, &options()).await;
    let Ok(Baked::Image(id)) = result else {
        panic!("{result:?}")
    };
    let listed = client.images().await.unwrap();
    let image = listed.items().iter().find(|i| i.id == id).unwrap();
    assert_eq!(image.status, ImageStatus::Available);
    let new = NewServer::new(ServerSpec {
        pool: "linux".into(),
        name: "ci-linux-baked".into(),
        server_type: "ccx33".into(),
        location: "nbg1".into(),
        image: id.to_string(),
        baked_image: Some(id),
        labels: BTreeMap::from([(keys::OWNER.into(), "ci".into())]),
        node_labels: BTreeMap::new(),
    });
    client.create_server(&new).await.unwrap();
    let user_data = fake.state().last_user_data.clone().unwrap();
    assert!(user_data.contains("INSTALL_K3S_SKIP_DOWNLOAD=true"));
    assert!(!user_data.contains("get.k3s.io"));
    // An image that does not exist is refused, as Hetzner does.
    let mut missing = new.clone();
    missing.spec.name = "ci-linux-missing".into();
    missing.spec.image = "999999".into();
    let e = client.create_server(&missing).await.unwrap_err();
    assert!(e.message.contains("image"), "{e:?}");
}

#[test]
fn the_fakes_image_answers_fit_the_spec() {
    let spec = Spec::hetzner();
    let mut state = State::default();
    state.servers.push(autoscaler_fakes::hetzner::server(
        5,
        "ci-bake-x",
        json!({}),
        "off",
    ));
    let fake = FakeHetzner::new(state);
    let auth = format!("Bearer {TOKEN}");
    let call = |method: &str, path: &str, query: &[(&str, &str)], body: &[u8]| {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let (status, answer, _) = fake.answer(method, path, &query, Some(&auth), body);
        if status != 204 {
            spec.check_response(method, path, status, &answer)
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        }
        (status, answer)
    };
    let (status, made) = call(
        "POST",
        "/v1/servers/5/actions/create_image",
        &[],
        br#"{"type": "snapshot", "description": "d", "labels": {"a": "b"}}"#,
    );
    assert_eq!(status, 201);
    let id = made["image"]["id"].as_u64().unwrap();
    // The server is locked while the snapshot is written.
    assert_eq!(call("DELETE", "/v1/servers/5", &[], b"").0, 423);
    let (_, list) = call(
        "GET",
        "/v1/images",
        &[("type", "snapshot"), ("label_selector", "a=b")],
        b"",
    );
    assert_eq!(list["images"][0]["status"], "creating");
    let (_, one) = call("GET", &format!("/v1/images/{id}"), &[], b"");
    assert_eq!(one["image"]["status"], "available");
    let (_, system) = call(
        "GET",
        "/v1/images",
        &[("type", "system"), ("sort", "id:desc")],
        b"",
    );
    assert_eq!(system["images"].as_array().unwrap().len(), 4);
    assert_eq!(call("GET", "/v1/images", &[("type", "iso")], b"").0, 422);
    assert_eq!(call("DELETE", &format!("/v1/images/{id}"), &[], b"").0, 204);
    assert_eq!(call("DELETE", &format!("/v1/images/{id}"), &[], b"").0, 404);
}

#[tokio::test]
async fn a_failure_after_the_server_exists_deletes_it_and_a_new_run_starts_over() {
    let (mock, fake, client) = setup(State::default()).await;
    let failing = fake.clone();
    let result = bake(&client, &recipe(), &options(), &mut |step| {
        if matches!(step, Step::Snapshot { .. }) {
            // The snapshot call meets an outage.
            failing.state().faults.push_back((503, "unavailable"));
        }
        true
    })
    .await;
    let e = result.unwrap_err().to_string();
    assert!(e.contains("503") && e.contains("was deleted"), "{e}");
    let (servers, snapshots) = {
        let state = fake.state();
        (state.servers.len(), state.snapshots.len())
    };
    assert_eq!((servers, snapshots), (0, 0), "no paid server is left");
    let (again, _) = run(&client, &options()).await;
    assert!(matches!(again, Ok(Baked::Image(_))), "{again:?}");
    assert_eq!(creates(&mock).await, 2);
}

#[tokio::test]
async fn a_passing_outage_while_waiting_is_waited_out_and_a_refusal_ends_the_bake() {
    let (_mock, fake, client) = setup(State::default()).await;
    let flaky = fake.clone();
    let result = bake(&client, &recipe(), &options(), &mut |step| {
        if matches!(step, Step::AwaitPowerOff { .. }) {
            // The next looks meet an outage: the bake reads again.
            flaky
                .state()
                .faults
                .extend([(503, "unavailable"), (503, "unavailable")]);
        }
        true
    })
    .await;
    assert!(matches!(result, Ok(Baked::Image(_))), "{result:?}");
    // A refused token is no outage: the bake ends at once and deletes its server.
    let (_mock, fake, client) = setup(State::default()).await;
    let refusing = fake.clone();
    let result = bake(&client, &recipe(), &options(), &mut |step| {
        if matches!(step, Step::AwaitPowerOff { .. }) {
            refusing.state().faults.push_back((401, "unauthorized"));
        }
        true
    })
    .await;
    let e = result.unwrap_err().to_string();
    assert!(
        e.contains("unauthorized") && e.contains("was deleted"),
        "{e}"
    );
    assert!(fake.state().servers.is_empty());
}
