"""The ACM certificate of spec.domain as ACM sees it: whether it is still waiting for its DNS
validation, so the operator can say so and look again without re-running Terraform (the stack's
apply waits for validation only up to a bound; docs/stack.md). The operator's own AWS identity
reads it (docs/iam.md); blocking boto3 calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmapp_operator.cloud.clients import aws_errors, client

# ACM's statuses (DescribeCertificate): the ones the app can still wait for, and the ones it cannot.
PENDING = "PENDING_VALIDATION"
ISSUED = "ISSUED"
FAILED = frozenset({"FAILED", "VALIDATION_TIMED_OUT", "REVOKED", "EXPIRED", "INACTIVE"})
_DENIED_HINT = ("the operator's AWS identity may not list or describe ACM certificates or read their tags "
                "(docs/iam.md)")


@dataclass(frozen=True)
class CertificateState:
    status: str
    """ACM's status; "" when no certificate of this app exists for the name."""
    arn: str = ""
    record: tuple[str, str, str] | None = None
    """(name, type, value) of the DNS record ACM looks for, while it is pending."""
    reason: str = ""
    """ACM's FailureReason, when it failed."""

    @property
    def pending(self) -> bool:
        return self.status == PENDING

    @property
    def failed(self) -> bool:
        return self.status in FAILED


def state_of(described: Mapping[str, Any]) -> CertificateState:
    """What one DescribeCertificate says (pure)."""
    record = None
    for option in described.get("DomainValidationOptions") or ():
        found = option.get("ResourceRecord") or {}
        if found.get("Name"):
            record = (str(found["Name"]), str(found.get("Type") or "CNAME"), str(found.get("Value") or ""))
            break
    return CertificateState(status=str(described.get("Status") or ""), arn=str(described.get("CertificateArn") or ""),
                            record=record, reason=str(described.get("FailureReason") or ""))


class AcmCertificates:
    """Finds the app's certificate for a name by the tags the stack puts on it (several apps, or an
    old certificate kept by create_before_destroy, may have one for the same name)."""

    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url

    async def state(self, region: str, domain: str, owner: Mapping[str, str]) -> CertificateState:
        def read() -> CertificateState:
            with aws_errors(f"ACM certificates of {domain} ({region})", denied="AcmDenied",
                            unavailable="AcmUnavailable", denied_hint=_DENIED_HINT):
                acm = client("acm", region, self.endpoint_url)
                newest: tuple[Any, Mapping[str, Any]] | None = None
                for page in acm.get_paginator("list_certificates").paginate(
                        Includes={"keyTypes": ["RSA_2048", "EC_prime256v1", "EC_secp384r1"]}):
                    for summary in page.get("CertificateSummaryList") or ():
                        if summary.get("DomainName") != domain:
                            continue
                        arn = summary["CertificateArn"]
                        tags = {t["Key"]: t.get("Value", "") for t in
                                acm.list_tags_for_certificate(CertificateArn=arn).get("Tags") or ()}
                        if any(tags.get(key) != value for key, value in owner.items()):
                            continue
                        described = acm.describe_certificate(CertificateArn=arn)["Certificate"]
                        created = described.get("CreatedAt")
                        if newest is None or (created is not None and created > newest[0]):
                            newest = (created, described)
            return state_of(newest[1]) if newest is not None else CertificateState(status="")
        return await asyncio.to_thread(read)
