"""The GitHub glue: make the app repository's environment hold what its own CI/CD needs.

Idempotent: a keyed digest of the desired names and values is kept in status; an equal digest
makes no request at all. Otherwise the environment is created if missing, variables are upserted
(written only when their value differs), secrets are sealed with the environment's public key
and written, and names this operator managed before but no longer wants are deleted. Names it
never created are never touched. PyGithub is synchronous, so every call runs in a thread.

GitHub as it behaves (GitHub's REST description and docs, PyGithub 2.x's source):
- names are case-insensitive and stored upper-case, so they are compared and sent upper-case;
- an environment holds at most 100 variables and 100 secrets, a value at most 48 KB: checked
  before the first request;
- PyGithub's `delete_variable`/`delete_secret` return False for every answer but 204, 403, 429
  and 500 included; deletes go through the requester, which raises, and 404 means gone;
- a 403 is a secondary rate limit when GitHub says so (wait `retry-after`, else a minute), else a
  missing permission, named from `x-accepted-github-permissions` when GitHub sends it.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import github
from github import Auth, Github, GithubException

from llmapp_operator.api.digests import keyed_digest
from llmapp_operator.api.errors import PermanentError, TransientError

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_PER_ENVIRONMENT = 100      # variables, and secrets, per environment
MAX_VALUE_BYTES = 48 * 1024    # a secret's (and a variable's) value
SECONDARY_LIMIT_WAIT = 60.0    # GitHub: without retry-after, wait at least a minute
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
    """GitHub's rules for names, counts and sizes, checked before any request: found at sync time
    after the AWS apply would be too late for a clear answer."""
    for kind, items in (("variable", desired.variables), ("secret", desired.secrets)):
        for name in items:
            if not NAME_PATTERN.match(name) or name.upper().startswith("GITHUB_"):
                raise PermanentError(
                    f"GitHub {kind} name {name!r} is invalid: letters, digits and underscores, "
                    "not starting with a digit or GITHUB_", reason="GitHubInvalidName")
        folded = [name.upper() for name in items]
        twice = sorted({name for name in folded if folded.count(name) > 1})
        if twice:
            raise PermanentError(f"GitHub {kind} names are case-insensitive; used twice: {', '.join(twice)}",
                                 reason="GitHubInvalidName")
        if len(items) > MAX_PER_ENVIRONMENT:
            raise PermanentError(f"{len(items)} GitHub {kind}s: an environment holds at most {MAX_PER_ENVIRONMENT}",
                                 reason="GitHubLimitExceeded")
        large = sorted(name for name, value in items.items() if len(value.encode()) > MAX_VALUE_BYTES)
        if large:
            raise PermanentError(f"GitHub {kind} {', '.join(large)}: a value may hold at most 48 KB",
                                 reason="GitHubLimitExceeded")


def desired_digest(desired: DesiredGitHubState, environment: str, key: bytes = b"") -> str:
    """HMAC-SHA256 with the install's key over environment, names and values (pure): status shows
    it, and without the key nobody can test guesses of a secret against it offline. No key (a
    local run without LLMAPP_DIGEST_KEY): a salted SHA-256, which guards less."""
    parts = [environment.encode() + b"\0"]
    for kind, items in (("v", desired.variables), ("s", desired.secrets)):
        for name in sorted(items):
            parts.append(f"{kind}\0{name}\0".encode() + items[name].encode() + b"\0")
    return keyed_digest(b"".join(parts), key, _DIGEST_SALT)


def classify(exc: GithubException, what: str, now: Callable[[], float] = time.time) -> TransientError | PermanentError:
    """How a GitHub error retries. `what` names the operation, never a value."""
    status = exc.status
    headers = {key.lower(): value for key, value in (exc.headers or {}).items()}
    said = _message(exc)
    if status == 401:
        return PermanentError(f"GitHub rejected the token while {what} (401): check tokenSecretRef",
                              reason="GitHubUnauthorized")
    primary = headers.get("x-ratelimit-remaining") == "0"
    secondary = "secondary rate limit" in said.lower()
    if status == 429 or (status == 403 and (primary or secondary or "retry-after" in headers)):
        if "retry-after" in headers:
            delay = float(headers["retry-after"])
        elif primary and "x-ratelimit-reset" in headers:
            delay = float(headers["x-ratelimit-reset"]) - now()
        else:
            delay = SECONDARY_LIMIT_WAIT
        return TransientError(f"GitHub rate limit while {what}; retrying later", reason="GitHubRateLimited",
                              delay=min(max(delay, 1.0), 3600.0))
    if status == 403:
        needed = headers.get("x-accepted-github-permissions")
        detail = (f"GitHub says it needs {needed}" if needed else
                  "a fine-grained token needs Environments, Variables and Secrets read/write and Metadata read "
                  "(Administration write to create or delete the environment); a classic token the repo scope")
        return PermanentError(f"the GitHub token may not do this ({what}, 403): {detail}", reason="GitHubForbidden")
    if status == 404:
        return PermanentError(f"GitHub: not found while {what} (404): the repository does not exist or "
                              "the token cannot see it", reason="GitHubNotFound")
    if status == 422:
        return PermanentError(f"GitHub refused the request while {what} (422){': ' + said if said else ''}",
                              reason="GitHubRejected")
    return TransientError(f"GitHub answered {status} while {what}", reason="GitHubUnavailable")


def _message(exc: GithubException) -> str:
    """GitHub's own error message (names, limits; never a value we sent), shortened."""
    data = exc.data if isinstance(exc.data, Mapping) else {}
    return str(data.get("message") or "")[:200]


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
        variables=tuple(sorted(upper(desired.variables))),   # as GitHub stores them
        secrets=tuple(sorted(upper(desired.secrets))),
        digest=digest,
        created_environment=created or carried,
        synced_at=_now(),
    )


