"""The app-repo templates (examples/app-repo) and the example LLMApp they go with: the workflows use
exactly what the operator syncs, no stored AWS keys, actions pinned by commit SHA, no hard-coded
environment, a CI that passes without tests, a CD that never deploys a moving tag; the example's
model key is an app secret and the app repo's README says how the app reads it."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from llmapp_operator.api.spec import LLMApp
from llmapp_operator.config import GITHUB_VARIABLE_OUTPUTS
from tests.conftest import REPO

APP_REPO = REPO / "examples" / "app-repo"
WORKFLOW_DIR = APP_REPO / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.yml"))
README = (APP_REPO / "README.md").read_text()
EXAMPLE_PATH = REPO / "examples" / "llmapp.yaml"
EXAMPLE = yaml.safe_load(EXAMPLE_PATH.read_text())
SYNCED_SECRETS = {item["name"] for item in EXAMPLE["spec"]["github"].get("secrets", [])}
APP_SECRETS = [item["name"] for item in EXAMPLE["spec"]["app"].get("secrets", [])]

# The one name the workflows read that the operator does not write: a repository variable naming
# the GitHub environment, for jobs.<id>.environment, which cannot see that environment's variables.
REPOSITORY_VARIABLES = {"LLMAPP_ENVIRONMENT"}
# How a remote action is pinned: owner/repo[/path]@<40 hex> # v<version>
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_./-]+)?@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^\s+# v\d+(\.\d+){0,2}\b")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}")


def load(path: pathlib.Path) -> dict[str, Any]:
    workflow: dict[Any, Any] = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def code(path: pathlib.Path) -> str:
    """The workflow without its comment lines."""
    return "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))


def references(kind: str, text: str | None = None) -> set[str]:
    texts = [text] if text is not None else [code(path) for path in WORKFLOWS]
    return {name for body in texts for name in re.findall(rf"\b{kind}\.([A-Za-z_][A-Za-z0-9_]*)", body)}


def uses(workflow: dict[str, Any]) -> list[str]:
    found = []
    for job in workflow["jobs"].values():
        if "uses" in job:
            found.append(job["uses"])
        found.extend(step["uses"] for step in job.get("steps", []) if "uses" in step)
    return found


def test_there_are_ci_and_cd_workflows_and_they_parse() -> None:
    assert [path.name for path in WORKFLOWS] == ["cd.yml", "ci.yml"]
    for path in WORKFLOWS:
        workflow = load(path)
        assert workflow["permissions"] == {"contents": "read", "id-token": "write"}, path.name
        assert workflow["jobs"] and "workflow_dispatch" in workflow["on"], path.name


def test_every_action_is_pinned_by_a_commit_sha_with_its_version_in_a_comment() -> None:
    pins: dict[str, set[str]] = {}
    for path in WORKFLOWS:
        lines = [USES_LINE.match(line) for line in path.read_text().splitlines()]
        found = [match for match in lines if match]
        # Every uses: of the parsed workflow is on a line of its own that the checks below see.
        assert [match.group(1) for match in found] == uses(load(path)), path.name
        for match in found:
            ref, rest = match.group(1), match.group(2)
            if ref.startswith("./"):
                # A reusable workflow of the same repository runs at the same commit.
                assert (APP_REPO / ref).is_file(), f"{path.name}: {ref} is not a workflow here"
                continue
            assert PINNED.match(ref), f"{path.name}: {ref} is not pinned by a full commit SHA"
            assert VERSION_COMMENT.match(rest), f"{path.name}: {ref} has no '# vX.Y.Z' comment"
            action, sha = ref.split("@")
            pins.setdefault(action, set()).add(f"{sha}{rest.strip()}")
    assert {"actions/checkout", "aws-actions/configure-aws-credentials", "aws-actions/amazon-ecr-login",
            "aws-actions/amazon-ecs-render-task-definition",
            "aws-actions/amazon-ecs-deploy-task-definition"} <= set(pins)
    # One action, one pin (and one version comment) across the workflows.
    assert all(len(pinned) == 1 for pinned in pins.values()), pins


def environment_expressions() -> Iterator[tuple[str, str]]:
    """(where, value) of every job's environment, and of the environment a reusable workflow is given."""
    for path in WORKFLOWS:
        for name, job in load(path)["jobs"].items():
            if "uses" in job:
                yield f"{path.name} jobs.{name}.with.environment", job["with"]["environment"]
            else:
                environment = job["environment"]
                yield f"{path.name} jobs.{name}.environment", (environment["name"] if isinstance(environment, dict)
                                                               else environment)


