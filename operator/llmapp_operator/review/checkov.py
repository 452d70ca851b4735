"""Checkov on a plan: its command line, its report read fail-closed, and a module's default waivers.

Checkov's failed checks join the same findings as the built-in rules. Anything but a report that
says what it checked is an error, never "no findings": an exit code other than 0 (passed) or 1
(failed checks), no output or output that is not Checkov's JSON, a plan it could not parse, or no
resources read from a plan that has AWS resources (Checkov fails open on a plan JSON it cannot read:
it answers 0 resources with exit 0).

A module may ship `checkov-waivers.yaml` beside its *.tf files (terraform/stack does): the checks it
waives by design, each with its reason, are passed to Checkov as `--skip-check`. A waiver can hold
only while Terraform variables are empty (`while_empty: [certificate_arn, domain_name]`). `spec.terraform.policy.skip`
still adds to them, and those are recorded in status.policy.waived like the built-in rules'.
"""

from __future__ import annotations

import functools
import json
import pathlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import yaml

from llmapp_operator.api.errors import PermanentError, TransientError
from llmapp_operator.review.verdict import PlanReview

WAIVERS_FILE = "checkov-waivers.yaml"
CHECK_ID = re.compile(r"^CKV2?_[A-Z0-9]+_[0-9]+$")
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
REASON = "PolicyCheckFailed"
_WAIVER_KEYS = frozenset({"check", "reason", "while_empty"})


@dataclass(frozen=True)
class Waiver:
    """One Checkov check a module waives by design."""

    check: str
    reason: str
    while_empty: tuple[str, ...] = ()
    """Terraform variables: the waiver holds only while every one is empty or unset; (): always."""

    def applies(self, tfvars: Mapping[str, Any]) -> bool:
        return all(tfvars.get(name) in (None, "", [], {}) for name in self.while_empty)


