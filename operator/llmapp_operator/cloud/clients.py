"""boto3 clients with bounded retries, and one mapping of AWS failures to retry classes."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from llmapp_operator.api.errors import PermanentError, TransientError


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
    """One mapping of AWS failures: access denied is permanent, everything else is retried."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _DENIED:
            raise PermanentError(f"{what}: {code}: {denied_hint}", reason=denied) from None
        raise TransientError(f"{what}: {code}", reason=unavailable) from None
    except botocore.exceptions.ParamValidationError:
        # Our own request is malformed (e.g. an invalid bucket name in the settings): retrying cannot help.
        raise PermanentError(f"{what}: invalid request parameters (check the names in the settings)",
                             reason="InvalidAwsRequest") from None
    except (botocore.exceptions.BotoCoreError, OSError) as exc:
        raise TransientError(f"{what} unreachable: {type(exc).__name__}", reason=unavailable) from None


_DENIED = {"AccessDenied", "AccessDeniedException", "InvalidAccessKeyId", "SignatureDoesNotMatch",
           "UnrecognizedClientException", "InvalidClientTokenId", "AllAccessDisabled"}


