"""Drop-ins ctr writes itself (``ctrctl update --persist``): a TOML file of a few tables of
plain values, read and written whole, so an administrator's edits to other keys stay."""

from __future__ import annotations

import json
import tomllib
from typing import Any

from supervisor.model import resources as limits
from supervisor.model.spec import Resources


def with_resources(text: str, resources: Resources) -> str:
    """The drop-in ``text`` with every limit ``resources`` sets in its ``[resources]``."""
    document: dict[str, Any] = tomllib.loads(text) if text.strip() else {}
    document.setdefault("resources", {}).update(limits.to_json(resources))
    return dumps(document)


def dumps(document: dict[str, Any]) -> str:
    """TOML for tables of scalars and arrays of scalars (what a drop-in of ours holds)."""
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
    return json.dumps(value)  # a TOML basic string, integer or float alike
