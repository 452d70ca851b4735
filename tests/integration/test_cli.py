"""The command line as users meet it: one-line errors, never a traceback."""

from __future__ import annotations

import pathlib
import subprocess
import sys

from tests.conftest import REPO


def run_cli(*args: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "llmapp_operator", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=60)


def test_run_without_reachable_cluster_is_one_actionable_line(tmp_path: pathlib.Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n"
    )
    done = run_cli("run", env_extra={"KUBECONFIG": str(kubeconfig)})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [lines[-1]] and "not reachable" in lines[-1] and "kube-context" in lines[-1]


def test_run_without_any_kubeconfig(tmp_path: pathlib.Path) -> None:
    done = run_cli("run", env_extra={"KUBECONFIG": str(tmp_path / "missing"), "HOME": str(tmp_path)})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "KUBECONFIG" in done.stderr.strip().splitlines()[-1]
