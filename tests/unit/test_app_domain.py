"""spec.domain: refused at apply time where it cannot work, rendered for the stack, and the
CertificateIssued condition (pure; ACM and Terraform are in tests/integration/test_stack_features.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from llmapp_operator.api import conditions
from llmapp_operator.api.conditions import Outcome, Report
from llmapp_operator.api.spec import LLMApp, OidcSignIn
from llmapp_operator.api.workspace import render
from llmapp_operator.cloud.certificates import CertificateState, state_of
from llmapp_operator.cloud.sign_in import RuleView
from llmapp_operator.config import Settings
from llmapp_operator.engine import certificate, sign_in
from llmapp_operator.review.cost import estimate_monthly_cost, load_price_table
from llmapp_operator.runners.modules import load_module
from llmapp_sandbox.apiserver.errors import ApiError
from llmapp_sandbox.apiserver.store import WriteOptions
from tests.spec_samples import BASE
from tests.unit.test_crd import _store, model_verdict, server_verdict
from tests.unit.test_review import change, stack_plan

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


OIDC = {"issuer": "https://login.example.com", "authorizationEndpoint": "https://login.example.com/authorize",
        "tokenEndpoint": "https://login.example.com/token", "userInfoEndpoint": "https://login.example.com/userinfo",
        "clientId": "rags-app", "clientSecretRef": {"name": "oidc", "key": "secret"}}


def test_sign_in_is_cognito_or_oidc_and_the_oidc_secret_is_never_a_stack_input() -> None:
    for auth in ({}, {"cognito": {}, "oidc": OIDC}):
        both = spec_with(domain=DOMAIN, auth=auth)
        assert not server_verdict(both)[0] and not model_verdict(both)[0], auth
    oidc = spec_with(domain=DOMAIN, auth={"oidc": OIDC})
    assert server_verdict(oidc) == (True, "") == model_verdict(oidc)
    plain = spec_with(domain=DOMAIN, auth={"oidc": {**OIDC, "issuer": "http://login.example.com"}})
    assert not server_verdict(plain)[0] and not model_verdict(plain)[0]
    app = LLMApp.from_body({"metadata": {"name": "rags", "namespace": "team-a", "uid": "u1"}, "spec": oidc})
    tfvars = render(app, Settings(), load_module("stack", Settings().modules)).tfvars
    assert tfvars["sign_in"] == {"cognito_domain_prefix": None, "oidc": True}
    assert "oidc" not in json.dumps({k: v for k, v in tfvars.items() if k != "sign_in"})


def test_with_oidc_sign_in_the_port_cannot_change_at_apply_time() -> None:
    store = _store.__wrapped__()   # a store of its own: the cached one serves dry runs only
    kind = store.kinds[("llmops.dev", "v1alpha1", "llmapps")]
    body = {"apiVersion": "llmops.dev/v1alpha1", "kind": "LLMApp", "metadata": {"name": "a", "namespace": "team-a"},
            "spec": spec_with(domain=DOMAIN, auth={"oidc": OIDC})}
    store.create(kind, "team-a", body, WriteOptions())
    with pytest.raises(ApiError, match="containerPort cannot change"):
        store.update(kind, "team-a", "a", {"spec": {"app": {"containerPort": 8080}}}, "application/merge-patch+json",
                     None, WriteOptions(), replace=False)
    store.update(kind, "team-a", "a", {"spec": {"app": {"cpu": 2048, "memory": 4096}}},
                 "application/merge-patch+json", None, WriteOptions(), replace=False)   # the rest stays editable


def test_the_sign_in_rule_is_set_again_only_when_something_changed() -> None:
    wanted = sign_in.action_of(OidcSignIn.model_validate(OIDC))
    digest = sign_in.digest(wanted, "s3cret", "arn:tg", b"k" * 32)
    assert digest != sign_in.digest(wanted, "rotated", "arn:tg", b"k" * 32) != sign_in.digest(wanted, "s3cret",
                                                                                                "arn:tg")
    assert "s3cret" not in digest
    set_up = RuleView(oidc=wanted, forwards_to="arn:tg")
    assert not sign_in.needs_setting(wanted, digest, "arn:tg", set_up, {"digest": digest})
    assert sign_in.needs_setting(wanted, digest, "arn:tg", set_up, {"digest": "other"})        # a new secret
    assert sign_in.needs_setting(wanted, digest, "arn:tg2", set_up, {"digest": digest})        # a new group
    assert sign_in.needs_setting(wanted, digest, "arn:tg", RuleView(None, "arn:tg"), {"digest": digest})  # by hand


def test_the_estimate_lists_the_domain_s_records_and_the_user_pool() -> None:
    plan = stack_plan()
    plan["resource_changes"] += [change("", "aws_route53_record", "app", {"type": "A"}, index=0),
                                 change("module.acm", "aws_route53_record", "validation", {"type": "CNAME"}, index=0),
                                 change("", "aws_cognito_user_pool", "sign_in", {}, index=0)]
    table = load_price_table("eu-west-1")
    total, lines = estimate_monthly_cost(plan, table)
    assert "Route53 records (2): 0.00 USD" in lines and "Cognito user pool (1): 0.00 USD" in lines
    assert total == estimate_monthly_cost(stack_plan(), table)[0]   # both free at the baseline


def test_service_control_off_leaves_the_sign_in_rule_alone_too() -> None:
    from llmapp_operator.kopf_app.wiring import build_deps

    off = build_deps(Settings(service_control=False))
    assert off.sign_in is None and off.service is None
    assert build_deps(Settings()).sign_in is not None
