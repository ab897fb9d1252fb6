"""``[container] bundle = "/srv/bundles/echo"``: the whole container from an OCI bundle's
config.json (read by supervisor.oci), with what ctrd owns taken from the definition: restart and
stop, the network (a veth and ports in the bundle's new network namespace), autostart, health and
readiness. Anything else the definition sets is a problem: the bundle says it.

What a bundle asks for that ctrd does not do is a problem too, never ignored: hooks and a terminal
are ctr-runtime's (an engine's), and ctrd places its containers' cgroups itself (``ctr/NAME``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from supervisor.config.reader import Table
from supervisor.model.spec import ContainerSpec, Hooks
from supervisor.model.values import absolute_path
from supervisor.oci import config as oci
from supervisor.oci.document import BundleError

# What the definition may say beside a bundle: [container]'s keys and the tables.
OWN_KEYS = ("bundle", "autostart", "notify", "ready_timeout")
OWN_TABLES = ("container", "restart", "network", "health", "logs")


def from_bundle(definition: ContainerSpec, root: Table, container: Table) -> ContainerSpec:
    """The bundle's container with the definition's own settings; problems are reported on
    ``root`` and ``container`` (the spec returned is then only a placeholder)."""
    for key in container.data:
        if key not in OWN_KEYS:
            container.problem(key, "not with bundle: the bundle's config.json says it")
    for table in root.data:
        if table not in OWN_TABLES:
            root.problem(table, "not with [container] bundle: the bundle's config.json says it")
    path = container.value("bundle", absolute_path, "")
    try:
        spec = oci.load(Path(path), name=definition.name).spec
    except BundleError as exc:
        container.problem("bundle", f"{path}: {exc}")
        return definition
    if spec.hooks != Hooks():
        container.problem("bundle", f"{path}: hooks are run by ctr-runtime, not by ctrd")
    if spec.process.terminal:
        container.problem("bundle", f"{path}: process.terminal: ctrd gives no terminal")
    if spec.cgroup.path or spec.cgroup.scope:
        container.problem("bundle", f"{path}: linux.cgroupsPath: ctrd places the cgroups of "
                          "its containers itself (ctr/NAME)")
    network = spec.network
    if root.has("network"):
        if network.mode == "host" or any(kind == "net" for kind, _ in spec.namespaces.paths):
            root.problem("network", f"the bundle {path} keeps the host's network or joins one: "
                         "it has none of its own to set up")
        network = definition.network
    return dataclasses.replace(
        spec, network=network, restart=definition.restart, stop=definition.stop,
        autostart=definition.autostart, health=definition.health, notify=definition.notify,
        ready_timeout=definition.ready_timeout, logs=definition.logs)
