"""Schemathesis' hooks for the fuzz of a live ctrd (tests/e2e/test_api_fuzz.py): some cases name
the test's own containers, so the fuzz reaches past "not found"; a log is not followed (following
a running container's log lasts as long as the container, by design); and a check that no body
carries a traceback."""

from __future__ import annotations

from typing import Any

import schemathesis

NAMES = ("api-web", "api-db")  # the test's definitions


@schemathesis.hook
def map_path_parameters(ctx: Any, path_parameters: dict[str, Any] | None) -> Any:
    if path_parameters and isinstance(path_parameters.get("name"), str):
        pick = len(path_parameters["name"]) % 3  # two cases in three: a container of the test
        if pick < len(NAMES):
            path_parameters["name"] = NAMES[pick]
    return path_parameters


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Every phase's cases, generated or not, pass here before they are sent."""
    if case.query and "follow" in case.query:
        case.query["follow"] = "0"


@schemathesis.check
def no_traceback(ctx: Any, response: Any, case: Any) -> None:
    """No answer carries a Python traceback (ctrd's log keeps those)."""
    if "Traceback (most recent call last)" in response.text:
        raise AssertionError("a traceback in the body")
