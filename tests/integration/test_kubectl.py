"""The real `kubectl` (v1.32, on PATH) against the sandbox, as a user drives it: apply the CRD and an
LLMApp with kubectl's default (strict, server-side) validation, read the printer columns, `explain`,
`wait --for=condition=Ready`, and `delete` that waits for the finalizer. Hostile specs are refused at
`kubectl apply` with the API server's message."""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from llmapp_sandbox.apiserver.server import RunningApiServer, running_apiserver
from llmapp_sandbox.cluster import running_operator, use_kubeconfig
from tests.conftest import REPO, needs_terraform
from tests.integration.conftest import NS

KUBECTL = shutil.which("kubectl")
pytestmark = [needs_terraform,
              pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH: the kubectl tests need the real "
                                                         "binary (v1.32)")]


async def kubectl(api: RunningApiServer, kubeconfig: pathlib.Path, *args: str, stdin: str | None = None,
                  check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    done = await asyncio.to_thread(subprocess.run, [KUBECTL, *args], input=stdin, capture_output=True, text=True,
                                   env=env, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} exited {done.returncode}: {done.stderr}{done.stdout}")
    return done


def manifest(**spec: Any) -> str:
    obj = {"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp", "metadata": {"name": "bad", "namespace": NS},
           "spec": {"environment": "dev", "aws": {"region": "us-east-1"}, "github": {"repository": "acme/rags"},
                    "terraform": {"module": "sandbox"}, **spec}}
    return yaml.safe_dump(obj)


async def test_kubectl_installs_the_crd_applies_waits_explains_and_deletes(settings, deps, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    local = settings.updated(namespaces=(NS,))
    async with running_apiserver() as api:
        config = api.write_kubeconfig(tmp_path / "kube" / "config", NS)
        done = await kubectl(api, config, "apply", "-f", str(REPO / "crds"))
        assert "customresourcedefinition.apiextensions.k8s.io/llmapps.llmops.dev created" in done.stdout
        await kubectl(api, config, "wait", "--for=condition=Established", "crd/llmapps.llmops.dev", "--timeout=10s")
        changed = yaml.safe_load((REPO / "crds" / "llmapp.yaml").read_text())
        changed["metadata"]["labels"] = {"team": "platform"}   # a re-apply: kubectl sends a strategic merge patch
        done = await kubectl(api, config, "apply", "-f", "-", stdin=yaml.safe_dump(changed))
        assert "llmapps.llmops.dev configured" in done.stdout
        crd = api.server.get_object("customresourcedefinitions", None, "llmapps.llmops.dev")
        assert crd is not None and crd["metadata"]["labels"] == {"team": "platform"}
        await kubectl(api, config, "apply", "-f", "-", stdin=yaml.safe_dump(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))

        explained = await kubectl(api, config, "explain", "llmapp.spec.app.cpu")
        assert "Fargate task CPU units" in explained.stdout and "16384" in explained.stdout

        # The example as its comment says to apply it: the model key's Secret first, with its consent
        # (the GitHub token is left out: no GitHub here).
        await kubectl(api, config, "-n", NS, "create", "secret", "generic", "openai",
                      "--from-literal=api-key=sk-test-not-a-key")
        await kubectl(api, config, "-n", NS, "annotate", "secret", "openai", "llmops.dev/allowed-llmapps=rags")
        app = yaml.safe_load((REPO / "examples" / "llmapp.yaml").read_text())
        app["spec"]["terraform"] = {"module": "sandbox"}
        del app["spec"]["github"]["tokenSecretRef"]
        done = await kubectl(api, config, "apply", "-f", "-", stdin=yaml.safe_dump(app))
        assert "llmapp.llmops.dev/rags created" in done.stdout

        use_kubeconfig(api.write_kubeconfig(tmp_path / "operator-kubeconfig", NS))
        async with running_operator(local, replace(deps, settings=local)):
            await kubectl(api, config, "wait", "--for=condition=Ready", "llmapp/rags", "--timeout=90s", timeout=120)
            table = (await kubectl(api, config, "get", "llmapps")).stdout.splitlines()
            assert table[0].split() == ["NAME", "PHASE", "READY", "URL", "AGE"]
            row = table[1].split()
            assert row[:3] == ["rags", "Ready", "True"] and row[3].startswith("http://")
            shown = yaml.safe_load((await kubectl(api, config, "get", "llmapp", "rags", "-o", "yaml")).stdout)
            assert shown["spec"]["app"]["image"] == "" and shown["spec"]["network"]["azCount"] == 2  # defaults
            assert shown["status"]["appSecrets"] == ["OPENAI_API_KEY"]   # the model key reached the task's secrets

            done = await kubectl(api, config, "delete", "llmapp", "rags", "--timeout=90s", timeout=120)
            assert 'llmapp.llmops.dev "rags" deleted' in done.stdout
            gone = await kubectl(api, config, "get", "llmapp", "rags", check=False)
            assert gone.returncode == 1 and "NotFound" in gone.stderr


HOSTILE = [
    ("repository-dot", {"github": {"repository": "acme/."}}, "repository must be owner/name"),
    ("secret-ref-name", {"app": {"secrets": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "Bad_Name",
                                                                                           "key": "k"}}}]}},
     "spec.app.secrets[0].valueFrom.secretKeyRef.name"),
    ("secret-key-slash", {"app": {"secrets": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s",
                                                                                            "key": "a/b"}}}]}},
     "spec.app.secrets[0].valueFrom.secretKeyRef.key"),
    ("duplicate-secret", {"app": {"secrets": [
        {"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "K", "valueFrom": {"secretKeyRef": {"name": "t", "key": "k"}}}]}},
     "Duplicate value"),
    ("unknown-module-var", {"terraform": {"module": "stack", "vars": {"bogus": "1"}}},
     "module stack declares no such variable"),
    ("github-variable-name", {"github": {"repository": "acme/rags", "variables": {"bad-name": "x"}}},
     "GitHub variable names are letters"),
    ("github-secret-github-prefix", {"github": {"repository": "acme/rags", "secrets": [
        {"name": "GITHUB_TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}},
     "must not start with GITHUB_"),
    ("vpc-cidr", {"network": {"vpcCidr": "999.1.1.1/16"}}, "spec.network.vpcCidr"),
    ("backend-and-backendref", {"terraform": {"backendRef": "eu", "backend": {"bucket": "mine"}}},
     "set spec.terraform.backendRef or the deprecated spec.terraform.backend, not both"),
    ("github-plain-http", {"github": {"repository": "acme/rags", "apiUrl": "http://api.github.com"}},
     "spec.github.apiUrl"),
    ("zero-timeout", {"terraform": {"module": "sandbox", "timeout": "0s"}}, "timeout is between 1m and 24h"),
    ("unknown-field", {"bogus": True}, 'unknown field "spec.bogus"'),
    ("fargate-size", {"app": {"cpu": 256, "memory": 4096}}, "not a valid Fargate task size"),
]


async def test_kubectl_apply_refuses_each_hostile_spec_with_the_server_s_message(tmp_path: pathlib.Path) -> None:
    crd = yaml.safe_load((REPO / "crds" / "llmapp.yaml").read_text())
    async with running_apiserver([crd]) as api:
        api.server.create_object("namespaces", {"metadata": {"name": NS}})
        config = api.write_kubeconfig(tmp_path / "kube" / "config", NS)
        for label, spec, expected in HOSTILE:
            done = await kubectl(api, config, "apply", "-f", "-", stdin=manifest(**spec), check=False)
            assert done.returncode == 1, f"{label}: accepted: {done.stdout}"
            assert expected in done.stderr, f"{label}: {done.stderr}"
        assert api.server.list_objects("llmapps") == []


IDENTITY_CHANGES = [
    ("region", {"aws": {"region": "eu-west-1"}}, "spec.aws.region is immutable"),
    ("module", {"terraform": {"module": "stack"}}, "spec.terraform.module is immutable"),
    ("backend", {"terraform": {"module": "sandbox", "backend": {"bucket": "another-state-bucket"}}},
     "spec.terraform.backend is immutable"),
    ("backendRef added later", {"terraform": {"module": "sandbox", "backendRef": "eu"}},
     "spec.terraform.backendRef is immutable"),
]


async def test_kubectl_apply_refuses_identity_changes_of_a_live_object(tmp_path: pathlib.Path) -> None:
    """Region, module and backend name where the infrastructure and its state are: changing one
    would build a second stack or fork the state, so the API server refuses the update."""
    crd = yaml.safe_load((REPO / "crds" / "llmapp.yaml").read_text())
    async with running_apiserver([crd]) as api:
        api.server.create_object("namespaces", {"metadata": {"name": NS}})
        config = api.write_kubeconfig(tmp_path / "kube" / "config", NS)
        await kubectl(api, config, "apply", "-f", "-", stdin=manifest())
        for label, spec, expected in IDENTITY_CHANGES:
            done = await kubectl(api, config, "apply", "-f", "-", stdin=manifest(**spec), check=False)
            assert done.returncode == 1, f"{label}: accepted: {done.stdout}"
            assert expected in done.stderr, f"{label}: {done.stderr}"
        stored = api.server.get_object("llmapps", NS, "bad")
        assert stored is not None and stored["spec"]["aws"]["region"] == "us-east-1"
        assert stored["metadata"]["generation"] == 1
        # Everything else stays editable.
        done = await kubectl(api, config, "apply", "-f", "-", stdin=manifest(app={"desiredCount": 2}))
        assert "configured" in done.stdout
