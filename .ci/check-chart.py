"""Renders the Helm chart with Helm's own engine (helm-python-sdk binds Helm v4's Go SDK; no
helm binary can be had here) for several sets of values, writes each rendering for
kubernetes-validate, checks what must hold across templates, and feeds each rendered
configuration to the daemon's `check-config`, which must accept it. Values the chart must
refuse (a typo, pools set twice, a missing token) must fail to render.

usage: check-chart.py CHART OUT_DIR DAEMON_BINARY"""

import os
import subprocess
import sys
import tempfile

import helm_python as helm
import yaml

sys.stdout.reconfigure(line_buffering=True)

CHART, OUT, DAEMON = sys.argv[1:4]

TOKENS = {
    "hetznerApiToken": "h" * 64,
    "giteaAdminToken": "g" * 40,
}

SEVERAL_POOLS = """
[autoscaler]
installation = "ci"
max_nodes = 8

[[autoscaler.pools]]
name = "linux"
labels = ["ubuntu-latest"]
server_types = ["cx33", "cx43"]
locations = ["nbg1", "fsn1"]
image = "ubuntu-24.04"
max_nodes = 6

[[autoscaler.pools]]
name = "arm"
labels = ["ubuntu-24.04-arm"]
server_types = ["cax21"]
locations = ["fsn1"]
image = "ubuntu-24.04"
max_nodes = 2
"""

