"""Messages that say what to do, for the failures users hit most: AWS credentials, a mistyped
region, quotas, a held state lock, an unexpected exception, and Terraform's terminal decorations."""

from __future__ import annotations

import copy
import re
from contextlib import AbstractContextManager
from types import SimpleNamespace
from typing import Any

import botocore.exceptions
import botocore.session
import pytest
from botocore.stub import Stubber

from llmapp_operator.api.conditions import Outcome
from llmapp_operator.api.errors import PermanentError, ReconcileError, TransientError
from llmapp_operator.api.regions import REGIONS
from llmapp_operator.api.spec import InvalidSpec, LLMApp, nearest_region
from llmapp_operator.cloud.clients import aws_errors, classify_client_error, identity_hint
from llmapp_operator.engine.worker import internal_error
from llmapp_operator.obs.redaction import MASK, Redactor
from llmapp_operator.runners.diagnostics import classify_failure, error_summary, plain_text
from tests.conftest import load_script
from tests.spec_samples import BASE, set_path
from tests.unit.test_crd import SPEC_SCHEMA, model_verdict, server_verdict
from tests.unit.test_terraform_parsing import LOCK_ERROR

gen_regions: Any = load_script("gen_regions")

REDACTOR = Redactor()
BOX = re.compile(r"[\u2500-\u257f]")


def errors(**kwargs: str) -> AbstractContextManager[None]:
    return aws_errors("state backend s3://b (us-east-1)", denied="StateBackendDenied",
                      unavailable="StateBackendUnavailable", denied_hint="the operator's AWS identity may not use it",
                      **kwargs)


def client_error(code: str, message: str = "", operation: str = "HeadBucket") -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": message}}, operation)


def raised(exc: BaseException) -> ReconcileError:
    with pytest.raises(ReconcileError) as caught, errors():
        raise exc
    return caught.value


