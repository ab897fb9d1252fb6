"""Drop-ins ctr writes itself (``ctrctl update --persist``): a TOML file of a few tables of
plain values, read and written whole, so an administrator's edits to other keys stay."""

from __future__ import annotations

import json
import tomllib
from typing import Any

from supervisor.model import resources as limits
from supervisor.model.spec import Resources


def with_resources(text: str, resources: Resources) -> str:
    """The drop-in ``text`` with every limit ``resources`` sets in its table (``[resources]``,
    the rates in ``[network]``)."""
    document: dict[str, Any] = tomllib.loads(text) if text.strip() else {}
    for key, value in limits.to_json(resources).items():
        table = document.setdefault(limits.BY_NAME[key].table, {})
        if isinstance(value, dict) and isinstance(table.get(key), dict):
            table[key].update(value)  # per device: the others written before stay
        else:
            table[key] = value
    return dumps(document)


def dumps(document: dict[str, Any]) -> str:
    """TOML for tables of scalars, arrays of scalars and inline tables of scalars (what a
    drop-in of ours holds)."""
    lines = ["# Written by ctrctl update --persist; edit or remove as any drop-in."]
    for table, values in document.items():
        lines += ["", f"[{table}]"]
        lines += [f"{key} = {_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):  # per-device limits: { "/dev/vda" = 10485760 }
        return "{ " + ", ".join(f"{json.dumps(k)} = {_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)  # a TOML basic string, integer or float alike
