"""The Dockerfile's pins agree with the project (no engine here to build it): Python, Terraform, the
provider mirror and module cache of the stack, the CLI config that selects the mirror."""

from __future__ import annotations

import fnmatch
import pathlib
import re
import shutil
import subprocess
from typing import Any

import hcl2
import pytest

from tests.conftest import REPO, needs_terraform
from tests.provider_mirror import (
    add_stand_in_provider,
    cli_config_for,
    image_cli_config,
    mirror_path,
    requiring,
    terraform_platform,
)

DOCKERFILE = (REPO / "Dockerfile").read_text()


def arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE, re.M)
    assert match, f"ARG {name} is not pinned"
    return match.group(1)


def stages() -> list[str]:
    return re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]


def test_python_matches_pyproject() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'target-version = "py{arg("PYTHON_VERSION").replace(".", "")}"' in pyproject
    assert f'requires-python = ">={arg("PYTHON_VERSION")}' in pyproject
    assert all(stage.startswith("python:${PYTHON_VERSION}-slim") for stage in stages())


def test_terraform_is_pinned_verified_and_allowed_by_the_stack() -> None:
    version, checksum = arg("TERRAFORM_VERSION"), arg("TERRAFORM_SHA256")
    assert re.fullmatch(r"\d+\.\d+\.\d+", version) and re.fullmatch(r"[0-9a-f]{64}", checksum)
    assert "ADD --checksum=sha256:${TERRAFORM_SHA256}" in DOCKERFILE
    required = re.search(r'required_version\s*=\s*">=\s*([\d.]+)"', (REPO / "terraform/stack/versions.tf").read_text())
    assert required and tuple(map(int, version.split("."))) >= tuple(map(int, required.group(1).split(".")))


def test_terraform_version_is_the_one_the_tests_run() -> None:
    if shutil.which("terraform") is None:
        pytest.skip("terraform binary not on PATH")
    output = subprocess.run(["terraform", "version"], capture_output=True, text=True, check=True).stdout
    assert output.splitlines()[0] == f"Terraform v{arg('TERRAFORM_VERSION')}"


def test_final_stage_is_non_root_without_build_tools() -> None:
    final = stages()[-1]
    assert re.search(r"^USER 10001:10001$", final, re.M)
    assert not re.search(r"apt-get|apk add|gcc|build-essential|pip wheel", final)
    assert "--no-index" in final and "rm -rf /tmp/wheels" in final
    for path in ("terraform/sandbox", "crds/llmapp.yaml"):
        assert f"COPY {path} " in final
    # The stack comes from the providers stage: with its lock file and installed registry modules.
    assert "COPY --from=providers /opt/llmapp-operator/terraform/stack /opt/llmapp-operator/terraform/stack" in final
    assert "LLMAPP_TERRAFORM_DIR=/opt/llmapp-operator/terraform" in final


def test_chart_runs_the_image_as_its_user() -> None:
    import yaml

    values = yaml.safe_load((REPO / "charts/llmapp-operator/values.yaml").read_text())
    chart = yaml.safe_load((REPO / "charts/llmapp-operator/Chart.yaml").read_text())
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert version and chart["appVersion"] == version.group(1)
    assert values["image"]["tag"] == ""  # defaults to appVersion
    deployment = (REPO / "charts/llmapp-operator/templates/deployment.yaml").read_text()
    assert "runAsUser: 10001" in deployment and "path: /healthz" in deployment


# -- the provider mirror, the registry modules, the lock file, the CLI config --------------------
STACK = REPO / "terraform" / "stack"
STACK_IN_IMAGE = "/opt/llmapp-operator/terraform/stack"


def stage(name: str) -> str:
    found = [body for body in stages() if re.match(rf"\S+ AS {name}\n", body)]
    assert len(found) == 1, f"no single build stage named {name}"
    return found[0]


def env(name: str) -> str:
    match = re.search(rf"^\s*(?:ENV\s+)?{name}=(\S+)", stages()[-1], re.M)
    assert match, f"the final stage sets no {name}"
    return match.group(1)


# bc-python-hcl2 (0.x, which Checkov installs under the same import name) wraps every attribute
# value in a list; python-hcl2 7 does not.
_WRAPPED = str(getattr(hcl2, "__version__", "")).startswith("0.")


def attr(value: Any) -> Any:
    return value[0] if _WRAPPED and isinstance(value, list) else value


def parse_hcl(text: str) -> dict[str, Any]:
    return hcl2.loads(text)  # type: ignore[attr-defined,no-any-return]


def stack_providers() -> dict[str, str]:
    """local name -> source of every required_providers entry in the stack's *.tf."""
    found: dict[str, str] = {}
    for file in sorted(STACK.glob("*.tf")):
        for block in parse_hcl(file.read_text()).get("terraform", []):
            for required in block.get("required_providers", []):
                for local, spec in required.items():
                    found[local] = attr(attr(spec)["source"])
    return found


def qualified(source: str) -> str:
    return source if source.count("/") == 2 else f"registry.terraform.io/{source}"


