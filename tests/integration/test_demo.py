"""`make demo` as a newcomer runs it: the whole lifecycle on the embedded sandbox, in one process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.conftest import REPO, needs_terraform

pytestmark = needs_terraform


def test_the_demo_runs_the_lifecycle_and_says_what_costs_a_terraform_run() -> None:
    done = subprocess.run([sys.executable, "-m", "llmapp_sandbox", "demo"], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "re-applied generation 2" in out and "'replace': 1" in out   # env: a new task definition revision
    # desiredCount is the ECS API's: no Terraform process for it (docs/stack.md).
    scaled = out[out.index('{"desiredCount": 2}'):]
    assert "generation 3 Ready; terraform processes started: 0" in scaled
    assert "terraform destroy ran, finalizer released" in out
    if shutil.which("kubectl"):   # the demo's kubectl lines are the real kubectl's output
        events = out[out.index("$ kubectl get events"):].splitlines()[1].split()
        assert events == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], events
        assert "Phase:     Ready" in out[out.index("$ kubectl llmapp status"):]
    assert "GitHub environments left in acme/rags: none" in out
