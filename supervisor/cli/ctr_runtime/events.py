"""``events`` and ``update``: a running container's cgroup read (runc's JSON events: ``stats``
every interval, ``oom`` when the kernel's OOM killer struck) and its limits changed live, from
``linux.resources`` JSON or runc's flags, through the same parser as a config.json's."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from supervisor.cli.ctr_runtime.lifecycle import cgroup_of
from supervisor.cli.ctr_runtime.log import Log
from supervisor.model.errors import Invalid
from supervisor.model.units import duration
from supervisor.oci import resources
from supervisor.oci.document import BundleError, Obj
from supervisor.oci.state import Record, StateError, container_id
from supervisor.runtime.cgroups import CgroupStats

_NS = 1_000_000_000


def stats_event(cid: str, stats: CgroupStats) -> dict[str, Any]:
    """runc's ``stats`` event of one reading."""
    return {"type": "stats", "id": cid, "data": {
        "cpu": {"usage": {"total": round(stats.cpu_usage_seconds * _NS),
                          "user": round(stats.cpu_user_seconds * _NS),
                          "kernel": round(stats.cpu_system_seconds * _NS)},
                "throttling": {"periods": stats.cpu_periods,
                               "throttledPeriods": stats.cpu_throttled_periods}},
        "memory": {"usage": {"usage": stats.memory_usage_bytes,
                             "limit": stats.memory_limit_bytes or 0},
                   "cache": stats.memory_cache,
                   "raw": {"rss": stats.memory_rss,
                           "working_set": stats.memory_working_set_bytes}},
        "pids": {"current": stats.pids_current},
    }}


def _live(args: argparse.Namespace) -> Record:
    root = Path(args.root)
    record = Record.load(root, container_id(args.id))
    status = record.status(root)
    if status not in ("running", "paused", "created"):
        raise StateError(f'container "{record.id}": container not running (it is {status})')
    return record


def events(args: argparse.Namespace, log: Log) -> int:
    record = _live(args)
    cgroup = cgroup_of(record)
    if args.stats:
        print(json.dumps(stats_event(record.id, cgroup.stats())))
        return 0
    try:
        interval = duration(args.interval)
    except Invalid as exc:
        raise StateError(f"--interval: {exc}") from None
    root, kills = Path(args.root), cgroup.stats().oom_kills
    while record.status(root) != "stopped":
        stats = cgroup.stats()
        if stats.oom_kills > kills:
            print(json.dumps({"type": "oom", "id": record.id}))
            kills = stats.oom_kills
        print(json.dumps(stats_event(record.id, stats)), flush=True)
        time.sleep(interval)
    return 0


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """runc update's flags as the ``linux.resources`` members they stand for."""
    document: dict[str, Any] = {}

    def number(text: str | None) -> int | None:
        if text is None:
            return None
        try:
            return int(text)
        except ValueError:
            raise StateError(f"not a number: {text!r}") from None

    for key, member, value in (("memory", "limit", number(args.memory)),
                               ("cpu", "quota", number(args.cpu_quota)),
                               ("cpu", "period", number(args.cpu_period)),
                               ("cpu", "shares", number(args.cpu_share)),
                               ("cpu", "cpus", args.cpuset_cpus),
                               ("pids", "limit", number(args.pids_limit))):
        if value is not None:
            document.setdefault(key, {})[member] = value
    return document


def update(args: argparse.Namespace, log: Log) -> int:
    record = _live(args)
    document: dict[str, Any] = {}
    if args.resources:
        text = sys.stdin.read() if args.resources == "-" else Path(args.resources).read_text()
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise StateError(f"--resources: not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise StateError("--resources: expected a linux.resources object")
    for key, members in _flags(args).items():
        document.setdefault(key, {}).update(members)
    warnings: list[str] = []
    try:
        limits = resources.parse(Obj(document, ("resources",), resources.KNOWN, warnings))
    except BundleError as exc:
        raise StateError(str(exc)) from None
    for warning in warnings:
        log.warning(warning)
    if limits.device_rules is not None:
        raise StateError("resources.devices: the device allow-list is set once, at create")
    cgroup = cgroup_of(record)
    cgroup.apply(limits.resources)
    cgroup.write_files(limits.files)
    return 0