ACCEPTED = {
    "defaults": {"secrets": dict(TOKENS)},
    "several-pools-everything-on": {
        "existingSecret": "my-secret",
        "existingSecretHasWebhookSecret": True,
        "config": SEVERAL_POOLS,
        "leaseName": "",
        "runners": {"enabled": True, "instanceUrl": "https://git.example.org"},
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "dashboard": {"enabled": True},
        "nodeSelector": {"kubernetes.io/arch": "amd64"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "extraVolumes": [{"name": "extra", "secret": {"secretName": "extra"}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": "/etc/extra", "readOnly": True}],
    },
    "static-join-token-one-pool": {
        "joinTokens": "static",
        "secrets": dict(TOKENS, clusterSecret="abcdef.0123456789abcdef",
                        giteaWebhookSecret="w" * 32),
        "pool": {"serverType": "cx33,cx43", "location": "nbg1,fsn1", "idleTimeoutMins": 5,
                 "targetWaitSecs": "90"},
        "pollIntervalSecs": 10,
    },
}

REFUSED = {
    "a typo": ({"secrets": dict(TOKENS), "maxNodez": 3}, "maxNodez"),
    "pools set twice": ({"secrets": dict(TOKENS), "config": SEVERAL_POOLS,
                         "pool": {"serverType": "cx33"}}, "pool.serverType"),
    "no Hetzner token": ({"secrets": {"giteaAdminToken": "g" * 40}}, "hetznerApiToken"),
    "an unknown join mode": ({"secrets": dict(TOKENS), "joinTokens": "shared"}, "joinTokens"),
    "a bad scope": ({"secrets": dict(TOKENS), "gitea": {"url": "https://g", "scope": "team"}},
                    "scope"),
}


def fail(message):
    sys.exit(f"check-chart: {message}")


def docs_of(rendered):
    out = []
    for name, text in sorted(rendered.items()):
        if name.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                out.append(doc)
    return out


def one(docs, kind, name_suffix=""):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)]
    if len(found) != 1:
        fail(f"{len(found)} {kind} objects named *{name_suffix}")
    return found[0]


def check_config(case, docs, values):
    """Runs the daemon's check-config with the Deployment's environment, the mounted secret
    files and the ConfigMap's file: the chart's rendering must be a configuration it accepts."""
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PATH": os.environ.get("PATH", "")}
        secret_docs = [d for d in docs if d["kind"] == "Secret"]
        secret = secret_docs[0]["stringData"] if secret_docs else {
            # An existing Secret: what an operator would have put in it.
            "HETZNER_API_TOKEN": "h" * 64, "GITEA_ADMIN_TOKEN": "g" * 40,
            "GITEA_WEBHOOK_SECRET": "w" * 32,
        }
        for e in container["env"]:
            if "value" not in e:
                env[e["name"]] = "test-" + e["name"].lower()
                continue
            value = str(e["value"])
            if e["name"] == "CONFIG_FILE":
                cm = one(docs, "ConfigMap", "gitea-ci-autoscaler")
                path = os.path.join(tmp, "config.toml")
                with open(path, "w") as f:
                    f.write(cm["data"]["config.toml"])
                value = path
            elif e["name"].endswith("_FILE"):
                key = e["name"][: -len("_FILE")]
                if key not in secret:
                    fail(f"{case}: {e['name']} names {key}, which the Secret lacks")
                path = os.path.join(tmp, key)
                with open(path, "w") as f:
                    f.write(secret[key])
                value = path
            env[e["name"]] = value
        run = subprocess.run([DAEMON, "check-config"], env=env, capture_output=True, text=True)
        if run.returncode != 0:
            fail(f"{case}: the daemon refuses the chart's configuration:\n{run.stderr}")
        return run.stdout


def main():
    os.makedirs(OUT, exist_ok=True)
    with helm.Chart.load(CHART) as chart:
        for case, values in ACCEPTED.items():
            rendered = chart.render(values, name="ci", namespace="ci-autoscaler")
            docs = docs_of(rendered)
            with open(os.path.join(OUT, f"{case}.yaml"), "w") as f:
                yaml.safe_dump_all(docs, f, sort_keys=False)
            deployment = one(docs, "Deployment")
            env = {e["name"]: e.get("value") for e in
                   deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
            for secret in ["HETZNER_API_TOKEN", "GITEA_ADMIN_TOKEN", "GITEA_WEBHOOK_SECRET",
                           "CLUSTER_SECRET"]:
                if secret in env:
                    fail(f"{case}: {secret} is passed as a variable, not a file")
            if "envFrom" in deployment["spec"]["template"]["spec"]["containers"][0]:
                fail(f"{case}: a Secret is passed as environment variables")
            # Only what is set reaches the daemon: its own defaults hold otherwise.
            pool = values.get("pool", {})
            if not pool and any(k in env for k in ["IDLE_TIMEOUT_MINS", "BILLING_WINDOW_MINS"]):
                fail(f"{case}: a per-pool default is forced on the daemon: {env}")
            if values.get("config") and "CONFIG_FILE" not in env:
                fail(f"{case}: config given, CONFIG_FILE not set")
            # The Lease is the release's, and the Role grants only it.
            lease = env["LEASE_NAME"]
            if lease != "ci-gitea-ci-autoscaler":
                fail(f"{case}: LEASE_NAME={lease}")
            role = one(docs, "Role", "-lease")
            named = [r for r in role["rules"] if "resourceNames" in r]
            if not named or named[0]["resourceNames"] != [lease]:
                fail(f"{case}: the lease Role grants {role['rules']}")
            if values.get("runners", {}).get("enabled"):
                ds = one(docs, "DaemonSet", "-runner")
                spec = ds["spec"]["template"]["spec"]
                taint = [a for a in env["K3S_AGENT_ARGS"].split() if a.startswith("--node-taint=")]
                key_value, effect = taint[0][len("--node-taint="):].split(":")
                key, value = key_value.split("=")
                if {"key": key, "operator": "Equal", "value": value, "effect": effect} not in spec["tolerations"]:
                    fail(f"{case}: the runners do not tolerate {taint[0]}: {spec['tolerations']}")
                if ds["metadata"]["namespace"] != "gitea-runners":
                    fail(f"{case}: the runners are not in runnerNamespace")
            for kind in ["ServiceMonitor", "PrometheusRule"]:
                for d in docs:
                    if d["kind"] == kind and d["metadata"]["labels"].get("release") != "kube-prometheus-stack":
                        fail(f"{case}: {kind} lacks the configured labels")
            shown = check_config(case, docs, values)
            print(f"check-chart: {case}: {len(docs)} objects, accepted by check-config "
                  f"({len(shown.splitlines())} lines)")
        for case, (values, named) in REFUSED.items():
            try:
                chart.render(values, name="ci", namespace="ci-autoscaler")
            except Exception as e:  # Helm's error, whichever class the binding gives it
                if named not in str(e):
                    fail(f"{case}: refused, but the message does not name {named}: {e}")
                print(f"check-chart: refused as it should be: {case}")
                continue
            fail(f"{case}: rendered, but must be refused")


if __name__ == "__main__":
    main()
