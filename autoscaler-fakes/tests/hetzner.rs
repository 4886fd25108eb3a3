//! The Hetzner fake behaves as Hetzner does where a client could tell: the label and selector
//! grammar, the list filters, create validated against its catalogue, actions, a bucket that
//! refills, and no request that panics it.

use std::time::{Duration, Instant};

use autoscaler_fakes::hetzner::{FakeHetzner, State, TOKEN, server};
use serde_json::{Value, json};

fn auth() -> String {
    format!("Bearer {TOKEN}")
}

fn call(
    fake: &FakeHetzner,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Value,
) -> (u16, Value) {
    let query: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let (status, body, _) = fake.answer(method, path, &query, Some(auth().as_str()), &body);
    (status, body)
}

fn create(name: &str) -> Value {
    json!({"name": name, "server_type": "cx33", "location": "nbg1", "image": "ubuntu-24.04",
           "labels": {"gitea-ci-autoscaler/owner": "ci", "pool": "linux"}, "ssh_keys": ["ops"]})
}

fn with_servers() -> FakeHetzner {
    let fake = FakeHetzner::new(State::default());
    {
        let mut s = fake.state();
        for (id, name, labels, status) in [
            (
                1,
                "b-two",
                json!({"owner": "ci", "pool": "linux"}),
                "running",
            ),
            (
                2,
                "a-one",
                json!({"owner": "ci", "pool": "arm"}),
                "initializing",
            ),
            (3, "c-three", json!({"owner": "other"}), "running"),
        ] {
            s.servers.push(server(id, name, labels, status));
        }
    }
    fake
}

fn names(body: &Value) -> Vec<String> {
    body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn labels_follow_hetzners_grammar_on_create_and_update() {
    let fake = FakeHetzner::new(State::default());
    for labels in [
        json!({"a:b": "x"}),
        json!({"ok": "v".repeat(64)}),
        json!({"k".repeat(64): "v"}),
        json!({"-lead": "v"}),
        json!({"hetzner.cloud/x": "v"}),
        json!({"ok": "trailing-"}),
        json!({"ok": 3}),
        json!(["not", "an", "object"]),
    ] {
        let mut req = create("ci-bad-labels");
        req["labels"] = labels.clone();
        let (status, body) = call(&fake, "POST", "/v1/servers", &[], req);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("invalid_input")),
            "{labels}"
        );
    }
    let (status, body) = call(&fake, "POST", "/v1/servers", &[], create("ci-good"));
    assert_eq!(status, 201, "{body}");
    let id = body["server"]["id"].as_u64().unwrap();
    // A relabel with a bad key is refused and changes nothing.
    let path = format!("/v1/servers/{id}");
    let (status, _) = call(
        &fake,
        "PUT",
        &path,
        &[],
        json!({"labels": {"bad key": "x"}}),
    );
    assert_eq!(status, 422);
    let (_, now) = call(&fake, "GET", &path, &[], Value::Null);
    assert_eq!(now["server"]["labels"]["pool"], "linux");
    let (status, _) = call(
        &fake,
        "PUT",
        &path,
        &[],
        json!({"labels": {"example.com/empty": ""}}),
    );
    assert_eq!(status, 200, "an empty value and a prefixed key are valid");
}

#[test]
fn the_list_filters_by_name_status_selector_and_sorts() {
    let fake = with_servers();
    let list = |query: &[(&str, &str)]| {
        let (status, body) = call(&fake, "GET", "/v1/servers", query, Value::Null);
        assert_eq!(status, 200, "{query:?}: {body}");
        names(&body)
    };
    assert_eq!(list(&[("name", "a-one")]), ["a-one"]);
    assert_eq!(list(&[("name", "nope")]), Vec::<String>::new());
    assert_eq!(list(&[("status", "running")]), ["b-two", "c-three"]);
    assert_eq!(
        list(&[("status", "running"), ("status", "initializing")]),
        ["b-two", "a-one", "c-three"]
    );
    assert_eq!(list(&[("sort", "name")]), ["a-one", "b-two", "c-three"]);
    assert_eq!(
        list(&[("sort", "name:desc")]),
        ["c-three", "b-two", "a-one"]
    );
    assert_eq!(list(&[("sort", "id:desc")]), ["c-three", "a-one", "b-two"]);
    assert_eq!(list(&[("label_selector", "owner=ci,pool!=arm")]), ["b-two"]);
    assert_eq!(list(&[("label_selector", "pool in (arm,x86)")]), ["a-one"]);
    assert_eq!(list(&[("label_selector", "owner notin (ci)")]), ["c-three"]);
    assert_eq!(list(&[("label_selector", "!pool")]), ["c-three"]);
    assert_eq!(list(&[("label_selector", "pool")]), ["b-two", "a-one"]);
    for bad in [
        ("sort", "size"),
        ("sort", "name:sideways"),
        ("status", "sleeping"),
        ("label_selector", "pool in arm"),
        ("label_selector", "bad key=1"),
    ] {
        let (status, body) = call(&fake, "GET", "/v1/servers", &[bad], Value::Null);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("invalid_input")),
            "{bad:?}"
        );
    }
}

