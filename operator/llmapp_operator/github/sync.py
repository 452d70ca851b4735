"""The GitHub glue: make the app repository's environment hold what its own CI/CD needs.

Idempotent: a salted digest of the desired names and values is kept in status; an equal digest
makes no request at all. Otherwise the environment is created if missing, variables are upserted
(written only when their value differs), secrets are sealed with the environment's public key
and written, and names this operator managed before but no longer wants are deleted. Names it
never created are never touched. PyGithub is synchronous, so every call runs in a thread.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import github
from github import Auth, Github, GithubException

from llmapp_operator.api.errors import PermanentError, TransientError

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DIGEST_SALT = b"llmapp-operator/github-sync/v1\0"
T = TypeVar("T")


@dataclass(frozen=True)
class GitHubTarget:
    repository: str           # owner/name
    environment: str
    api_url: str              # https://api.github.com or https://HOST/api/v3
    token: str = field(repr=False)
    ca_bundle: str | None = None   # a private CA (GitHub Enterprise Server); None: the system's
    digest_key: bytes = field(default=b"", repr=False)   # the install's key for status.github.digest


def host_allowed(api_url: str, allowed: Sequence[str]) -> bool:
    """`https://` to a host on the platform's list (`host` means port 443, `host:port` that port,
    `host:*` any port): the token goes nowhere else (not to plain HTTP, not to a metadata address,
    not to a tenant's server)."""
    url = urllib.parse.urlsplit(api_url)
    if url.scheme != "https" or not url.hostname:
        return False
    host, port = url.hostname.lower(), str(url.port or 443)
    for entry in allowed:
        name, _, entry_port = entry.lower().partition(":")
        if name == host and (entry_port or "443") in (port, "*"):
            return True
    return False


def require_allowed_host(api_url: str, allowed: Sequence[str]) -> None:
    if not host_allowed(api_url, allowed):
        raise PermanentError(f"GitHub API {api_url} is not allowed: the operator sends tokens only over https to "
                             f"{', '.join(allowed) or 'no host'} (LLMAPP_GITHUB_HOSTS)", reason="GitHubHostNotAllowed")


@dataclass(frozen=True)
class DesiredGitHubState:
    variables: Mapping[str, str]
    secrets: Mapping[str, str] = field(repr=False)   # plaintext values; never logged


@dataclass(frozen=True)
class GitHubSyncRecord:
    """What status.github keeps: names and a digest, never values."""

    environment: str
    variables: tuple[str, ...]
    secrets: tuple[str, ...]
    digest: str
    created_environment: bool
    synced_at: str


def validate_names(desired: DesiredGitHubState) -> None:
    """GitHub's rule for variable and secret names, checked before any request."""
    for kind, names in (("variable", desired.variables), ("secret", desired.secrets)):
        for name in names:
            if not NAME_PATTERN.match(name) or name.upper().startswith("GITHUB_"):
                raise PermanentError(
                    f"GitHub {kind} name {name!r} is invalid: letters, digits and underscores, "
                    "not starting with a digit or GITHUB_", reason="GitHubInvalidName")


def desired_digest(desired: DesiredGitHubState, environment: str, key: bytes = b"") -> str:
    """HMAC-SHA256 with the install's key over environment, names and values (pure): status shows
    it, and without the key nobody can test guesses of a secret against it offline. No key (a
    local run without LLMAPP_DIGEST_KEY): a salted SHA-256, which guards less."""
    parts = [environment.encode() + b"\0"]
    for kind, items in (("v", desired.variables), ("s", desired.secrets)):
        for name in sorted(items):
            parts.append(f"{kind}\0{name}\0".encode() + items[name].encode() + b"\0")
    payload = b"".join(parts)
    if key:
        return "hmac-sha256:" + hmac.new(key, payload, hashlib.sha256).hexdigest()[:32]
    return "sha256:" + hashlib.sha256(_DIGEST_SALT + payload).hexdigest()[:32]


def classify(exc: GithubException, what: str, now: Callable[[], float] = time.time) -> TransientError | PermanentError:
    """How a GitHub error retries. `what` names the operation, never a value."""
    status = exc.status
    headers = {key.lower(): value for key, value in (exc.headers or {}).items()}
    if status == 401:
        return PermanentError(f"GitHub rejected the token while {what} (401): check tokenSecretRef",
                              reason="GitHubUnauthorized")
    if status == 429 or (status == 403 and (headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers)):
        if "retry-after" in headers:
            delay = float(headers["retry-after"])
        elif "x-ratelimit-reset" in headers:
            delay = float(headers["x-ratelimit-reset"]) - now()
        else:
            delay = 60.0
        return TransientError(f"GitHub rate limit while {what}; retrying later", reason="GitHubRateLimited",
                              delay=min(max(delay, 1.0), 3600.0))
    if status == 403:
        return PermanentError(f"GitHub token may not do this ({what}, 403): it needs admin rights on the "
                              "repository's environments, variables and secrets", reason="GitHubForbidden")
    if status == 404:
        return PermanentError(f"GitHub: not found while {what} (404): the repository does not exist or "
                              "the token cannot see it", reason="GitHubNotFound")
    if status == 422:
        return PermanentError(f"GitHub refused the request while {what} (422)", reason="GitHubInvalidName")
    return TransientError(f"GitHub answered {status} while {what}", reason="GitHubUnavailable")


def _client(target: GitHubTarget) -> Github:
    # Our own retry policy decides (backoff in the reconcile loop); PyGithub must not sleep.
    return Github(auth=Auth.Token(target.token), base_url=target.api_url.rstrip("/"), timeout=20, retry=None,
                  per_page=100, seconds_between_requests=None, seconds_between_writes=None,
                  verify=target.ca_bundle or True)


async def _call(what: str, fn: Callable[[], T]) -> T:
    try:
        return await asyncio.to_thread(fn)
    except GithubException as exc:
        raise classify(exc, what) from None
    except OSError as exc:  # connection refused, DNS, TLS: the network, not the request
        raise TransientError(f"GitHub unreachable while {what}: {type(exc).__name__}",
                             reason="GitHubUnavailable") from None
    except Exception as exc:  # requests' own errors (timeouts, connection resets) are not OSError
        if type(exc).__module__.startswith(("requests", "urllib3")):
            raise TransientError(f"GitHub unreachable while {what}: {type(exc).__name__}",
                                 reason="GitHubUnavailable") from None
        raise


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def sync(target: GitHubTarget, desired: DesiredGitHubState,
               previous: GitHubSyncRecord | None) -> GitHubSyncRecord:
    validate_names(desired)
    digest = desired_digest(desired, target.environment, target.digest_key)
    if previous is not None and previous.digest == digest and previous.environment == target.environment:
        return previous  # nothing changed: not a single request

    created = await _call(f"syncing environment {target.environment!r} of {target.repository}",
                          lambda: _sync_blocking(target, desired, previous))
    carried = previous is not None and previous.environment == target.environment and previous.created_environment
    return GitHubSyncRecord(
        environment=target.environment,
        variables=tuple(sorted(desired.variables)),
        secrets=tuple(sorted(desired.secrets)),
        digest=digest,
        created_environment=created or carried,
        synced_at=_now(),
    )


def _sync_blocking(target: GitHubTarget, desired: DesiredGitHubState, previous: GitHubSyncRecord | None) -> bool:
    gh = _client(target)
    repo = gh.get_repo(target.repository)
    existing = {env.name for env in repo.get_environments()}
    created = target.environment not in existing
    env = repo.create_environment(target.environment) if created else repo.get_environment(target.environment)

    current = {variable.name: variable.value for variable in env.get_variables()}
    for name, value in sorted(desired.variables.items()):
        if name not in current:
            env.create_variable(name, value)
        elif current[name] != value:
            env.get_variable(name).edit(value)
    for name, value in sorted(desired.secrets.items()):
        env.create_secret(name, value)  # sealed with the environment's public key by PyGithub

    if previous is not None and previous.environment == target.environment:
        for name in sorted(set(previous.variables) - set(desired.variables)):
            env.delete_variable(name)
        for name in sorted(set(previous.secrets) - set(desired.secrets)):
            env.delete_secret(name)
    return created


async def remove(target: GitHubTarget, record: GitHubSyncRecord) -> None:
    """Delete exactly what the record says we manage; the environment only if we created it and
    it holds nothing else."""
    await _call("removing the synced variables and secrets", lambda: _remove_blocking(target, record))


def _remove_blocking(target: GitHubTarget, record: GitHubSyncRecord) -> None:
    gh = _client(target)
    try:
        repo = gh.get_repo(target.repository)
    except github.UnknownObjectException:
        return  # the repository is gone: so is everything in it
    try:
        env = repo.get_environment(record.environment)
    except github.UnknownObjectException:
        return  # the environment is gone (deleted by hand, or a retry after we deleted it): done
    for name in record.variables:
        env.delete_variable(name)  # False on 404: already gone, fine
    for name in record.secrets:
        env.delete_secret(name)
    if record.created_environment:
        try:
            left = env.get_variables().totalCount + env.get_secrets().totalCount
        except github.UnknownObjectException:
            return
        if left == 0:
            repo.delete_environment(record.environment)
