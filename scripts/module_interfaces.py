"""Write tests/fixtures/terraform/module-interfaces.json: the variables and outputs of each
terraform-aws-modules module the stack pins, read at its tag from a git mirror of its repository.

    python scripts/module_interfaces.py /work/.mirror    # <dir>/terraform-aws-modules+<repo>/repo

CI has no registry and no GitHub, so the contract test (tests/unit/test_stack_module_facts.py)
reads this file; re-run the script when a pin moves.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import hcl2

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "terraform" / "module-interfaces.json"
# source as the stack writes it -> (repository, subdirectory)
REPOSITORIES = {
    "terraform-aws-modules/vpc/aws": ("terraform-aws-vpc", ""),
    "terraform-aws-modules/s3-bucket/aws": ("terraform-aws-s3-bucket", ""),
    "terraform-aws-modules/alb/aws": ("terraform-aws-alb", ""),
    "terraform-aws-modules/ecs/aws//modules/cluster": ("terraform-aws-ecs", "modules/cluster/"),
    "terraform-aws-modules/ecs/aws//modules/service": ("terraform-aws-ecs", "modules/service/"),
    "terraform-aws-modules/ecr/aws": ("terraform-aws-ecr", ""),
    "terraform-aws-modules/acm/aws": ("terraform-aws-acm", ""),
}


def pinned() -> dict[str, str]:
    found = {}
    for path in (ROOT / "terraform" / "stack").glob("*.tf"):
        for block in hcl2.loads(path.read_text()).get("module", []):
            for body in block.values():
                found[body["source"]] = body["version"]
    return found


def show(repo: pathlib.Path, ref: str) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), "show", ref], capture_output=True, text=True,
                          check=True).stdout


def main(mirrors: pathlib.Path) -> None:
    interfaces = {}
    for source, version in sorted(pinned().items()):
        name, sub = REPOSITORIES[source]
        repo = mirrors / f"terraform-aws-modules+{name}" / "repo"
        tag = f"v{version}"
        commit = subprocess.run(["git", "--git-dir", str(repo), "rev-parse", f"{tag}^{{commit}}"],
                                capture_output=True, text=True, check=True).stdout.strip()
        variables = hcl2.loads(show(repo, f"{tag}:{sub}variables.tf")).get("variable", [])
        outputs = hcl2.loads(show(repo, f"{tag}:{sub}outputs.tf")).get("output", [])
        interfaces[f"{source}@{version}"] = {
            "commit": commit,
            "variables": sorted(name for block in variables for name in block),
            "outputs": sorted(name for block in outputs for name in block),
        }
    OUT.write_text(json.dumps(interfaces, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(interfaces)} modules")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
