"""spec.domain's certificate around a pass: Terraform waits for ACM's DNS validation only up to the
stack's bound, so a certificate still pending after that is reported (CertificateIssued=False,
PendingValidation) and looked at again through ACM, with no Terraform run until ACM has issued it.
Pure: the caller reads ACM (cloud/certificates.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from llmapp_operator.api import conditions
from llmapp_operator.api.spec import DomainSpec
from llmapp_operator.cloud.certificates import CertificateState

PENDING_REASON = "CertificatePendingValidation"
FAILED_REASON = "CertificateValidationFailed"


def waiting_for_certificate(previous_conditions: Iterable[Mapping[str, Any]], generation: int) -> bool:
    """The last pass of this very spec left the certificate pending: ask ACM before Terraform."""
    return any(c.get("type") == conditions.CERTIFICATE_ISSUED and c.get("status") == "False"
               and c.get("reason") == "PendingValidation" and c.get("observedGeneration") == generation
               for c in previous_conditions)


def pending_message(domain: DomainSpec, state: CertificateState, recheck_seconds: float) -> str:
    record = (f"the {state.record[1]} record {state.record[0]}" if state.record
              else "its validation record")
    return (f"ACM has not issued the certificate of {domain.name} yet: it waits for {record} in hosted zone "
            f"{domain.hosted_zone_id}, which the stack created. A record there counts only if that zone is the "
            f"one the domain is delegated to (its NS records). Looked at again every {recheck_seconds:g} s; "
            "Terraform runs again once ACM has issued it")


def failed_message(domain: DomainSpec, state: CertificateState) -> str:
    why = f" ({state.reason})" if state.reason else ""
    return (f"ACM will not issue the certificate of {domain.name}: its status is {state.status}{why}. Fix the "
            "hosted zone or the name in spec.domain; a changed spec requests a new certificate")


def issued(domain: DomainSpec) -> tuple[bool, str, str]:
    return True, "Issued", f"the certificate of {domain.name} is issued; the app is served at https://{domain.name}"