# -- AWS credentials (boto3) ---------------------------------------------------------------------------
IRSA = {"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/llmapp-operator",
        "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}


def test_no_credentials_is_permanent_and_names_where_the_identity_comes_from(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    error = raised(botocore.exceptions.NoCredentialsError())
    assert isinstance(error, PermanentError) and error.reason == "AwsCredentialsMissing"
    assert "eks.amazonaws.com/role-arn" in error.message and "Pod Identity" in error.message
    assert "envFrom" in error.message and "s3://b" in error.message


def test_the_identity_hint_names_the_source_by_variable_names_never_a_value() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    static = identity_hint({"AWS_ACCESS_KEY_ID": "AKIA" + "EXAMPLEEXAMPLE12", "AWS_SECRET_ACCESS_KEY": secret,
                            "AWS_SESSION_TOKEN": "token-value-1234"})
    assert "static keys" in static and "AWS_SESSION_TOKEN" in static and "jobRunner.envSecret" in static
    assert secret not in static and "token-value-1234" not in static and "EXAMPLEEXAMPLE12" not in static
    irsa = identity_hint(IRSA)
    assert "IRSA" in irsa and IRSA["AWS_ROLE_ARN"] in irsa and "eks.amazonaws.com/role-arn" in irsa
    assert "Pod Identity" in identity_hint({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/c"})
    assert "AWS_PROFILE" in identity_hint({"AWS_PROFILE": "ops"})
    assert "no AWS identity configured" in identity_hint({})


@pytest.mark.parametrize("code,reason", [
    ("ExpiredToken", "AwsCredentialsExpired"), ("ExpiredTokenException", "AwsCredentialsExpired"),
    ("InvalidClientTokenId", "AwsCredentialsInvalid"), ("InvalidAccessKeyId", "AwsCredentialsInvalid"),
    ("SignatureDoesNotMatch", "AwsCredentialsInvalid"), ("UnrecognizedClientException", "AwsCredentialsInvalid"),
    ("InvalidIdentityToken", "AwsCredentialsInvalid"),
    ("AccessDenied", "StateBackendDenied"), ("AccessDeniedException", "StateBackendDenied"),
])
def test_refused_credentials_and_access_are_permanent(code: str, reason: str) -> None:
    error = raised(client_error(code))
    assert isinstance(error, PermanentError) and error.reason == reason and code in error.message
    if reason.startswith("AwsCredentials"):
        assert "identity" in error.message


def test_a_403_from_head_bucket_is_permanent_and_says_both_causes() -> None:
    """HeadBucket gets a bare 403 (no body, no code) for refused credentials and missing rights
    alike: through botocore's own parsing (Stubber), not a hand-made response."""
    s3 = botocore.session.get_session().create_client(
        "s3", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(s3) as stub:
        stub.add_client_error("head_bucket", service_error_code="403", http_status_code=403)
        with pytest.raises(PermanentError) as caught, errors():
            s3.head_bucket(Bucket="b")
    assert caught.value.reason == "StateBackendDenied"
    assert "403" in caught.value.message and "invalid or expired" in caught.value.message
    assert "may not use it" in caught.value.message


def test_throttling_network_and_credential_endpoints_stay_transient() -> None:
    for exc in (client_error("ThrottlingException"), client_error("TooManyRequestsException"),
                client_error("RequestLimitExceeded"), client_error("SlowDown"), client_error("InternalError"),
                botocore.exceptions.EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")):
        error = raised(exc)
        assert isinstance(error, TransientError) and error.reason == "StateBackendUnavailable", exc
    retrieval = raised(botocore.exceptions.CredentialRetrievalError(provider="container-role", error_msg="timeout"))
    assert isinstance(retrieval, TransientError) and "identity" in retrieval.message


# -- quotas ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", ["VpcLimitExceeded", "LimitExceededException", "ServiceQuotaExceededException",
                                  "TooManyBuckets", "AddressLimitExceeded"])
def test_a_reached_quota_is_permanent_and_quotes_which(code: str) -> None:
    error = classify_client_error("Secrets Manager (us-east-1)",
                                  {"Error": {"Code": code, "Message": "The maximum number of VPCs has been reached."}},
                                  denied="SecretsManagerDenied", unavailable="SecretsManagerUnavailable",
                                  denied_hint="x")
    assert isinstance(error, PermanentError) and error.reason == "QuotaExceeded"
    assert code in error.message and "maximum number of VPCs" in error.message and "Service Quotas" in error.message


# -- Terraform's stderr ---------------------------------------------------------------------------------
def box(*lines: str, colour: bool = False) -> str:
    """A diagnostic as Terraform prints it: framed (╷ │ ╵), with colour escapes unless -no-color."""
    red, bold, reset = ("\x1b[31m", "\x1b[1m", "\x1b[0m") if colour else ("", "", "")
    body = "\n".join(f"{red}│{reset} {bold if i == 0 else ''}{line}{reset if i == 0 else ''}"
                     for i, line in enumerate(lines))
    return f"{red}╷{reset}\n{body}\n{red}╵{reset}\n"


NO_CREDENTIALS = box("Error: No valid credential sources found", "",
                     '  with provider["registry.terraform.io/hashicorp/aws"],',
                     '  on providers.tf line 1, in provider "aws":', '   1: provider "aws" {', "",
                     "Please see https://registry.terraform.io/providers/hashicorp/aws",
                     "for more information about providing credentials.", "",
                     "Error: failed to refresh cached credentials, no EC2 IMDS role found, operation error ec2imds: "
                     "GetMetadata, request canceled, context deadline exceeded")
EXPIRED = box("Error: reading EC2 VPC (vpc-0abc): operation error EC2: DescribeVpcs, https response error "
              "StatusCode: 400, RequestID: 1, api error ExpiredToken: The security token included in the request "
              "is expired")
INVALID = box("Error: reading ECS Cluster: operation error ECS: DescribeClusters, https response error "
              "StatusCode: 400, api error UnrecognizedClientException: The security token included in the request "
              "is invalid.")
VPC_QUOTA = box("Error: creating EC2 VPC: operation error EC2: CreateVpc, https response error StatusCode: 400, "
                "RequestID: 2, api error VpcLimitExceeded: The maximum number of VPCs has been reached.", "",
                "  with module.vpc.aws_vpc.this[0],", colour=True)


def test_terraform_without_credentials_is_permanent_and_names_the_identity() -> None:
    error = classify_failure("init", NO_CREDENTIALS, REDACTOR)
    assert isinstance(error, PermanentError) and error.reason == "AwsCredentialsMissing"
    assert "eks.amazonaws.com/role-arn" in error.message and "jobRunner.envSecret" in error.message
    assert "No valid credential sources found" in error.message and "reconcile-requested-at" in error.message


def test_an_expired_token_is_permanent_for_the_pods_identity_and_retried_for_a_tenant_role() -> None:
    own = classify_failure("plan", EXPIRED, REDACTOR)
    assert isinstance(own, PermanentError) and own.reason == "AwsCredentialsExpired"
    tenant = classify_failure("apply", EXPIRED, REDACTOR, assumed_role=True)
    assert isinstance(tenant, TransientError) and tenant.reason == "AwsCredentialsExpired"
    assert "assumes the role again" in tenant.message and "sessionDurationSeconds" in tenant.message


def test_refused_credentials_in_terraform_are_permanent() -> None:
    error = classify_failure("plan", INVALID, REDACTOR)
    assert isinstance(error, PermanentError) and error.reason == "AwsCredentialsInvalid"
    legacy = classify_failure("plan", "Error: InvalidClientTokenId: The security token is invalid", REDACTOR)
    assert legacy.reason == "AwsCredentialsInvalid"


def test_a_quota_in_terraform_is_permanent_but_throttling_is_not() -> None:
    error = classify_failure("apply", VPC_QUOTA, REDACTOR)
    assert isinstance(error, PermanentError) and error.reason == "QuotaExceeded"
    assert "VpcLimitExceeded" in error.message and "maximum number of VPCs" in error.message
    assert "Service Quotas" in error.message
    for throttled in ("api error RequestLimitExceeded: Request limit exceeded.",
                      "api error ThrottlingException: Rate exceeded", "api error TooManyRequestsException: slow down"):
        retried = classify_failure("apply", box(f"Error: creating ECS Service: {throttled}"), REDACTOR)
        assert isinstance(retried, TransientError) and retried.reason == "TerraformFailed", throttled


def test_a_held_lock_says_who_what_since_when_and_the_unlock_command() -> None:
    error = classify_failure("plan", LOCK_ERROR, REDACTOR)
    assert isinstance(error, TransientError) and error.reason == "StateLocked"
    for fact in ("root@pod-1", "OperationTypeApply", "2026-11-24 21:00:00 UTC",
                 "5b3c0d8e-0000-4000-8000-000000000001", "bucket/llmapp/ns/name/terraform.tfstate",
                 "terraform force-unlock -force 5b3c0d8e-0000-4000-8000-000000000001"):
        assert fact in error.message, fact
    assert "RequestID" not in error.message and "Version" not in error.message


def test_a_lock_error_without_lock_info_is_still_retried() -> None:
    stderr = box("Error: Error acquiring the state lock", "", "Error message: operation error S3: PutObject, "
                 "https response error StatusCode: 0, RequestID: , request send failed, dial tcp: i/o timeout")
    error = classify_failure("plan", stderr, REDACTOR)
    assert isinstance(error, TransientError) and error.reason == "StateLocked"


def test_what_to_do_is_never_cut_off() -> None:
    """Status keeps 600 characters (engine/reconcile.failed): a long Terraform error is cut, the advice is not."""
    long = box("Error: No valid credential sources found " + "x" * 900)
    for stderr, kept in ((long, "reconcile-requested-at"), (EXPIRED, "reconcile-requested-at"),
                         (INVALID, "reconcile-requested-at"), (VPC_QUOTA, "reconcile-requested-at"),
                         (NO_CREDENTIALS, "jobRunner.envSecret"), (LOCK_ERROR, "force-unlock")):
        message = classify_failure("apply", stderr, REDACTOR).message
        assert len(message) <= 600 and kept in message, message
    assert len(classify_failure("apply", EXPIRED, REDACTOR, assumed_role=True).message) <= 600
    for env in ({}, IRSA, {"AWS_ACCESS_KEY_ID": "x", "AWS_SESSION_TOKEN": "y"}):
        assert len(f"state backend s3://{'b' * 63} (ap-southeast-4): InvalidClientTokenId: {identity_hint(env)}") < 600


def test_messages_have_no_colour_codes_and_no_box_drawing() -> None:
    for stderr in (VPC_QUOTA, NO_CREDENTIALS, box("Error: something odd", "  on main.tf line 3", colour=True),
                   "\x1b[31m│\x1b[0m no error line at all\n\x1b[31m╵\x1b[0m\n", LOCK_ERROR):
        message = classify_failure("apply", stderr, REDACTOR).message
        assert "\x1b" not in message and not BOX.search(message), message
    assert plain_text("\x1b]8;;https://x\x07link\x1b]8;;\x07 \x1b[1;31m│ a ╷\x1b[0m") == "link  a "


def test_the_summary_ends_with_its_diagnostic() -> None:
    two = box("Error: first problem", "  with a.b,") + box("Error: second problem")
    assert error_summary(two) == "Error: first problem with a.b,"


# -- region ------------------------------------------------------------------------------------------
def test_the_regions_are_botocores() -> None:
    """api/regions.py is generated (scripts/gen_regions.py, `make crd`). Every region it lists is one
    botocore knows; a newer botocore in the pinned range may know more, which `make crd` adds (failing
    here on those would turn a botocore release into a red CI for a change that did not touch it)."""
    assert set(REGIONS) <= set(gen_regions.botocore_regions())
    assert {"us-east-1", "eu-west-1", "us-gov-west-1", "cn-north-1"} <= set(REGIONS)
    assert SPEC_SCHEMA["properties"]["aws"]["properties"]["region"]["enum"] == list(REGIONS)


def test_a_mistyped_region_is_refused_at_apply_and_at_parse_naming_the_field_and_the_nearest() -> None:
    spec = copy.deepcopy(BASE)
    set_path(spec, ("aws", "region"), "us-esat-1")
    server, model = server_verdict(spec), model_verdict(spec)
    assert not server[0] and 'spec.aws.region: Unsupported value: "us-esat-1"' in server[1]
    assert '"us-east-1"' in server[1]
    assert not model[0] and "spec.aws.region" in model[1] and "did you mean us-east-1?" in model[1]
    assert "us-esat-1" not in model[1]   # the operator's messages never echo a value
    with pytest.raises(InvalidSpec, match="e.g. us-east-1"):
        LLMApp.from_body({"metadata": {}, "spec": {**BASE, "aws": {"region": "zz-nowhere-9"}}})


@pytest.mark.parametrize("typed,meant", [("us-esat-1", "us-east-1"), ("eu-wset-1", "eu-west-1"),
                                         ("eu-centrl-1", "eu-central-1"), ("us-gov-wets-1", "us-gov-west-1"),
                                         ("ap-southeast-9", "ap-southeast-1"), ("qq-qqqqqq-9", None)])
def test_the_nearest_region(typed: str, meant: str | None) -> None:
    assert nearest_region(typed) == meant


# -- an unexpected exception -------------------------------------------------------------------------
def test_an_unexpected_exception_reaches_status_and_a_warning_event_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmapp_operator.kopf_app import handlers

    secret = "sk-internal-" + "q" * 24
    redactor = Redactor()
    redactor.register(["hunter2-registered"])
    result = internal_error(KeyError(f"no key in {{'token': '{secret}', 'pw': 'hunter2-registered'}}\nline two"), 3,
                            redactor=redactor)
    assert result.report.reason == "InternalError" and result.report.outcome is Outcome.RETRYING and result.transient
    message = result.report.message
    assert message.startswith("unexpected KeyError: ") and "\n" not in message
    assert secret not in message and "hunter2-registered" not in message and MASK in message

    events: list[tuple[str, str, str]] = []
    monkeypatch.setattr(handlers.kopf, "event", lambda body, *, type, reason, message: events.append(
        (type, reason, message)))
    written: list[dict[str, Any]] = []

    class Client:
        async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
            written.append(patch)

    deps = SimpleNamespace(clock=lambda: "2026-12-01T10:00:00Z")
    publisher = handlers.KopfPublisher(deps, Client())  # type: ignore[arg-type]
    body = {"metadata": {"namespace": "ns", "name": "a", "uid": "u", "generation": 3}, "status": {}}

    import asyncio
    asyncio.run(publisher.status(body, result, final=True))
    assert events and events[-1][:2] == ("Warning", "InternalError") and events[-1][2] == message
    (patch,) = written
    assert patch["lastError"] == message
    ready = next(c for c in patch["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InternalError"
    for text in (str(patch), str(events)):
        assert secret not in text and "hunter2-registered" not in text


def test_an_aws_error_code_ending_in_token_is_not_masked_but_token_values_are() -> None:
    from llmapp_operator.obs.redaction import REDACTOR
    assert REDACTOR.redact("ExpiredToken: The security token included in the request is expired") == (
        "ExpiredToken: The security token included in the request is expired")
    assert REDACTOR.redact("session_token=abcdef x-amz-security-token: QQQ") == (
        "session_token=*** x-amz-security-token: ***")
