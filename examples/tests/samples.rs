//! The shipped sample files stay readable and keep showing what they are meant to show.

use autoscaler_core::{Action, NodeState, decide};
use autoscaler_examples::{data_dir, load_policy, load_snapshot};

#[test]
fn the_sample_snapshot_decides_as_documented() {
    let policy = load_policy(&data_dir().join("config.json")).expect("sample configuration");
    let snapshot = load_snapshot(&data_dir().join("snapshot.json")).expect("sample snapshot");
    let plan = decide(&policy, &snapshot);
    let kinds: Vec<&str> = plan.action_list().map(Action::kind).collect();
    assert_eq!(
        kinds,
        [
            "mark_idle",
            "begin_teardown",
            "delete_runner",
            "cordon",
            "mark_node_missing",
            "create_server"
        ]
    );
    let state = |name: &str| {
        plan.nodes
            .iter()
            .find(|n| n.name == name)
            .expect("reported")
            .state
    };
    assert_eq!(state("ci-linux-b2"), NodeState::Busy { jobs: 1 });
    assert_eq!(state("ci-linux-c3"), NodeState::Provisioning);
    assert_eq!(state("ci-linux-e5"), NodeState::StuckProvisioning);
    assert!(
        plan.nodes.iter().all(|n| n.name != "control-plane"),
        "unmanaged nodes are not reported"
    );
    assert_eq!(
        plan.unservable.iter().map(|j| j.id).collect::<Vec<_>>(),
        [9004]
    );
}

#[test]
fn the_sample_configuration_round_trips() {
    let policy = load_policy(&data_dir().join("config.json")).expect("sample configuration");
    let text = serde_json::to_string(policy.config()).expect("serializes");
    let again = autoscaler_core::Config::from_json(&text).expect("reads back");
    assert_eq!(&again, policy.config());
}
