"""Read the allow-listed Terraform modules once: declared variables, outputs, content digest.

`spec.terraform.vars` is checked against the declared variables before any Terraform run, and
the content digest is part of the input digest, so upgrading the operator's stack re-applies.
"""

from __future__ import annotations

import functools
import hashlib
import pathlib
from collections.abc import Mapping
from typing import Any

import hcl2

from llmapp_operator.api.errors import PermanentError
from llmapp_operator.api.workspace import ModuleInfo


def load_module(name: str, modules: Mapping[str, pathlib.Path]) -> ModuleInfo:
    if name not in modules:
        raise PermanentError(
            f"spec.terraform.module {name!r} is not offered by this operator; "
            f"available: {', '.join(sorted(modules))}",
            reason="UnknownModule",
        )
    return _read_module(name, modules[name].resolve())


@functools.lru_cache(maxsize=64)
def _read_module(name: str, path: pathlib.Path) -> ModuleInfo:
    files = sorted(path.glob("*.tf"))
    if not files:
        raise PermanentError(f"module {name!r} has no *.tf files at {path}", reason="InvalidModule")
    variables: dict[str, bool] = {}
    outputs: set[str] = set()
    digest = hashlib.sha256()
    for file in files:
        text = file.read_text(encoding="utf-8")
        digest.update(file.name.encode() + b"\0" + text.encode() + b"\0")
        try:
            parsed: dict[str, Any] = hcl2.loads(text)  # type: ignore[attr-defined]
        except Exception as exc:  # python-hcl2 raises lark errors of several kinds
            raise PermanentError(f"module {name!r}: cannot parse {file.name}: {exc}", reason="InvalidModule") from None
        for block in parsed.get("variable", []):
            for var_name, body in block.items():
                variables[_unquote(var_name)] = "default" not in body
        for block in parsed.get("output", []):
            outputs.update(_unquote(out) for out in block)
    return ModuleInfo(
        name=name,
        path=path,
        digest=digest.hexdigest()[:32],
        variables=dict(sorted(variables.items())),
        outputs=frozenset(outputs),
    )


def _unquote(label: str) -> str:
    # python-hcl2 7 keeps the quotes of block labels.
    return label.strip('"')


def copy_module(source: pathlib.Path, target: pathlib.Path) -> None:
    """Refresh the workspace's copy of the module's *.tf files (not .terraform, not state)."""
    target.mkdir(parents=True, exist_ok=True)
    wanted = {file.name for file in source.glob("*.tf")}
    for stale in target.glob("*.tf"):
        if stale.name not in wanted:
            stale.unlink()
    for file in source.glob("*.tf"):
        (target / file.name).write_bytes(file.read_bytes())
