"""The official hcloud Python library against the Hetzner fake: the flows the autoscaler relies
on, driven by a client this project did not write. Paging by label selector, get by name,
create (with its action), relabel, delete, snapshots (create_image, list, delete), and the errors the real API gives (invalid labels,
unknown server type, capacity, not found, bad token) must all come back as that library
expects them.

usage: HETZNER_URL=… HETZNER_TOKEN=… hcloud-flows.py"""

import os
import sys

from hcloud import APIException, Client
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.ssh_keys import SSHKey

URL, TOKEN = os.environ["HETZNER_URL"], os.environ["HETZNER_TOKEN"]
client = Client(token=TOKEN, api_endpoint=URL, poll_interval=0.1)
checks = 0


def check(condition, what):
    global checks
    if not condition:
        sys.exit(f"hcloud-flows: {what}")
    checks += 1


def refused(code, what, call):
    try:
        call()
    except APIException as e:
        check(e.code == code, f"{what}: expected {code}, got {e.code} ({e.message})")
        return
    sys.exit(f"hcloud-flows: {what}: accepted, must be refused with {code}")


OWNER = "gitea-ci-autoscaler/owner"
ours = client.servers.get_all(label_selector=f"{OWNER}=ci")
check(sorted(s.name for s in ours) == ["ci-arm-b", "ci-linux-a"], f"by owner: {[s.name for s in ours]}")
check([s.name for s in client.servers.get_all(label_selector=f"{OWNER}=ci,gitea-ci-autoscaler/pool in (arm)")]
      == ["ci-arm-b"], "a set-based selector")
check([s.name for s in client.servers.get_all(label_selector=f"!{OWNER}")] == [], "an absence selector")
check(client.servers.get_by_name("other-c").name == "other-c", "get_by_name")
check(client.servers.get_by_name("nope") is None, "get_by_name of nothing")

# Create a few, then page through them 2 at a time.
created = []
for i in range(5):
    r = client.servers.create(
        name=f"ci-linux-p{i}",
        server_type=ServerType(name="cx33"),
        image=Image(name="ubuntu-24.04"),
        location=Location(name="nbg1"),
        ssh_keys=[SSHKey(name="ops")],
        labels={OWNER: "ci", "gitea-ci-autoscaler/pool": "linux"},
        user_data="#cloud-config\n",
    )
    check(r.action.command == "create_server", "a create answers with its action")
    r.action.wait_until_finished(max_retries=20)
    check(client.actions.get_by_id(r.action.id).status == "success", "the create action finishes")
    created.append(r.server)
paged = client.servers.get_list(label_selector=f"{OWNER}=ci", per_page=2, page=2)
check(len(paged.servers) == 2 and paged.meta.pagination.total_entries == 7,
      f"page 2 of 7 by 2: {len(paged.servers)}, {paged.meta.pagination.total_entries}")
check(len(client.servers.get_all(label_selector=f"{OWNER}=ci")) == 7, "get_all pages through all 7")
check([s.name for s in client.servers.get_all(name="ci-linux-p3")] == ["ci-linux-p3"], "the name filter")
check(sorted(s.name for s in client.servers.get_all(status=["running"])) == ["ci-arm-b", "ci-linux-a", "other-c"],
      "the status filter")

# Relabel, then delete.
server = created[0]
client.servers.update(server, labels={OWNER: "ci", "gitea-ci-autoscaler/teardown": "2026-11-25T10-00-00Z"})
check(client.servers.get_by_id(server.id).labels.get("gitea-ci-autoscaler/teardown") == "2026-11-25T10-00-00Z",
      "a relabel is kept")
action = client.servers.delete(server)
check(action.command == "delete_server", "a delete answers with its action")
refused("not_found", "the deleted server", lambda: client.servers.get_by_id(server.id))

# A snapshot (what `image bake` does): the server is locked while it is written, the image is
# listed by type and label, becomes available, boots a server, and is deleted.
source = created[1]
made = client.servers.create_image(source, description="bake", type="snapshot",
                                   labels={OWNER: "ci", "gitea-ci-autoscaler/bake": "0123456789abcdef"})
check(made.action.command == "create_image" and made.image.status == "creating",
      f"create_image answers with the image and its action: {made.image.status}")
refused("locked", "deleting a server being snapshotted", lambda: client.servers.delete(source))
listed = client.images.get_all(type="snapshot", label_selector=f"{OWNER}=ci")
check([i.id for i in listed] == [made.image.id], f"snapshots by label: {[i.id for i in listed]}")
check(client.images.get_by_id(made.image.id).status == "available", "the snapshot becomes available")
check(client.images.get_all(type="snapshot", label_selector=f"!{OWNER}") == [], "an absence selector on images")
check(all(i.type == "system" for i in client.images.get_all(type="system")), "the type filter")
booted = client.servers.create(name="ci-linux-baked", server_type=ServerType(name="cx33"),
                               image=Image(id=made.image.id), location=Location(name="nbg1"),
                               labels={OWNER: "ci"})
check(booted.server.name == "ci-linux-baked", "a server boots the snapshot")
check(client.images.delete(made.image), "the snapshot is deleted")
refused("not_found", "the deleted snapshot", lambda: client.images.get_by_id(made.image.id))

# The errors.
refused("invalid_input", "a label with a colon",
        lambda: client.servers.update(created[1], labels={"a:b": "x"}))
refused("invalid_input", "an unknown server type", lambda: client.servers.create(
    name="ci-x", server_type=ServerType(name="cx999"), image=Image(name="ubuntu-24.04"),
    location=Location(name="nbg1")))
refused("resource_unavailable", "a location the type is not available in", lambda: client.servers.create(
    name="ci-y", server_type=ServerType(name="cx33"), image=Image(name="ubuntu-24.04"),
    location=Location(name="fsn1")))
refused("uniqueness_error", "a name in use", lambda: client.servers.create(
    name="ci-linux-p1", server_type=ServerType(name="cx33"), image=Image(name="ubuntu-24.04"),
    location=Location(name="nbg1")))
bad = Client(token="wrong", api_endpoint=URL)
refused("unauthorized", "a wrong token", lambda: bad.servers.get_all())
types = {t.name for t in client.server_types.get_all()}
check({"cx33", "ccx33"} <= types, f"server types: {types}")
check([k.name for k in client.ssh_keys.get_all()] == ["ops"], "ssh keys")
print(f"hcloud-flows: {checks} checks passed")
