"""Schemathesis against a live ctrd: every operation of its own OpenAPI document fuzzed over the
TCP listener with the token, two real containers among the names. No 5xx, no traceback in a
body, every answer as the document says (status, content type, schema), no request left hanging,
and ctrd alive at the end, its log without a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.e2e.conftest import Daemon, Env
from tests.e2e.test_api_lock import listen_on_tcp

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "no_traceback")
DEFINITION = ('[container]\nimage = "busybox"\ncommand = ["/bin/sh", "-c", "echo up; sleep 600"]\n'
              '[network]\nmode = "none"\n[restart]\nstop_timeout = "100ms"\n')


def test_schemathesis_finds_no_fault_in_a_live_ctrd(ctrd: Daemon, env: Env,
                                                     tmp_path: Path) -> None:
    port = listen_on_tcp(ctrd)
    for name in ("api-web", "api-db"):
        ctrd.define(name, DEFINITION)
    ctrd.start()
    ctrd.ctl("start", "api-web")
    token = (env.state / "api-token").read_text().strip()
    report = tmp_path / "schemathesis.json"
    run = subprocess.run(
        [str(SCHEMATHESIS), "run", f"http://127.0.0.1:{port}/v1/openapi.json",
         "--header", f"Authorization: Bearer {token}", "--checks", ",".join(CHECKS),
         "--phases", "examples,coverage,fuzzing", "--max-examples", "40", "--seed", "15",
         "--workers", "1", "--request-timeout", "20", "--no-shrink",
         "--generation-database", "none",
         # a wait lasts as long as the container, by design: any the fuzz started, it may name
         "--exclude-path-regex", "/wait$",
         "--report", "json", "--report-json-path", str(report)],
        capture_output=True, text=True, timeout=180,
        cwd=tmp_path,  # its caches and hypothesis's go there, not into the checkout
        env={**os.environ, "PYTHONPATH": str(REPO),
             "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks"})
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    summary = json.loads(report.read_text())
    cases = summary["test_cases"]
    print(f"schemathesis: {cases['generated']} test cases, seed {summary['seed']}")
    assert cases["generated"] >= 300 and cases["errored"] == cases["with_failures"] == 0
    assert ctrd.proc is not None and ctrd.proc.poll() is None, "ctrd died under the fuzz"
    assert ctrd.ctl("list").returncode == 0
    assert "Traceback" not in ctrd.log.read_text()  # nothing unexpected, even in its own log
