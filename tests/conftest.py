"""Shared test set-up: a quiet Terraform CLI config and the skip rules for the terraform and checkov binaries."""

from __future__ import annotations

import importlib.util
import logging
import os
import pathlib
import shutil
import sys
import tempfile
import tomllib
from typing import Any

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent

# The environment may point TF_CLI_CONFIG_FILE at a missing file, which makes every terraform
# command warn on stderr; a real empty file silences it.
_cli_config = pathlib.Path(tempfile.gettempdir()) / "llmapp-tests-terraformrc"
_cli_config.touch()
os.environ["TF_CLI_CONFIG_FILE"] = str(_cli_config)

TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(
    TERRAFORM is None, reason="terraform binary not on PATH: integration tests need the real CLI"
)

# Checkov lives in its own venv (`make install` makes .venv/checkov from [tool.llmapp] checkov in
# pyproject.toml): its bc-python-hcl2 installs an `hcl2` package over python-hcl2's. $CHECKOV wins.
CHECKOV_REQUIREMENT = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["llmapp"]["checkov"]
CHECKOV_VERSION = CHECKOV_REQUIREMENT.split("==")[1]
_own_checkov = REPO / ".venv" / "checkov" / "bin" / "checkov"
CHECKOV = os.environ.get("CHECKOV") or (str(_own_checkov) if _own_checkov.is_file() else shutil.which("checkov"))
# In CI a missing checkov is a broken install, not a reason to skip: those tests must run there.
needs_checkov = pytest.mark.skipif(
    CHECKOV is None and not os.environ.get("CI"),
    reason=f"no checkov: `make install` puts {CHECKOV_REQUIREMENT} in .venv/checkov (its own venv)")

def load_script(name: str) -> Any:
    """scripts/<name>.py as a module (the scripts are no package), registered under its name."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module   # dataclasses in the script look their module up by name
    spec.loader.exec_module(module)
    return module


# moto's werkzeug server logs every request at INFO; keep test failure output readable.
logging.getLogger("werkzeug").setLevel(logging.WARNING)
