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


def test_a_bad_setting_is_one_line_naming_the_variable() -> None:
    done = run_cli("run", env_extra={"LLMAPP_RUN_TIMEOUT_SECONDS": "soon", "LLMAPP_DEFAULT_RUNNER": "cloud"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("llmapp-operator: invalid operator settings: ")
    assert "LLMAPP_RUN_TIMEOUT_SECONDS: Input should be a valid integer" in line
    assert "LLMAPP_DEFAULT_RUNNER: Input should be 'local' or 'job'" in line


def test_a_tenant_policy_file_that_does_not_parse_stops_the_start_with_where(tmp_path: pathlib.Path) -> None:
    policies = tmp_path / "policies.yaml"
    policies.write_text("policies: [{name: team-a, namespaces: [team-a], backends: {}, roles: x}]\n")
    done = run_cli("run", env_extra={"LLMAPP_TENANT_POLICIES": str(policies)})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"llmapp-operator: tenant policies in {policies} are invalid: ")
    assert "policies.0.roles: Extra inputs are not permitted" in line


async def run_cli_async(*args: str, env_extra: dict[str, str]) -> tuple[int, str]:
    import asyncio
    import os

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llmapp_operator", *args, env={**os.environ, **env_extra}, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, stderr.decode()


async def test_install_crd_creates_updates_and_says_why_the_server_refused(tmp_path: pathlib.Path) -> None:
    from llmapp_sandbox.apiserver.server import running_apiserver

    async with running_apiserver(rbac=True) as api:
        admin = api.write_kubeconfig(tmp_path / "admin")
        code, err = await run_cli_async("install-crd", env_extra={"KUBECONFIG": str(admin)})
        assert code == 0 and err.strip().endswith("created CRD llmapps.llmops.dev"), err
        code, err = await run_cli_async("install-crd", env_extra={"KUBECONFIG": str(admin)})
        assert code == 0 and err.strip().endswith("updated CRD llmapps.llmops.dev"), err
        crd = api.server.get_object("customresourcedefinitions", None, "llmapps.llmops.dev")
        assert crd is not None and {c["type"] for c in crd["status"]["conditions"]} >= {"Established"}

        nobody = api.write_kubeconfig(tmp_path / "nobody", token=api.server.tokens.mint_service_account_token(
            "default", "nobody"))
        code, err = await run_cli_async("install-crd", env_extra={"KUBECONFIG": str(nobody)})
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and "Traceback" not in err and len(lines) == 1
        assert ('cannot install CRD llmapps.llmops.dev: 403 Forbidden: customresourcedefinitions.apiextensions.k8s.io '
                '"llmapps.llmops.dev" is forbidden: User "system:serviceaccount:default:nobody" cannot get resource '
                '"customresourcedefinitions" in API group "apiextensions.k8s.io" at the cluster scope') in lines[0]
