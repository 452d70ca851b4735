"""Checkov's report read into the same findings as the built-in rules (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from llmapp_operator.review.verdict import PlanReview


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