def _sync_blocking(target: GitHubTarget, desired: DesiredGitHubState, previous: GitHubSyncRecord | None) -> bool:
    gh = _client(target)
    repo = gh.get_repo(target.repository)
    # A GET and its 404, not a list of environments: listing needs the Actions permission too.
    try:
        env, created = repo.get_environment(target.environment), False
    except github.UnknownObjectException:
        env, created = repo.create_environment(target.environment), True

    current = {variable.name.upper(): variable.value for variable in env.get_variables()}
    for name, value in sorted(upper(desired.variables).items()):
        if name not in current:
            env.create_variable(name, value)
        elif current[name] != value:
            env.get_variable(name).edit(value)
    for name, value in sorted(upper(desired.secrets).items()):
        env.create_secret(name, value)  # sealed with the environment's public key by PyGithub

    if previous is not None and previous.environment == target.environment:
        for name in sorted(upper_names(previous.variables) - set(upper(desired.variables))):
            _delete(gh, f"{env.url}/variables/{urllib.parse.quote(name)}")
        for name in sorted(upper_names(previous.secrets) - set(upper(desired.secrets))):
            _delete(gh, f"{env.url}/secrets/{urllib.parse.quote(name)}")
    return created


def upper(items: Mapping[str, str]) -> dict[str, str]:
    return {name.upper(): value for name, value in items.items()}


def upper_names(names: Sequence[str]) -> set[str]:
    return {name.upper() for name in names}


def _delete(gh: Github, url: str) -> bool:
    """DELETE through PyGithub's requester, which raises for a failure (its `delete_variable` and
    `delete_secret` return False for 403, 429 and 500 alike). False: it was gone already (404)."""
    try:
        gh.requester.requestJsonAndCheck("DELETE", url)
    except github.UnknownObjectException:
        return False
    return True


async def remove(target: GitHubTarget, record: GitHubSyncRecord) -> None:
    """Delete exactly what the record says we manage; the environment only if we created it and
    it holds nothing else."""
    await _call("removing the synced variables and secrets", lambda: _remove_blocking(target, record))


def _remove_blocking(target: GitHubTarget, record: GitHubSyncRecord) -> None:
    gh = _client(target)
    # A 404 for the repository may be a token that lost access, not a deleted repository: that is
    # GitHubNotFound, which the teardown reports as left behind instead of calling it done.
    repo = gh.get_repo(target.repository)
    try:
        env = repo.get_environment(record.environment)
    except github.UnknownObjectException:
        return  # the environment is gone (deleted by hand, or a retry after we deleted it): done
    for name in sorted(upper_names(record.variables)):
        _delete(gh, f"{env.url}/variables/{urllib.parse.quote(name)}")   # a 404 is already gone
    for name in sorted(upper_names(record.secrets)):
        _delete(gh, f"{env.url}/secrets/{urllib.parse.quote(name)}")
    if record.created_environment:
        try:
            left = env.get_variables().totalCount + env.get_secrets().totalCount
        except github.UnknownObjectException:
            return
        if left == 0:
            repo.delete_environment(record.environment)