def test_no_environment_name_is_hard_coded() -> None:
    seen = list(environment_expressions())
    assert len(seen) == 3   # ci build, ci's call of cd, cd deploy
    for where, value in seen:
        assert isinstance(value, str) and re.fullmatch(r"\$\{\{[^}]*\}\}", value.strip()), (where, value)
        inner = EXPRESSION.search(value)
        assert inner is not None
        expression = inner.group(1)
        assert "'" not in expression and '"' not in expression, f"{where}: a literal environment name: {value}"
        # Environment-scoped variables (all the operator writes) are not there yet when the
        # environment is chosen: only inputs and repository variables can name it.
        assert references("vars", expression) <= REPOSITORY_VARIABLES, (where, value)
        assert set(re.findall(r"\b([a-z]+)\.", expression)) <= {"inputs", "vars"}, (where, value)
    for path in WORKFLOWS:
        for text in strings(load(path)):
            assert not re.fullmatch(r"(dev|staging|prod|production)", text), f"{path.name}: {text!r}"


def test_every_variable_is_one_the_operator_writes_or_names_its_environment() -> None:
    used = references("vars")
    assert used and used <= set(GITHUB_VARIABLE_OUTPUTS) | REPOSITORY_VARIABLES, used - set(GITHUB_VARIABLE_OUTPUTS)
    for name in REPOSITORY_VARIABLES & used:
        # Only where the environment is chosen, and the README says how to set it.
        assert all(f"vars.{name}" not in line for path in WORKFLOWS for line in code(path).splitlines()
                   if not re.search(r"\benvironment:", line)), name
        assert f"gh variable set {name}" in README, name
    # Each job checks, before anything else, that it landed in an environment the operator synced.
    for path in WORKFLOWS:
        for name, job in load(path)["jobs"].items():
            if "steps" in job:
                first = job["steps"][0]
                assert first["if"].replace(" ", "") == "${{vars.ROLE_TO_ASSUME==''}}", (path.name, name)
                assert "exit 1" in first["run"], (path.name, name)


def test_every_secret_is_synced_from_the_spec_and_no_aws_keys() -> None:
    assert references("secrets") <= SYNCED_SECRETS
    text = "".join(path.read_text() for path in WORKFLOWS)
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    # The model key is the task's, never CI's.
    assert not set(APP_SECRETS) & (references("secrets") | references("env"))


def test_ci_passes_without_tests_and_fails_on_a_failing_test(tmp_path: pathlib.Path) -> None:
    """The CI's Test step, run as GitHub runs it (bash -eo pipefail), with pip stubbed out."""
    build = load(WORKFLOW_DIR / "ci.yml")["jobs"]["build"]
    script = next(step["run"] for step in build["steps"] if step.get("name") == "Test")
    shims = tmp_path / "bin"
    shims.mkdir()
    shim = shims / "python"
    shim.write_text('#!/bin/sh\nif [ "$1" = "-m" ] && [ "$2" = "pip" ]; then exit 0; fi\n'
                    f'exec "{sys.executable}" "$@"\n')
    shim.chmod(0o755)
    (shims / "pytest").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pytest "$@"\n')
    (shims / "pytest").chmod(0o755)
    app = tmp_path / "app"
    app.mkdir()
    (app / "requirements.txt").write_text("")
    (app / "pytest.ini").write_text("[pytest]\n")   # no configuration from tmp_path's parents
    (app / "step.sh").write_text(script)
    env = {**os.environ, "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_PLUGINS", None)

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "step.sh"], cwd=app, env=env,
                              capture_output=True, text=True, timeout=120)

    nothing = run()
    assert nothing.returncode == 0, nothing.stdout + nothing.stderr
    assert "no tests ran" in nothing.stdout or "collected 0 items" in nothing.stdout, nothing.stdout
    (app / "test_app.py").write_text("def test_app():\n    assert 1 + 1 == 2\n")
    assert run().returncode == 0
    (app / "test_app.py").write_text("def test_app():\n    assert 1 + 1 == 3\n")
    assert run().returncode == 1


