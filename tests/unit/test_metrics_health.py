"""``ctr_container_health``: one-hot by status for each container whose run has a health check,
as Prometheus parses it from ctrd's exposition (test_metrics.py's world and scrape)."""

from __future__ import annotations

from dataclasses import replace

from supervisor.daemon.states import State
from tests.unit.test_metrics import World, tree, world

__all__ = ["tree", "world"]  # test_metrics.py's fixtures: a fake cgroup tree of each version


def test_health_is_one_hot_by_status_and_absent_without_a_check(world: World) -> None:
    for name, status in (("hc-web", "healthy"), ("hc-db", "unhealthy"), ("hc-new", "starting")):
        world.seen[name] = replace(world.unit(name, State.RUNNING), health=status)
    world.unit("hc-plain", State.RUNNING)
    scrape = world.scrape()
    assert scrape.types["ctr_container_health"] == "gauge"
    for name, now in (("hc-web", "healthy"), ("hc-db", "unhealthy"), ("hc-new", "starting")):
        assert {status: scrape.get("ctr_container_health", name=name, status=status)
                for status in ("starting", "healthy", "unhealthy")} == {
            status: (1 if status == now else 0) for status in ("starting", "healthy",
                                                               "unhealthy")}
    assert not [s for s in scrape.series("ctr_container_health") if s["name"] == "hc-plain"]
