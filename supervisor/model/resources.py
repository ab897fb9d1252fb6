"""The limits of :class:`~supervisor.model.spec.Resources`, each with its one parser, and their
form in JSON (API views, ctrd's records).

``FIELDS`` is the one list of limits: the TOML table ``[resources]`` (``[network]`` for the
veth's rates), the API's ``PATCH /v1/containers/NAME/resources``, ``ctrctl update`` and ``ctrctl
run`` flags all read it. Importing it does not load the spec (``ctrctl run`` declares these
flags and sends their values as typed, to ctrd's parsers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supervisor.model import iolimits
from supervisor.model.errors import Invalid
from supervisor.model.units import cpu_list, cpu_quota, rate, rate_text, size
from supervisor.model.values import Parse, integer, unlimited

if TYPE_CHECKING:
    from supervisor.model.spec import Resources


def memory(value: Any) -> int:
    """A size of memory: more than nothing."""
    amount = size(value)
    if amount <= 0:
        raise Invalid(f"must be more than 0 bytes, got {value!r}")
    return amount


@dataclass(frozen=True)
class Limit:
    """One limit: its parser, how to write it as JSON, what ``--help`` says of it, and the JSON
    types its parser takes (for the API's OpenAPI document)."""

    name: str
    parse: Parse[Any]
    metavar: str
    help: str
    to_json: Callable[[Any], Any] = lambda value: value
    json_types: tuple[str, ...] = ("string", "integer")  # a size or a count, or "max"
    table: str = "resources"  # where a definition writes it: [resources], or [network] (rates)


def _per_device(name: str, parse: Parse[int], unit: str, what: str, example: str) -> Limit:
    return Limit(name, iolimits.per_device(parse), f"DEV:{unit}",
                 f"{what} per second on a block device, e.g. /dev/vda:{example} (several: "
                 "comma-separated; DEV:max lifts one)", iolimits.to_json,
                 json_types=("object", "string", "array"))


FIELDS = (
    Limit("memory_max", unlimited(memory), "SIZE", "memory limit, e.g. 256M (max: none)"),
    Limit("cpu_quota", unlimited(cpu_quota), "PCT", "CPU time, of one CPU: 50%, 150%",
          json_types=("string", "number")),
    Limit("cpu_weight", integer(1, 10000), "W", "share of CPU time under contention, 1..10000"),
    Limit("cpuset_cpus", cpu_list, "LIST", "CPUs the container may run on, e.g. 0-2,4", str,
          json_types=("string",)),
    Limit("pids_max", unlimited(integer(1, 2**31 - 1)), "N", "most processes (max: none)"),
    Limit("memory_high", unlimited(memory), "SIZE", "above it the container is throttled and "
          "its memory reclaimed, e.g. 200M (cgroup v2)"),
    Limit("memory_swap_max", unlimited(size), "SIZE", "swap it may use besides memory_max, "
          "e.g. 1G (0: none)"),
    _per_device("io_read_bps", iolimits.bytes_per_second, "BYTES", "bytes read", "10M"),
    _per_device("io_write_bps", iolimits.bytes_per_second, "BYTES", "bytes written", "10M"),
    _per_device("io_read_iops", iolimits.iops, "OPS", "reads", "1000"),
    _per_device("io_write_iops", iolimits.iops, "OPS", "writes", "1000"),
    Limit("egress_rate", unlimited(rate), "RATE", "bandwidth out of the container on its veth, "
          "e.g. 10mbit, or 1M (bytes per second)", rate_text, table="network"),
    Limit("ingress_rate", unlimited(rate), "RATE", "bandwidth into the container on its veth, "
          "e.g. 10mbit, or 1M (bytes per second)", rate_text, table="network"),
)
BY_NAME = {limit.name: limit for limit in FIELDS}  # in the order of Resources' fields


def parse(values: Mapping[str, Any]) -> Resources:
    """``{"memory_max": "256M", ...}`` -> Resources; a bad or unknown key raises naming it."""
    from supervisor.model.spec import Resources

    parsed = {}
    for key, value in values.items():
        limit = BY_NAME.get(key)
        if limit is None:
            raise Invalid(f"unknown limit (known: {', '.join(BY_NAME)})", at=(key,))
        try:
            parsed[key] = limit.parse(value)
        except Invalid as e:
            raise Invalid(str(e), at=(key, *e.at)) from None
    return Resources(**parsed)


def to_json(resources: Resources) -> dict[str, Any]:
    """The limits that are set, as JSON values the parsers read back."""
    return {limit.name: limit.to_json(value) for limit in FIELDS
            if (value := getattr(resources, limit.name)) is not None}