def test_cd_deploys_the_commit_sha_ci_pushed_never_a_moving_tag() -> None:
    cd, ci = load(WORKFLOW_DIR / "cd.yml"), load(WORKFLOW_DIR / "ci.yml")
    assert ":latest" not in code(WORKFLOW_DIR / "cd.yml")
    assert not any(re.search(r":\s*latest\b", text) for text in strings(cd))
    steps = cd["jobs"]["deploy"]["steps"]
    # The pipeline rollout: a new revision of the family's current task definition, only the image changed.
    describe = next(step for step in steps if "describe-task-definition" in step.get("run", ""))
    assert describe["env"]["FAMILY"] == "${{ vars.ECS_TASK_DEFINITION }}"
    render = next(step for step in steps if step.get("uses", "").startswith("aws-actions/amazon-ecs-render"))
    assert render["with"]["task-definition"] == "task-definition.json"
    assert render["with"]["image"] == ("${{ vars.ECR_REGISTRY }}/${{ vars.ECR_REPOSITORY_NAME }}:"
                                       "${{ inputs.image-tag || github.sha }}")
    deploy = next(step for step in steps if step.get("uses", "").startswith("aws-actions/amazon-ecs-deploy"))
    assert deploy["with"]["task-definition"] == "${{ steps.render.outputs.task-definition }}"
    assert deploy["with"]["wait-for-service-stability"] is True
    # CI pushes the tag it hands to the CD.
    push = next(step for step in ci["jobs"]["build"]["steps"] if step.get("name") == "Build and push")
    assert push["env"]["TAG"] == "${{ github.sha }}" and 'docker push "$IMAGE:$TAG"' in push["run"]
    call = ci["jobs"]["deploy"]
    assert call["uses"] == "./.github/workflows/cd.yml" and call["needs"] == "build"
    assert call["with"]["image-tag"] == "${{ github.sha }}"
    assert set(call["with"]) == set(cd["on"]["workflow_call"]["inputs"])


def test_the_example_is_a_valid_llmapp_whose_model_key_is_an_app_secret() -> None:
    app = LLMApp.from_body(EXAMPLE)
    assert app.spec.app.image == ""   # the app's CI/CD deploys it (these templates)
    names = [secret.name for secret in app.spec.app.secrets]
    assert names == ["OPENAI_API_KEY"]
    assert not {secret.name for secret in app.spec.github.secrets} & {"OPENAI_API_KEY", "OPENAI_KEY"}
    # The comment block says how to create and annotate every Secret the example names.
    comments = "\n".join(line for line in EXAMPLE_PATH.read_text().splitlines() if line.startswith("#"))
    refs = {ref.name for ref in [app.spec.github.token_secret_ref] if ref is not None}
    refs |= {secret.value_from.secret_key_ref.name for secret in app.spec.app.secrets}
    refs |= {secret.value_from.secret_key_ref.name for secret in app.spec.github.secrets}
    namespace = EXAMPLE["metadata"]["namespace"]
    annotate = next(line for line in comments.splitlines() if " annotate secret " in line)
    assert f"llmops.dev/allowed-llmapps={EXAMPLE['metadata']['name']}" in annotate
    for ref in refs:
        assert f"kubectl -n {namespace} create secret generic {ref} " in comments, ref
        assert f" {ref} " in annotate.split("annotate secret", 1)[1] + " ", ref


@pytest.mark.parametrize("name", APP_SECRETS)
def test_the_readmes_say_the_app_reads_its_secret_from_the_environment(name: str) -> None:
    snippet = re.search(r"```python\n(.*?)```", README, re.S)
    assert snippet is not None, "examples/app-repo/README.md has no Python snippet"
    assert f'os.environ.get("{name}")' in snippet.group(1) or f'os.environ["{name}"]' in snippet.group(1)
    compile(snippet.group(1), "README snippet", "exec")
    assert f"- name: {name}" in README and "spec.app.secrets[].name" in README
    main = (REPO / "README.md").read_text()
    assert "spec.app.secrets[].name" in main and "examples/app-repo/README.md" in main


def test_no_secret_goes_into_the_image() -> None:
    dockerfile = (APP_REPO / "Dockerfile").read_text()
    assert "ARG" not in dockerfile and "secrets.toml" not in dockerfile
    assert "USER app" in dockerfile and "8501" in dockerfile
    ignored = set((APP_REPO / ".dockerignore").read_text().split())
    assert {".env", ".streamlit/secrets.toml", "**/secrets.toml"} <= ignored