def parse_waivers(text: str, source: str = WAIVERS_FILE) -> tuple[Waiver, ...]:
    """`waivers:` as a list of {check, reason, while_empty?}; anything else is a ValueError."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: not YAML ({getattr(exc, 'problem', None) or type(exc).__name__})") from None
    items = data.get("waivers") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise ValueError(f"{source}: expected a top-level `waivers:` list")
    waivers: list[Waiver] = []
    for index, item in enumerate(items):
        where = f"{source}: waivers[{index}]"
        if not isinstance(item, Mapping) or set(item) - _WAIVER_KEYS:
            raise ValueError(f"{where}: expected only the keys {', '.join(sorted(_WAIVER_KEYS))}")
        check, reason, variable = item.get("check"), item.get("reason"), item.get("while_empty")
        if not isinstance(check, str) or not CHECK_ID.match(check):
            raise ValueError(f"{where}: `check` must be a Checkov check id such as CKV_AWS_2")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"{where} ({check}): a waiver needs its `reason`")
        names = [variable] if isinstance(variable, str) else variable if variable is not None else []
        if not isinstance(names, list) or not all(isinstance(n, str) and VARIABLE_NAME.match(n) for n in names):
            raise ValueError(f"{where} ({check}): `while_empty` must name a Terraform variable or a list of them")
        if any(waiver.check == check for waiver in waivers):
            raise ValueError(f"{where}: {check} is listed twice")
        waivers.append(Waiver(check=check, reason=" ".join(reason.split()), while_empty=tuple(names)))
    return tuple(waivers)


def read_waivers(module_path: pathlib.Path) -> tuple[Waiver, ...]:
    """The module's own waivers file; none when it has no such file. A broken file is the module's
    fault (like an unparsable *.tf file): InvalidModule."""
    return _read_waivers(module_path / WAIVERS_FILE)


@functools.lru_cache(maxsize=16)
def _read_waivers(path: pathlib.Path) -> tuple[Waiver, ...]:
    if not path.is_file():
        return ()
    try:
        return parse_waivers(path.read_text(encoding="utf-8"), path.name)
    except (OSError, ValueError) as exc:
        raise PermanentError(f"module {path.parent.name!r}: {exc}", reason="InvalidModule") from None


def default_skips(waivers: Iterable[Waiver], tfvars: Mapping[str, Any]) -> tuple[str, ...]:
    """The check ids to pass as --skip-check for a run with these variables."""
    return tuple(sorted({waiver.check for waiver in waivers if waiver.applies(tfvars)}))


def checkov_arguments(plan_file: pathlib.Path, skip: Sequence[str] = ()) -> list[str]:
    """Arguments after the executable. --skip-download: no call to Prisma Cloud for guidelines (the
    operator has no account there; without it every run tries the network first)."""
    args = ["-f", str(plan_file), "--framework", "terraform_plan", "-o", "json", "--compact", "--quiet",
            "--skip-download"]
    if skip:
        args += ["--skip-check", ",".join(skip)]
    return args


def read_report(returncode: int | None, stdout: bytes | str, plan: Mapping[str, Any] | None = None,
                stderr_tail: str = "") -> tuple[str, ...]:
    """Checkov's findings, or a TransientError (PolicyCheckFailed) when the run did not check the
    plan. `stderr_tail` must already be redacted; it only makes the message more useful."""
    hint = f" ({stderr_tail})" if stderr_tail else ""
    if returncode not in (0, 1):
        raise TransientError(f"checkov exited {returncode}{hint}; the plan was not checked", reason=REASON)
    text = stdout.decode(errors="replace") if isinstance(stdout, bytes) else stdout
    if not text.strip():
        raise TransientError(f"checkov exited {returncode} without a report{hint}; the plan was not checked",
                             reason=REASON)
    try:
        report = json.loads(text)
    except ValueError:
        raise TransientError(f"checkov exited {returncode} and its output is not JSON{hint}; "
                             "the plan was not checked", reason=REASON) from None
    reports = report if isinstance(report, list) else [report]
    summaries = [_summary(item) for item in reports]
    if not reports or any(summary is None for summary in summaries):
        raise TransientError(f"checkov exited {returncode} and its output is not a Checkov JSON report; "
                             "the plan was not checked", reason=REASON)
    parsing_errors = sum(_count(summary, "parsing_errors") for summary in summaries if summary is not None)
    if parsing_errors:
        raise TransientError(f"checkov could not parse the plan JSON ({parsing_errors} parsing error(s)); "
                             "the plan was not checked", reason=REASON)
    aws = aws_resource_count(plan or {})
    if aws and not sum(_count(summary, "resource_count") for summary in summaries if summary is not None):
        raise TransientError(f"checkov read no resources from a plan with {aws} AWS resource(s) (does its plan "
                             "reader match this Terraform's JSON?); the plan was not checked", reason=REASON)
    findings = checkov_findings(report)
    if returncode == 1 and not findings:
        raise TransientError(f"checkov exited 1 but reported no failed check{hint}; the plan was not checked",
                             reason=REASON)
    return findings


def _summary(report: Any) -> Mapping[str, Any] | None:
    """A report's summary: `{check_type, results, summary}`, or the bare summary Checkov prints
    when it found nothing to check."""
    if not isinstance(report, Mapping):
        return None
    if isinstance(report.get("results"), Mapping):
        summary = report.get("summary")
        return summary if isinstance(summary, Mapping) else {}
    return report if "resource_count" in report and "results" not in report else None


def _count(summary: Mapping[str, Any], key: str) -> int:
    value = summary.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def aws_resource_count(plan: Mapping[str, Any]) -> int:
    """Managed aws_* resources in the plan's planned_values (root and child modules): what Checkov's
    plan reader scans."""
    def count(module: Any) -> int:
        if not isinstance(module, Mapping):
            return 0
        own = sum(1 for item in module.get("resources") or () if isinstance(item, Mapping)
                  and item.get("mode") == "managed" and str(item.get("type", "")).startswith("aws_"))
        return own + sum(count(child) for child in module.get("child_modules") or ())
    values = plan.get("planned_values")
    return count(values.get("root_module")) if isinstance(values, Mapping) else 0


def checkov_findings(report: Any) -> tuple[str, ...]:
    """Failed checks of `checkov -o json` (one report, or a list of them per framework), in the
    same "ID address: why" form as the built-in rules."""
    reports = report if isinstance(report, list) else [report]
    found = set()
    for item in reports:
        results = (item or {}).get("results") or {} if isinstance(item, Mapping) else {}
        for check in results.get("failed_checks") or ():
            if isinstance(check, Mapping) and check.get("check_id"):
                why = str(check.get("check_name") or "failed")
                found.add(f"{check['check_id']} {check.get('resource', '?')}: {why}")
    return tuple(sorted(found))


def with_findings(review: PlanReview, findings: Iterable[str], skip: Iterable[str]) -> PlanReview:
    """Checkov's findings merged into the same report, waivable by id like the built-in rules."""
    skipped = set(skip)
    extra = list(findings)
    waived = {item for item in extra if item.split(" ", 1)[0] in skipped}
    return replace(review, violations=tuple(sorted({*review.violations, *(set(extra) - waived)})),
                   waived=tuple(sorted({*review.waived, *waived})))


# -- all of it ------------------------------------------------------------------------------------
