"""boto3 clients with bounded retries, and one mapping of AWS failures to retry classes and to
messages that say what to do."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from llmapp_operator.api.errors import (
    CREDENTIALS_EXPIRED,
    CREDENTIALS_INVALID,
    CREDENTIALS_MISSING,
    QUOTA_EXCEEDED,
    PermanentError,
    TransientError,
)


@functools.lru_cache(maxsize=64)
def client(service: str, region: str, endpoint_url: str | None, *, quick: bool = False) -> Any:
    """A boto3 client with bounded retries and timeouts: a slow AWS must not stall the loop.
    `quick` is for look-ups that may simply give up (one attempt, short timeouts), so a backend
    that does not answer never ties up the worker threads.

    Cached: creating a client costs tens of milliseconds, and boto3 clients are thread-safe.
    """
    config = (Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=3) if quick
              else Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=20))
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=endpoint_url,
        config=config,
    )


@contextlib.contextmanager
def aws_errors(what: str, *, denied: str, unavailable: str, denied_hint: str) -> Iterator[None]:
    """One mapping of AWS failures to what a user must do: missing, expired or rejected credentials,
    access denied and a reached quota are permanent (a person must act; the Stalled recheck looks
    again); throttling, network and everything else is retried."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        raise classify_client_error(what, exc.response, denied=denied, unavailable=unavailable,
                                    denied_hint=denied_hint) from None
    except botocore.exceptions.ParamValidationError:
        # Our own request is malformed (e.g. an invalid bucket name in the settings): retrying cannot help.
        raise PermanentError(f"{what}: invalid request parameters (check the names in the settings)",
                             reason="InvalidAwsRequest") from None
    except (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError) as exc:
        raise PermanentError(f"{what}: {type(exc).__name__}: no usable AWS credentials. {identity_hint()}",
                             reason=CREDENTIALS_MISSING) from None
    except (botocore.exceptions.BotoCoreError, OSError) as exc:
        # CredentialRetrievalError stays here: the web-identity, Pod Identity or metadata endpoint
        # may simply not answer for a moment. It names where the identity comes from all the same.
        where = f". {identity_hint()}" if isinstance(exc, botocore.exceptions.CredentialRetrievalError) else ""
        raise TransientError(f"{what} unreachable: {type(exc).__name__}{where}", reason=unavailable) from None


_DENIED = {"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "UnauthorizedOperation"}
# The key (or the token of a web identity) is unknown to AWS or its signature is wrong.
_CREDENTIALS_INVALID = {"InvalidAccessKeyId", "InvalidClientTokenId", "UnrecognizedClientException",
                        "SignatureDoesNotMatch", "AuthFailure", "InvalidIdentityToken", "IDPRejectedClaim"}
# Permanent, tenant roles included: every boto3 client here acts as the pod's own identity, never
# as a tenant's assumed session (those reach Terraform only: runners/diagnostics.py, where an
# expired tenant session is retried, since cloud/sts.py assumes the role again). botocore renews
# refreshable credentials (IRSA, Pod Identity, assumed-role profiles) before they expire, so an
# expired token here is a static session token from the environment, which only a person renews.
_CREDENTIALS_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"}
# Rate limits, not quotas: retried (EC2's RequestLimitExceeded is its throttling code).
_THROTTLING = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
               "RequestThrottled", "RequestThrottledException", "ThrottledException", "SlowDown",
               "ProvisionedThroughputExceededException", "BandwidthLimitExceeded", "PriorRequestNotComplete"}
_QUOTAS = {"ServiceQuotaExceededException", "QuotaExceededException", "TooManyBuckets"}


def is_quota_code(code: str) -> bool:
    """`VpcLimitExceeded`, `LimitExceededException`, `ServiceQuotaExceededException`… but no throttling."""
    if code in _THROTTLING:
        return False
    return code in _QUOTAS or code.endswith(("LimitExceeded", "LimitExceededException"))


def classify_client_error(what: str, response: Mapping[str, Any], *, denied: str, unavailable: str,
                          denied_hint: str) -> PermanentError | TransientError:
    """An AWS error response (botocore's `ClientError.response`) as the error a user can act on."""
    error = response.get("Error") or {}
    code = str(error.get("Code") or "")
    aws_message = " ".join(str(error.get("Message") or "").split())[:300]
    if code in _CREDENTIALS_EXPIRED:
        return PermanentError(f"{what}: {code}: the AWS credentials have expired. "
                              f"{identity_hint()}", reason=CREDENTIALS_EXPIRED)
    if code in _CREDENTIALS_INVALID:
        return PermanentError(f"{what}: {code}: AWS does not accept the credentials (unknown or deleted key, "
                              f"wrong secret). {identity_hint()}", reason=CREDENTIALS_INVALID)
    if code in _DENIED:
        return PermanentError(f"{what}: {code}: {denied_hint}", reason=denied)
    if code == "403":
        # A HEAD request (HeadBucket, HeadObject) gets a bare 403: no error code says whether the
        # identity lacks the permission or its credentials are refused.
        return PermanentError(f"{what}: HTTP 403 (a HEAD request: AWS gives no reason): {denied_hint}; or the "
                              f"credentials are invalid or expired. {identity_hint()}", reason=denied)
    if is_quota_code(code):
        said = f" ({aws_message})" if aws_message else ""
        return PermanentError(f"{what}: {code}: an AWS quota is reached{said}. Retrying cannot help: ask for an "
                              "increase (Service Quotas) or free capacity, then annotate the LLMApp with "
                              "llmops.dev/reconcile-requested-at (or wait for the Stalled recheck)",
                              reason=QUOTA_EXCEEDED)
    return TransientError(f"{what}: {code}", reason=unavailable)


def identity_hint(env: Mapping[str, str] | None = None) -> str:
    """Where this pod's AWS identity comes from, as botocore's credential chain would find it,
    by the names of the variables only: never a key or token."""
    env = os.environ if env is None else env
    if env.get("AWS_ACCESS_KEY_ID"):
        token = " and AWS_SESSION_TOKEN" if env.get("AWS_SESSION_TOKEN") else ""
        return (f"The pod's AWS identity is static keys in its environment (AWS_ACCESS_KEY_ID{token}: the chart's "
                "envFrom/extraEnv, or jobRunner.envSecret for Jobs): replace them in that Secret, or use IRSA or "
                "EKS Pod Identity, which renew themselves")
    if env.get("AWS_PROFILE"):
        return (f"The pod's AWS identity is the profile {env['AWS_PROFILE']} (AWS_PROFILE): check its credentials "
                "in AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE")
    if env.get("AWS_ROLE_ARN") and env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return (f"The pod's AWS identity is IRSA, role {env['AWS_ROLE_ARN']} (the ServiceAccount annotation "
                "eks.amazonaws.com/role-arn): check that the role exists and trusts the cluster's OIDC provider "
                "for this ServiceAccount")
    if env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") or env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        return ("The pod's AWS identity is EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI): check the "
                "association of its ServiceAccount with a role (aws eks list-pod-identity-associations)")
    return ("The pod has no AWS identity configured: annotate its ServiceAccount with eks.amazonaws.com/role-arn "
            "(IRSA: the chart's serviceAccount.annotations), associate it with a role through EKS Pod Identity, or "
            "give it AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from a Secret (the chart's envFrom)")
