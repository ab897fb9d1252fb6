"""Reading a config.json member by member: each value through the model's parser, each refusal
naming the member (``process.args[2]: expected a string``).

The runtime spec says a runtime "MUST ignore unknown properties" (config.md, Extensibility), so a
member the spec does not define is not an error: it is reported as a warning naming it (the
command line logs them), never dropped without a word. A member the spec defines but ctr cannot
honour is an error (:meth:`Obj.unsupported`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from supervisor.model.errors import Invalid, Key, describe

T = TypeVar("T")
U = TypeVar("U")


class BundleError(ValueError):
    """A config.json ctr cannot run; the message starts with the member at fault."""


def where(at: Key) -> str:
    """``("process", "args", 2)`` as ``process.args[2]``."""
    text = ""
    for part in at:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def error(exc: Invalid, at: Key = ()) -> BundleError:
    path = where((*at, *exc.at))
    return BundleError(f"{path}: {exc}" if path else str(exc))


class Obj:
    """A JSON object of the config at ``at``; ``warnings`` collects the members it does not know
    (shared by every object of one document)."""

    def __init__(self, value: Any, at: Key, known: tuple[str, ...], warnings: list[str]) -> None:
        if not isinstance(value, dict):
            raise error(Invalid(f"expected an object, got {describe(value)}"), at)
        self.value: dict[str, Any] = value
        self.at = at
        self.warnings = warnings
        for key in value:
            if key not in known:
                warnings.append(f"{where((*at, key))}: not a member of the runtime spec "
                                f"(known here: {', '.join(known)}); ignored as the spec says")

    def has(self, key: str) -> bool:
        """Set to something: JSON null is absent, as Go's encoders write an unset member."""
        return self.value.get(key) is not None

    def get(self, key: str, parse: Callable[[Any], T]) -> T | None:
        if not self.has(key):
            return None
        try:
            return parse(self.value[key])
        except Invalid as exc:
            raise error(exc, (*self.at, key)) from None

    def value_or(self, key: str, parse: Callable[[Any], T], default: U) -> T | U:
        parsed = self.get(key, parse)
        return default if parsed is None else parsed

    def required(self, key: str, parse: Callable[[Any], T]) -> T:
        if not self.has(key):
            raise error(Invalid("missing: the runtime spec requires it"), (*self.at, key))
        parsed = self.get(key, parse)
        assert parsed is not None
        return parsed

    def obj(self, key: str, known: tuple[str, ...]) -> Obj | None:
        return Obj(self.value[key], (*self.at, key), known, self.warnings) if self.has(key) \
            else None

    def objects(self, key: str, known: tuple[str, ...]) -> Iterator[Obj]:
        """The members of the array ``key`` (absent: none), each an object."""
        for index, item in enumerate(self.array(key)):
            yield Obj(item, (*self.at, key, index), known, self.warnings)

    def array(self, key: str) -> list[Any]:
        if not self.has(key):
            return []
        value = self.value[key]
        if not isinstance(value, list):
            raise error(Invalid(f"expected an array, got {describe(value)}"), (*self.at, key))
        return value

    def fail(self, key: str, reason: str) -> BundleError:
        return error(Invalid(reason), (*self.at, key))

    def unsupported(self, key: str, what: str) -> None:
        """A member ctr cannot honour: an error when it asks for anything (not empty, not 0,
        not false), so it is never silently ignored."""
        if self.value.get(key) not in (None, "", 0, False, [], {}):
            raise self.fail(key, f"{what} is not supported by ctr-runtime (see "
                            "`ctr-runtime features`)")
