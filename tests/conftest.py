"""Shared test set-up: a quiet Terraform CLI config and the skip rule for the terraform binary."""

from __future__ import annotations

import logging
import os
import pathlib
import shutil
import tempfile

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

# moto's werkzeug server logs every request at INFO; keep test failure output readable.
logging.getLogger("werkzeug").setLevel(logging.WARNING)