#[test]
fn a_create_is_checked_against_the_catalogue() {
    let fake = FakeHetzner::new(State::default());
    for (field, value) in [
        ("server_type", json!("cx999")),
        ("location", json!("mars1")),
        ("image", json!("windows-95")),
        ("ssh_keys", json!(["nobody"])),
    ] {
        let mut req = create(&format!("ci-{field}").replace('_', "-"));
        req[field] = value;
        let (status, body) = call(&fake, "POST", "/v1/servers", &[], req);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("invalid_input")),
            "{field}: {body}"
        );
    }
    // fsn1 is a location the catalogue marks unavailable for every type.
    let mut req = create("ci-fsn");
    req["location"] = json!("fsn1");
    let (status, body) = call(&fake, "POST", "/v1/servers", &[], req);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (412, Some("resource_unavailable"))
    );
    // An SSH key by id, and the image by name, are fine.
    let mut req = create("ci-by-id");
    req["ssh_keys"] = json!([1]);
    assert_eq!(call(&fake, "POST", "/v1/servers", &[], req).0, 201);
    assert!(
        fake.state().servers.len() == 1,
        "nothing refused was created"
    );
}

#[test]
fn actions_run_then_succeed_and_are_listed_per_server() {
    let fake = FakeHetzner::new(State::default());
    let (_, created) = call(&fake, "POST", "/v1/servers", &[], create("ci-act"));
    let id = created["server"]["id"].as_u64().unwrap();
    let action = created["action"]["id"].as_u64().unwrap();
    assert_eq!(created["action"]["command"], "create_server");
    let path = format!("/v1/actions/{action}");
    let (status, first) = call(&fake, "GET", &path, &[], Value::Null);
    assert_eq!(
        (status, first["action"]["status"].as_str()),
        (200, Some("running"))
    );
    let (_, second) = call(&fake, "GET", &path, &[], Value::Null);
    assert_eq!(second["action"]["status"], "success");
    assert_eq!(second["action"]["progress"], 100);
    let (_, listed) = call(
        &fake,
        "GET",
        &format!("/v1/servers/{id}/actions"),
        &[],
        Value::Null,
    );
    let commands: Vec<&str> = listed["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, ["create_server", "start_server"]);
    let wanted = action.to_string();
    let (_, by_id) = call(
        &fake,
        "GET",
        "/v1/actions",
        &[("id", wanted.as_str())],
        Value::Null,
    );
    assert_eq!(by_id["actions"][0]["id"], action);
    assert_eq!(
        call(&fake, "GET", "/v1/actions/999999", &[], Value::Null).0,
        404
    );
    let (_, deleted) = call(
        &fake,
        "DELETE",
        &format!("/v1/servers/{id}"),
        &[],
        Value::Null,
    );
    assert_eq!(deleted["action"]["command"], "delete_server");
}

#[test]
fn the_bucket_refills_one_request_a_second() {
    let fake = FakeHetzner::new(State {
        remaining: 0,
        ..State::default()
    });
    // Empty: refused.
    assert_eq!(call(&fake, "GET", "/v1/servers", &[], Value::Null).0, 429);
    // Three seconds later, three requests regained.
    fake.state().refilled = Some(Instant::now() - Duration::from_secs(3));
    let (status, _, left) = fake.answer("GET", "/v1/servers", &[], Some(auth().as_str()), &[]);
    assert_eq!((status, left), (200, 2));
    // Never above the hourly limit.
    fake.state().refilled = Some(Instant::now() - Duration::from_secs(100_000));
    let (_, _, left) = fake.answer("GET", "/v1/servers", &[], Some(auth().as_str()), &[]);
    assert_eq!(left, 3599);
}

#[test]
fn no_request_panics_it_and_a_panic_elsewhere_does_not_poison_it() {
    let fake = with_servers();
    for (method, path, query, body) in [
        (
            "GET",
            "/v1/servers",
            vec![("page", "18446744073709551615"), ("per_page", "50")],
            Value::Null,
        ),
        (
            "GET",
            "/v1/servers",
            vec![("page", "99999999999999999999999")],
            Value::Null,
        ),
        ("GET", "/v1/servers", vec![("per_page", "0")], Value::Null),
        (
            "GET",
            "/v1/servers/18446744073709551615",
            vec![],
            Value::Null,
        ),
        ("GET", "/v1/servers/-1", vec![], Value::Null),
        ("GET", "/v1/actions/abc", vec![], Value::Null),
        (
            "GET",
            "/v1/servers",
            vec![("label_selector", "((((,,,))")],
            Value::Null,
        ),
        ("POST", "/v1/servers", vec![], json!("not an object")),
        (
            "POST",
            "/v1/servers",
            vec![],
            json!({"name": 7, "labels": null}),
        ),
        ("PUT", "/v1/servers/1", vec![], json!([1, 2])),
        ("DELETE", "/v1/servers/abc", vec![], Value::Null),
        ("PATCH", "/v1/servers", vec![], Value::Null),
    ] {
        let (status, _) = call(&fake, method, path, &query, body.clone());
        assert!(
            (200..600).contains(&status),
            "{method} {path} {query:?} {body}"
        );
    }
    let (status, _, _) = fake.answer(
        "PUT",
        "/v1/servers/1",
        &[],
        Some(auth().as_str()),
        b"{not json",
    );
    assert_eq!(status, 400);
    // A test thread panicking while it holds the state leaves the fake usable.
    let held = fake.clone();
    let _ = std::thread::spawn(move || {
        let _guard = held.state();
        panic!("a test failed mid-update");
    })
    .join();
    assert_eq!(call(&fake, "GET", "/v1/servers", &[], Value::Null).0, 200);
    assert_eq!(fake.server_labels().len(), 3);
}
