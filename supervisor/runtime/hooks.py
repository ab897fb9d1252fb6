"""Running an OCI bundle's hooks: each program with the container's state as JSON on its stdin,
in order, its own environment only, within its timeout.

Where each kind runs (the runtime spec's lifecycle; ``lifecycle`` and ctr-runtime call this):
``prestart`` and ``createRuntime`` in the runtime's namespaces once the container's exist, before
pivot_root (ctr-runtime ``create``); ``createContainer`` in the container's namespaces, also before
pivot_root, ``startContainer`` there after ``start`` and before the command (both by PID 1);
``poststart`` after ``start`` let the command run, ``poststop`` once it is deleted. A failing
hook of the first four fails the operation; the spec makes the last two warnings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # ctr-runtime start runs poststart hooks and must start fast
    from supervisor.model.spec import Hook


class HookError(RuntimeError):
    """A hook failed: the message names it and says how."""


def run(hooks: Iterable[Hook], kind: str, state: Mapping[str, Any]) -> None:
    """Run ``hooks`` (of ``kind``, for messages) one after the other; the first failure raises."""
    hooks = tuple(hooks)
    if not hooks:
        return
    import subprocess  # with hooks only: most bundles have none, and create should not wait

    document = json.dumps(state).encode()
    for hook in hooks:
        argv = list(hook.args) or [hook.path]
        try:
            done = subprocess.run(argv, executable=hook.path, input=document,
                                  env=dict(hook.env), capture_output=True, timeout=hook.timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise HookError(f"{kind} hook {hook.path}: still running after its timeout of "
                            f"{hook.timeout:g}s: killed") from None
        except OSError as exc:
            raise HookError(f"{kind} hook {hook.path}: {exc.strerror}") from None
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip() or \
                done.stdout.decode(errors="replace").strip()
            how = (f"killed by signal {-done.returncode}" if done.returncode < 0
                   else f"exit status {done.returncode}")
            raise HookError(f"{kind} hook {hook.path} failed: {how}"
                            + (f": {said}" if said else ""))
