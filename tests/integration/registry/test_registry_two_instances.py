"""Two registry instances on one Kafka: one leader takes every write, the other forwards; reads agree."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.integration.registry.registry_procs import RegistryCluster, observe, wait_for

pytestmark = pytest.mark.kafka


def avro(n: int) -> str:
    fields = [{"name": f"f{i}", "type": "long", "default": 0} for i in range(n)]
    return json.dumps({"type": "record", "name": "Usage", "namespace": "accord.ha", "fields": fields})


def test_writes_through_either_instance_land_once(registry_cluster: RegistryCluster) -> None:
    a = registry_cluster.start()
    b = registry_cluster.start()
    urls = [a.url, b.url]

    def settled() -> bool:
        views = [httpx.get(u + "/_leader").json() for u in urls]
        leading = [u for u, view in zip(urls, views, strict=True) if view["leader"]]
        return (
            all(view["joined"] for view in views)
            and len(leading) == 1
            and all(view["leader_url"] == leading[0] for view in views)
        )

    # both have joined the group, exactly one leads, and both name it
    wait_for(settled, "both joined, exactly one leader, named by both")
    leader_url = next(u for u in urls if httpx.get(u + "/_leader").json()["leader"])
    follower_url = next(u for u in urls if u != leader_url)

    def register(i: int) -> tuple[int, dict[str, int]]:
        response = httpx.post(urls[i % 2] + "/subjects/usage-value/versions", json={"schema": avro(1)}, timeout=30)
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(register, range(16)))
    assert {status for status, _ in answers} == {200}
    assert len({body["id"] for _, body in answers}) == 1

    # a write through the follower is readable through the follower at once (it waits for its own copy)
    created = httpx.post(follower_url + "/subjects/usage-value/versions", json={"schema": avro(2)}, timeout=30)
    assert created.status_code == 200, created.text
    assert httpx.get(follower_url + "/subjects/usage-value/versions").json() == [1, 2]
    config = httpx.put(follower_url + "/config/usage-value", json={"compatibility": "FULL"}, timeout=30)
    assert config.json() == {"compatibility": "FULL"}
    bad = httpx.post(follower_url + "/subjects/usage-value/versions", json={"schema": '{"type":"int"'}, timeout=30)
    assert bad.status_code == 422 and bad.json()["error_code"] == 42201

    wait_for(lambda: observe(a.url) == observe(b.url), "both instances show the same state")
    state = observe(a.url)
    assert state["/subjects/usage-value/versions?{}"] == (200, [1, 2])
    assert state["/config/usage-value?{}"] == (200, {"compatibilityLevel": "FULL"})


def test_a_non_eligible_instance_forwards_to_the_leader(registry_cluster: RegistryCluster) -> None:
    leader = registry_cluster.start()
    reader = registry_cluster.start(ACCORD_REGISTRY_LEADER_ELIGIBLE="false")
    wait_for(lambda: httpx.get(reader.url + "/_leader").json()["leader_url"] == leader.url, "reader knows leader")
    created = httpx.post(reader.url + "/subjects/r-value/versions", json={"schema": avro(1)}, timeout=30)
    assert created.status_code == 200
    assert httpx.get(leader.url + f"/schemas/ids/{created.json()['id']}").status_code == 200
    leader.kill()
    refused = httpx.post(reader.url + "/subjects/r-value/versions", json={"schema": avro(2)}, timeout=60)
    assert refused.status_code == 503 and refused.json()["error_code"] == 50003
    assert "leader" in refused.json()["message"]
    assert httpx.get(reader.url + "/subjects/r-value/versions").json() == [1]  # reads still served


def test_the_other_instance_takes_over_when_the_leader_dies(registry_cluster: RegistryCluster) -> None:
    a = registry_cluster.start()
    wait_for(lambda: httpx.get(a.url + "/_leader").json()["leader"], "first instance leads")
    b = registry_cluster.start()
    wait_for(lambda: httpx.get(b.url + "/_leader").json()["joined"], "second instance joined")
    first = httpx.post(b.url + "/subjects/f-value/versions", json={"schema": avro(1)}, timeout=30)
    assert first.status_code == 200
    leader, other = (a, b) if httpx.get(a.url + "/_leader").json()["leader"] else (b, a)

    leader.kill()  # no goodbye to the group: the other instance leads once the dead one's session expires
    wait_for(lambda: httpx.get(other.url + "/_leader").json()["leader"], "the survivor leads", timeout=60)
    second = httpx.post(other.url + "/subjects/f-value/versions", json={"schema": avro(2)}, timeout=30)
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"] + 1
    assert httpx.get(other.url + "/subjects/f-value/versions").json() == [1, 2]