def test_a_build_stage_mirrors_the_stacks_providers_and_installs_its_modules() -> None:
    providers = stage("providers")
    _, config = image_cli_config()
    mirror = mirror_path(config)
    assert f"COPY terraform/stack {STACK_IN_IMAGE}\n" in providers and f"WORKDIR {STACK_IN_IMAGE}\n" in providers
    commands = providers[providers.index("RUN terraform get"):]
    # Modules first (`providers mirror` reads the configuration with its modules), then the mirror.
    mirroring = f"terraform providers mirror -platform=linux_amd64 {mirror}"
    assert commands.index("terraform get") < commands.index(mirroring)
    # The image's own CLI config installs the stack from that mirror, or the build fails.
    config_path = "/opt/llmapp-operator/terraformrc"
    assert re.search(rf"TF_CLI_CONFIG_FILE={config_path} \\\n\s+terraform init -backend=false", commands)
    assert "rm -rf .terraform/providers" in commands   # the mirror is what ships, not a second copy
    # The registry's terraform-aws-modules are git sources: git in the build stage only.
    assert "install -y --no-install-recommends git" in providers
    final = stages()[-1]
    assert f"COPY --from=providers {mirror} {mirror}\n" in final
    assert "COPY --from=terraform /out/terraform /usr/local/bin/terraform" in providers


def test_the_cli_config_selects_the_mirror_for_hashicorp_providers() -> None:
    path, config = image_cli_config()
    installation = parse_hcl(config)["provider_installation"][0]
    mirror = installation["filesystem_mirror"][0]
    assert attr(mirror["path"]) == mirror_path(config) == "/opt/llmapp-operator/providers"
    assert attr(mirror["include"]) == ["registry.terraform.io/hashicorp/*"]
    assert attr(installation["direct"][0]["exclude"]) == ["registry.terraform.io/hashicorp/*"]
    assert env("TF_CLI_CONFIG_FILE") == path
    assert f"COPY --from=providers {path} {path}\n" in stages()[-1]


def test_every_provider_of_the_stack_is_one_the_mirror_serves() -> None:
    _, config = image_cli_config()
    include = attr(parse_hcl(config)["provider_installation"][0]["filesystem_mirror"][0]["include"])
    providers = stack_providers()
    # aws, and time for the ecs cluster module (docs/module-facts.md): both declared, both mirrored.
    assert {"hashicorp/aws", "hashicorp/time"} <= set(providers.values())
    for local, source in providers.items():
        assert any(fnmatch.fnmatchcase(qualified(source), pattern) for pattern in include), \
            f"provider {local} ({source}) would not come from the image's mirror"


def test_a_committed_lock_file_is_used_read_only() -> None:
    providers = stage("providers")
    assert "if [ -f .terraform.lock.hcl ]; then lockfile=-lockfile=readonly; else lockfile=; fi" in providers
    assert "terraform init -backend=false -input=false -no-color $lockfile" in providers
    lock = STACK / ".terraform.lock.hcl"
    if not lock.exists():
        pytest.skip("terraform/stack has no committed .terraform.lock.hcl (make lock writes it)")
    locked = {label.strip('"') for block in parse_hcl(lock.read_text()).get("provider", []) for label in block}
    assert locked == {qualified(source) for source in stack_providers().values()}


def test_nothing_but_the_copied_stack_reaches_the_build_context_from_terraform() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    assert "**/.terraform" in ignored   # a developer's own init never leaks into the image


@needs_terraform
def test_the_image_cli_config_installs_hashicorp_providers_from_the_mirror_only(tmp_path: pathlib.Path) -> None:
    """The CLI config as the Dockerfile writes it, with the real terraform and a stand-in provider."""
    mirror = tmp_path / "mirror"
    add_stand_in_provider(mirror, "time", "0.13.1", terraform_platform())
    config = cli_config_for(mirror, tmp_path / "terraformrc")
    environment = {"TF_CLI_CONFIG_FILE": str(config), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                   "CHECKPOINT_DISABLE": "1", "TF_PLUGIN_CACHE_DIR": str(tmp_path / "cache")}
    (tmp_path / "cache").mkdir()

    def init(module: pathlib.Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([shutil.which("terraform") or "terraform", f"-chdir={module}", "init", "-backend=false",
                               "-input=false", "-no-color"], capture_output=True, text=True, env=environment,
                              timeout=120)

    done = init(requiring(tmp_path / "ok", {"hashicorp/time": ">= 0.13"}))
    assert done.returncode == 0, done.stderr
    assert "Installed hashicorp/time v0.13.1" in done.stdout
    # A hashicorp provider the mirror lacks is an error at once: never looked for in the registry.
    done = init(requiring(tmp_path / "missing", {"hashicorp/time": ">= 0.14"}))
    assert done.returncode != 0 and "no available releases match" in done.stderr
    assert "registry.terraform.io" not in done.stderr
    # Any other namespace goes to its registry (unreachable here: the error names it).
    done = init(requiring(tmp_path / "other", {"acme/widget": ">= 1.0"}))
    assert done.returncode != 0 and "registry.terraform.io" in done.stderr
