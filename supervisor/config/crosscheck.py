"""Checks across definitions: joined namespaces name a valid definition, static addresses are
not claimed twice. A definition failing one moves from the good ones to the errors; the rest
still load.
"""

from __future__ import annotations

from supervisor.config.definition import Definition
from supervisor.config.document import Key
from supervisor.config.errors import DefinitionError, Problem
from supervisor.model.spec import JOIN_PREFIX


def crosscheck(definitions: dict[str, Definition], errors: dict[str, DefinitionError]) -> None:
    """Move every definition of ``definitions`` that fails a check into ``errors``."""
    _check_joins(definitions, errors)
    _check_addresses(definitions, errors)
    _check_joins(definitions, errors)  # a join of a definition that lost its address


def _check_joins(definitions: dict[str, Definition], errors: dict[str, DefinitionError]) -> None:
    """Until nothing changes, since joining a definition that fails fails too."""
    while failed := {name: problems for name, definition in definitions.items()
                     if (problems := _join_problems(definition, definitions, errors))}:
        for name, problems in failed.items():
            errors[name] = DefinitionError.of(problems)
            del definitions[name]


def _join_problems(definition: Definition, definitions: dict[str, Definition],
                   errors: dict[str, DefinitionError]) -> list[Problem]:
    problems = []
    for kind, other in definition.spec.namespaces.joined().items():
        key = _join_key(definition, kind)
        if other in errors:
            problems.append(definition.problem(key, f"definition {other!r} is not valid"))
        elif other not in definitions:
            problems.append(definition.problem(key, f"no definition named {other!r}"))
        elif cycle := _cycle(definition.name, other, definitions):
            problems.append(definition.problem(
                key, f"joined namespaces form a cycle: {' -> '.join(cycle)}"))
    return problems


def _join_key(definition: Definition, kind: str) -> Key:
    """Where the join was written: ``network.mode`` or ``namespaces.KIND``."""
    mode = definition.data.get("network", {}).get("mode")
    if kind == "net" and isinstance(mode, str) and mode.startswith(JOIN_PREFIX):
        return ("network", "mode")
    return ("namespaces", kind)


def _cycle(start: str, other: str, definitions: dict[str, Definition]) -> list[str] | None:
    """The chain of joins from ``start`` through ``other`` back to ``start``, if there is one:
    such containers could never start, each waiting for the other."""
    stack, seen = [[start, other]], {other}
    while stack:
        chain = stack.pop()
        if chain[-1] == start:
            return chain
        following = definitions.get(chain[-1])
        for name in following.spec.namespaces.joined().values() if following else ():
            if name == start or name not in seen:
                seen.add(name)
                stack.append([*chain, name])
    return None


def _check_addresses(definitions: dict[str, Definition],
                     errors: dict[str, DefinitionError]) -> None:
    """The first definition by name keeps a static address; later ones claiming it fail."""
    owners: dict[str, str] = {}
    for name in sorted(definitions):
        address = definitions[name].spec.network.address
        if address is None:
            continue
        ip = address.split("/")[0]
        if ip in owners:
            errors[name] = DefinitionError.of([definitions[name].problem(
                ("network", "address"), f"{ip} is also the address of definition "
                f"{owners[ip]!r}")])
            del definitions[name]
        else:
            owners[ip] = name
