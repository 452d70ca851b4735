"""The image's Terraform CLI config (read from the Dockerfile) and a stand-in provider for it.

No registry is reachable here, so the tests put a stand-in package into a filesystem mirror laid
out as `terraform providers mirror` writes it (the packed layout:
`HOST/NAMESPACE/TYPE/terraform-provider-TYPE_VERSION_PLATFORM.zip`). The zip holds a shell script
named like a provider executable: `terraform init` installs, checksums, caches and links it like a
real one (it never starts a provider), which is all these tests need. See docs/fidelity.md.
"""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import zipfile

from tests.conftest import REPO, TERRAFORM

DOCKERFILE = REPO / "Dockerfile"
HEREDOC = re.compile(r'^COPY <<"EOF" (\S+)\n(.*?)^EOF$', re.M | re.S)


def image_cli_config() -> tuple[str, str]:
    """(path in the image, content) of the CLI config the Dockerfile writes."""
    match = HEREDOC.search(DOCKERFILE.read_text())
    assert match, "the Dockerfile writes no CLI config with COPY <<\"EOF\""
    return match.group(1), match.group(2)


def mirror_path(config: str) -> str:
    match = re.search(r'filesystem_mirror\s*\{[^}]*path\s*=\s*"([^"]+)"', config)
    assert match, "the CLI config has no filesystem_mirror path"
    return match.group(1)


def cli_config_for(mirror: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
    """The image's CLI config with its mirror path replaced by `mirror`, written to `target`."""
    _, config = image_cli_config()
    target.write_text(config.replace(mirror_path(config), str(mirror)))
    return target


def terraform_platform() -> str:
    assert TERRAFORM is not None
    done = subprocess.run([TERRAFORM, "version", "-json"], capture_output=True, text=True, check=True)
    return str(json.loads(done.stdout)["platform"])


def add_stand_in_provider(mirror: pathlib.Path, name: str, version: str, platform: str,
                          namespace: str = "hashicorp") -> pathlib.Path:
    """A package for registry.terraform.io/<namespace>/<name> <version> in the packed layout."""
    folder = mirror / "registry.terraform.io" / namespace / name
    folder.mkdir(parents=True, exist_ok=True)
    package = folder / f"terraform-provider-{name}_{version}_{platform}.zip"
    with zipfile.ZipFile(package, "w") as archive:
        entry = zipfile.ZipInfo(f"terraform-provider-{name}_v{version}_x5")
        entry.external_attr = 0o755 << 16
        archive.writestr(entry, "#!/bin/sh\necho 'a stand-in provider: never started by init' >&2\nexit 1\n")
    return package


def requiring(folder: pathlib.Path, providers: dict[str, str], *, backend: bool = False) -> pathlib.Path:
    """A root module that requires `providers` (source -> constraint), optionally with `backend "s3" {}`."""
    folder.mkdir(parents=True, exist_ok=True)
    required = "\n".join(f'    {source.split("/")[-1]} = {{ source = "{source}", version = "{constraint}" }}'
                         for source, constraint in providers.items())
    backend_block = '  backend "s3" {}\n' if backend else ""
    (folder / "main.tf").write_text(f"terraform {{\n  required_providers {{\n{required}\n  }}\n{backend_block}}}\n")
    return folder
