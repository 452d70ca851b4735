"""spec.domain: refused at apply time where it cannot work, rendered for the stack, and the
CertificateIssued condition (pure; ACM and Terraform are in tests/integration/test_stack_features.py)."""

from __future__ import annotations

import copy
from typing import Any

from llmapp_operator.api import conditions
from llmapp_operator.api.conditions import Outcome, Report
from llmapp_operator.api.spec import LLMApp
from llmapp_operator.api.workspace import render
from llmapp_operator.cloud.certificates import CertificateState, state_of
from llmapp_operator.config import Settings
from llmapp_operator.engine import certificate
from llmapp_operator.runners.modules import load_module
from tests.spec_samples import BASE
from tests.unit.test_crd import model_verdict, server_verdict

DOMAIN = {"name": "rags.example.com", "hostedZoneId": "Z0123456789ABCDEFGHIJ"}


def spec_with(**fields: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    spec.update(fields)
    return spec


def test_a_domain_and_a_certificate_arn_of_ones_own_are_refused_together() -> None:
    assert server_verdict(spec_with(domain=DOMAIN)) == (True, "") == model_verdict(spec_with(domain=DOMAIN))
    both = spec_with(domain=DOMAIN, terraform={"vars": {"certificate_arn": "arn:aws:acm:us-east-1:1:certificate/x"}})
    server, model = server_verdict(both), model_verdict(both)
    assert not server[0] and not model[0]
    assert "leave certificate_arn out" in server[1] and "leave certificate_arn out" in model[1]
    for name in ("*.example.com", "example", "Rags.example.com", "rags.example.com."):
        wrong = spec_with(domain={**DOMAIN, "name": name})
        assert not server_verdict(wrong)[0] and not model_verdict(wrong)[0], name


def test_the_stack_gets_the_name_and_the_zone() -> None:
    module = load_module("stack", Settings().modules)
    app = LLMApp.from_body({"metadata": {"name": "rags", "namespace": "team-a", "uid": "u1"},
                            "spec": spec_with(domain=DOMAIN)})
    ws = render(app, Settings(), module)
    assert (ws.tfvars["domain_name"], ws.tfvars["domain_zone_id"]) == ("rags.example.com", "Z0123456789ABCDEFGHIJ")
    plain = render(LLMApp.from_body({"metadata": {"name": "rags", "namespace": "team-a", "uid": "u1"},
                                     "spec": spec_with()}), Settings(), module)
    assert (plain.tfvars["domain_name"], plain.tfvars["domain_zone_id"]) == ("", "")


def report(cert: tuple[bool, str, str] | None) -> Report:
    return Report(Outcome.APPLIED, "Applied", "ok", 2, infra_applied=True, certificate=cert)


def by_type(conds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in conds}


def test_the_condition_follows_the_certificate_and_goes_with_the_domain() -> None:
    pending = conditions.derive([], report((False, "PendingValidation", "waiting")), "t1")
    assert by_type(pending)[conditions.CERTIFICATE_ISSUED]["status"] == "False"
    assert certificate.waiting_for_certificate(pending, 2) and not certificate.waiting_for_certificate(pending, 3)
    kept = conditions.derive(pending, report(None), "t2")   # a pass that did not look keeps it
    assert by_type(kept)[conditions.CERTIFICATE_ISSUED] == by_type(pending)[conditions.CERTIFICATE_ISSUED]
    issued = conditions.derive(kept, report(certificate.issued(LLMApp.from_body(
        {"metadata": {"name": "a", "namespace": "b", "uid": "u"}, "spec": spec_with(domain=DOMAIN)}).spec.domain)),
        "t3")
    assert by_type(issued)[conditions.CERTIFICATE_ISSUED]["status"] == "True"
    assert by_type(issued)[conditions.CERTIFICATE_ISSUED]["lastTransitionTime"] == "t3"
    assert conditions.CERTIFICATE_ISSUED not in by_type(conditions.derive(issued, report(conditions.NO_DOMAIN), "t4"))
    assert conditions.CERTIFICATE_ISSUED not in by_type(conditions.derive([], report(conditions.NO_DOMAIN), "t4"))


def test_acm_s_answer_names_the_record_it_waits_for() -> None:
    state = state_of({"CertificateArn": "arn:c", "Status": "PENDING_VALIDATION", "DomainValidationOptions": [
        {"DomainName": "rags.example.com", "ResourceRecord": {"Name": "_x.rags.example.com.", "Type": "CNAME",
                                                              "Value": "_y.acm-validations.aws."}}]})
    assert state.pending and state.record == ("_x.rags.example.com.", "CNAME", "_y.acm-validations.aws.")
    domain = LLMApp.from_body({"metadata": {"name": "a", "namespace": "b", "uid": "u"},
                               "spec": spec_with(domain=DOMAIN)}).spec.domain
    assert domain is not None
    message = certificate.pending_message(domain, state, 300)
    assert "_x.rags.example.com." in message and "Z0123456789ABCDEFGHIJ" in message and "300 s" in message
    assert CertificateState("VALIDATION_TIMED_OUT").failed and not CertificateState("ISSUED").failed


def test_sign_in_needs_the_domain_and_a_prefix_cognito_accepts() -> None:
    auth = {"cognito": {}}
    assert server_verdict(spec_with(domain=DOMAIN, auth=auth)) == (True, "") == model_verdict(
        spec_with(domain=DOMAIN, auth=auth))
    without = spec_with(auth=auth)
    server, model = server_verdict(without), model_verdict(without)
    assert not server[0] and not model[0] and "spec.auth needs spec.domain" in server[1] + model[1]
    for prefix in ("my-aws-app", "amazonish", "cognito1", "-x", "Upper"):
        wrong = spec_with(domain=DOMAIN, auth={"cognito": {"domainPrefix": prefix}})
        assert not server_verdict(wrong)[0] and not model_verdict(wrong)[0], prefix
    module = load_module("stack", Settings().modules)
    app = LLMApp.from_body({"metadata": {"name": "rags", "namespace": "aws-team", "uid": "u1"},
                            "spec": spec_with(domain=DOMAIN, auth=auth)})
    prefix = render(app, Settings(), module).tfvars["sign_in"]["cognito_domain_prefix"]
    assert prefix.startswith("signin-") and "aws" not in prefix   # the namespace's "aws" is not in it
