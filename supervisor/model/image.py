"""The values of a definition about its image beyond the reference itself (whose grammar is
``supervisor.images.reference``'s): the pull policy."""

from __future__ import annotations

from typing import Any, cast

from supervisor.model.spec import PULL_POLICIES, PullPolicy
from supervisor.model.values import one_of

_pull = one_of(*PULL_POLICIES)


def pull_policy(value: Any) -> PullPolicy:
    """``missing`` (pull when not in the store), ``always`` (at every start by hand) or
    ``never``, as podman's ``--pull`` and quadlet's ``Pull=``."""
    return cast(PullPolicy, _pull(value))
