"""`make sandbox` as a newcomer uses it: start it, then drive it with the real kubectl and
`kubectl llmapp` through the kubeconfig it writes; Ctrl-C (SIGTERM here) stops it cleanly."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, needs_terraform

KUBECTL = shutil.which("kubectl")
pytestmark = [needs_terraform, pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH (v1.32)")]


def test_the_running_sandbox_answers_the_real_kubectl(tmp_path: pathlib.Path) -> None:
    assert KUBECTL is not None
    directory = tmp_path / "sandbox"
    process = subprocess.Popen([sys.executable, "-m", "llmapp_sandbox", "sandbox", "--dir", str(directory)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        printed = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line, "the sandbox exited before it was ready:\n" + "".join(printed)
            printed.append(line)
            if line.startswith("sandbox ready"):
                break
        kubeconfig = directory / "kubeconfig"
        assert f"export KUBECONFIG={kubeconfig}" in "".join(printed)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path),
               "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

        def kubectl(*args: str) -> str:
            done = subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env, timeout=150)
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}{done.stdout}"
            return done.stdout

        assert "llmapp.llmops.dev/rags created" in kubectl("apply", "-f", str(directory / "llmapp.yaml"))
        kubectl("wait", "--for=condition=Ready", "llmapp/rags", "-n", "team-a", "--timeout=120s")
        rows = kubectl("get", "llmapps", "-n", "team-a").splitlines()
        assert rows[0].split()[:4] == ["NAME", "PHASE", "READY", "URL"] and rows[1].split()[:3] == ["rags", "Ready",
                                                                                                    "True"]
        assert "Fargate task CPU units" in kubectl("explain", "llmapp.spec.app.cpu")
        described = kubectl("describe", "llmapp", "rags", "-n", "team-a")
        assert "Events:" in described and "Ready" in described
        status = kubectl("llmapp", "status", "rags", "-n", "team-a")
        print(f"$ kubectl llmapp status rags -n team-a\n{status}")
        assert "Phase:     Ready" in status and "GitHubSynced" in status
        assert 'llmapp.llmops.dev "rags" deleted' in kubectl("delete", "llmapp", "rags", "-n", "team-a",
                                                             "--timeout=120s")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
