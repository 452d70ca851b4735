"""github_sync with the real PyGithub client against the GitHub emulator on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from llmapp_operator.api.errors import PermanentError, TransientError
from llmapp_operator.github.sync import (
    DesiredGitHubState,
    GitHubTarget,
    desired_digest,
    host_allowed,
    remove,
    require_allowed_host,
    sync,
)
from llmapp_sandbox.github_emulator import GitHubEmulator, running_github, sandbox_ca_file
from tests.secrets_scan import secret_for_tests

TOKEN = secret_for_tests("fake-github-token-for-tests-0001")
REPO = "acme/rags"
SECRET = secret_for_tests("fake-openai-value-for-tests-0002")
DESIRED = DesiredGitHubState(
    variables={"ECS_CLUSTER": "c1", "ECS_SERVICE": "s1", "AWS_REGION": "us-east-1"},
    secrets={"OPENAI_KEY": SECRET},
)


@pytest.fixture
async def github() -> AsyncIterator[tuple[GitHubEmulator, GitHubTarget]]:
    emulator = GitHubEmulator(tokens={TOKEN: {REPO}})
    emulator.add_repository(REPO)
    emulator.add_repository("acme/other")
    async with running_github(emulator) as url:
        yield emulator, GitHubTarget(repository=REPO, environment="dev", api_url=url, token=TOKEN,
                                     ca_bundle=str(sandbox_ca_file()))


async def test_first_sync_creates_environment_variables_and_sealed_secrets(github) -> None:  # type: ignore[no-untyped-def]
    emulator, target = github
    record = await sync(target, DESIRED, None)
    assert emulator.environments(REPO) == {"dev"}
    assert emulator.environment_variables(REPO, "dev") == dict(DESIRED.variables)
    assert emulator.environment_secrets(REPO, "dev") == {"OPENAI_KEY": SECRET}  # decrypted on arrival
    assert record.created_environment and record.secrets == ("OPENAI_KEY",)
    assert record.digest == desired_digest(DESIRED, "dev")
    assert SECRET not in repr(record)


async def test_second_sync_with_same_state_makes_no_request(github) -> None:  # type: ignore[no-untyped-def]
    emulator, target = github
    record = await sync(target, DESIRED, None)
    count = len(emulator.requests)
    again = await sync(target, DESIRED, record)
    assert again == record and len(emulator.requests) == count


async def test_changed_value_writes_only_that_variable_and_removed_names_go(github) -> None:  # type: ignore[no-untyped-def]
    emulator, target = github
    record = await sync(target, DESIRED, None)
    emulator.environment_variables(REPO, "dev")
    emulator.repos[REPO].environments["dev"].variables["UNMANAGED"] = "keep-me"
    changed = DesiredGitHubState(variables={"ECS_CLUSTER": "c2", "ECS_SERVICE": "s1"}, secrets={})
    before = len(emulator.writes())
    await sync(target, changed, record)
    writes = emulator.writes()[before:]
    variable_writes = [w for w in writes if "/variables" in w[1]]
    assert ("PATCH", f"/repos/{REPO}/environments/dev/variables/ECS_CLUSTER", 204) in variable_writes
    assert ("DELETE", f"/repos/{REPO}/environments/dev/variables/AWS_REGION", 204) in variable_writes
    assert len(variable_writes) == 2
    assert emulator.environment_variables(REPO, "dev") == {"ECS_CLUSTER": "c2", "ECS_SERVICE": "s1",
                                                          "UNMANAGED": "keep-me"}
    assert emulator.environment_secrets(REPO, "dev") == {}


async def test_remove_deletes_exactly_what_was_created(github) -> None:  # type: ignore[no-untyped-def]
    emulator, target = github
    record = await sync(target, DESIRED, None)
    await remove(target, record)
    assert emulator.environments(REPO) == set()

    # An environment that existed before, or holds foreign names, stays.
    emulator.repos[REPO].environments["dev"] = type(emulator.repos[REPO].scope)(variables={"MINE": "x"})
    record = await sync(target, DESIRED, None)
    assert not record.created_environment
    await remove(target, record)
    assert emulator.environment_variables(REPO, "dev") == {"MINE": "x"}


async def test_remove_from_an_environment_already_gone_is_done(github) -> None:  # type: ignore[no-untyped-def]
    emulator, target = github
    record = await sync(target, DESIRED, None)
    del emulator.repos[REPO].environments["dev"]   # deleted by hand, or our own earlier try
    await remove(target, record)                  # no error: nothing is left to remove
    assert emulator.environments(REPO) == set()


async def test_pagination_over_many_variables(github) -> None:  # type: ignore[no-untyped-def]
    emulator, target = github
    many = DesiredGitHubState(variables={f"VAR_{i:03d}": str(i) for i in range(130)}, secrets={})
    record = await sync(target, many, None)
    count = len(emulator.writes())
    # A new desired value for the last one: only it is written, found past the first page.
    changed = DesiredGitHubState(variables={**many.variables, "VAR_129": "new"}, secrets={})
    await sync(target, changed, record)
    assert len(emulator.writes()) == count + 1
    assert emulator.environment_variables(REPO, "dev")["VAR_129"] == "new"


@pytest.mark.parametrize(
    ("status", "headers", "kind", "reason"),
    [
        (401, {}, PermanentError, "GitHubUnauthorized"),
        (403, {}, PermanentError, "GitHubForbidden"),
        (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 120)},
         TransientError, "GitHubRateLimited"),
        (429, {"Retry-After": "30"}, TransientError, "GitHubRateLimited"),
        (404, {}, PermanentError, "GitHubNotFound"),
        (422, {}, PermanentError, "GitHubInvalidName"),
        (500, {}, TransientError, "GitHubUnavailable"),
        (502, {}, TransientError, "GitHubUnavailable"),
    ],
)
async def test_errors_are_classified(github, status, headers, kind, reason) -> None:  # type: ignore[no-untyped-def]
    emulator, target = github
    emulator.fail_next(r"^GET /repos/acme/rags$", status, headers=headers)
    with pytest.raises(kind) as caught:
        await sync(target, DESIRED, None)
    assert caught.value.reason == reason
    text = str(caught.value) + repr(caught.value)
    assert TOKEN not in text and SECRET not in text
    if reason == "GitHubRateLimited":
        assert 1 <= caught.value.delay <= 3600  # type: ignore[attr-defined]
        if status == 429:
            assert caught.value.delay == 30  # type: ignore[attr-defined]


async def test_unknown_token_and_invisible_repository(github) -> None:  # type: ignore[no-untyped-def]
    _, target = github
    bad = replace(target, token="fake-revoked-token")
    with pytest.raises(PermanentError, match="401"):
        await sync(bad, DESIRED, None)
    hidden = replace(target, repository="acme/other")
    with pytest.raises(PermanentError) as caught:
        await sync(hidden, DESIRED, None)
    assert caught.value.reason == "GitHubNotFound"


async def test_invalid_names_fail_before_any_request(github) -> None:  # type: ignore[no-untyped-def]
    emulator, target = github
    with pytest.raises(PermanentError, match="GITHUB_TOKEN"):
        await sync(target, DesiredGitHubState(variables={"GITHUB_TOKEN": "x"}, secrets={}), None)
    assert emulator.requests == []


async def test_a_certificate_the_operator_does_not_trust_is_transient_and_sends_nothing(github) -> None:  # type: ignore[no-untyped-def]
    emulator, target = github
    with pytest.raises(TransientError) as caught:
        await sync(replace(target, ca_bundle=None), DESIRED, None)   # the system CAs: not the sandbox's
    assert caught.value.reason == "GitHubUnavailable" and emulator.requests == []


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://api.github.com", True), ("https://API.GitHub.com/", True), ("http://api.github.com", False),
    ("https://ghe.example.com/api/v3", True), ("https://ghe.example.com:8443/api/v3", False),
    ("https://169.254.169.254/latest", False), ("https://api.github.com.evil.example", False),
    ("https://127.0.0.1:4443", True), ("https://127.0.0.1:4444", False), ("ftp://api.github.com", False),
    ("https://ghe.example.com:443/api/v3", True), ("https://127.0.0.1/", False),
    ("https://localhost:1234", True), ("https://localhost", True),
])
def test_tokens_go_over_https_to_listed_hosts_only(url: str, allowed: bool) -> None:
    hosts = ("api.github.com", "ghe.example.com", "127.0.0.1:4443", "localhost:*")
    assert host_allowed(url, hosts) is allowed
    if not allowed:
        with pytest.raises(PermanentError) as caught:
            require_allowed_host(url, hosts)
        assert caught.value.reason == "GitHubHostNotAllowed" and "LLMAPP_GITHUB_HOSTS" in caught.value.message


async def test_unreachable_github_is_transient() -> None:
    target = GitHubTarget(repository=REPO, environment="dev", api_url="https://127.0.0.1:9", token=TOKEN)
    with pytest.raises(TransientError):
        await sync(target, DESIRED, None)


async def test_emulator_repository_level_variables_and_secrets_with_pygithub(github) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from github import Auth, Github

    emulator, target = github

    def drive() -> list[str]:
        gh = Github(auth=Auth.Token(TOKEN), base_url=target.api_url, retry=None, seconds_between_requests=None,
                    seconds_between_writes=None, verify=target.ca_bundle)
        repo = gh.get_repo(REPO)
        repo.create_variable("REPO_LEVEL", "v1")
        repo.create_secret("REPO_SECRET", "plain-text-value")
        return sorted(secret.name for secret in repo.get_secrets())

    assert await asyncio.to_thread(drive) == ["REPO_SECRET"]
    assert emulator.repository_variables(REPO) == {"REPO_LEVEL": "v1"}
    assert emulator.repository_secrets(REPO) == {"REPO_SECRET": "plain-text-value"}
