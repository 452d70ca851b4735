"""github_sync with the real PyGithub client against the GitHub emulator on loopback."""

from __future__ import annotations

import asyncio
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


async def test_pagination_over_the_most_variables_an_environment_holds(github) -> None:  # type: ignore[no-untyped-def]
    emulator, target = github
    many = DesiredGitHubState(variables={f"VAR_{i:03d}": str(i) for i in range(100)}, secrets={})
    record = await sync(target, many, None)
    count = len(emulator.writes())
    # A new desired value for the last one: only it is written.
    changed = DesiredGitHubState(variables={**many.variables, "VAR_099": "new"}, secrets={})
    await sync(target, changed, record)
    assert len(emulator.writes()) == count + 1
    assert emulator.environment_variables(REPO, "dev")["VAR_099"] == "new"


def test_the_emulator_pages_at_30_unless_asked_and_links_the_next_page() -> None:
    """GitHub's default page is 30 (at most 100): a client that follows `Link` sees every name."""
    from github import Auth, Github

    async def run() -> tuple[int, int]:
        emulator = GitHubEmulator(tokens={TOKEN: {REPO}})
        emulator.add_repository(REPO)
        emulator.repos[REPO].environments["dev"] = type(emulator.repos[REPO].scope)(
            variables={f"V{i:03d}": "x" for i in range(95)})
        async with running_github(emulator) as url:
            def names() -> int:
                gh = Github(auth=Auth.Token(TOKEN), base_url=url, verify=str(sandbox_ca_file()), retry=None)
                return len(list(gh.get_repo(REPO).get_environment("dev").get_variables()))
            found = await asyncio.to_thread(names)
        pages = [r for r in emulator.requests if r[1].endswith("/environments/dev/variables")]
        return found, len(pages)

    found, pages = asyncio.run(run())
    assert (found, pages) == (95, 4)


async def test_github_s_limits_are_checked_before_the_first_request(github) -> None:  # type: ignore[no-untyped-def]
    emulator, target = github
    too_many = DesiredGitHubState(variables={f"V{i:03d}": "x" for i in range(101)}, secrets={})
    too_large = DesiredGitHubState(variables={}, secrets={"BIG": secret_for_tests("s" * (48 * 1024 + 1))})
    twins = DesiredGitHubState(variables={"model_id": "a", "MODEL_ID": "b"}, secrets={})
    for desired, reason, words in ((too_many, "GitHubLimitExceeded", "at most 100"),
                                   (too_large, "GitHubLimitExceeded", "BIG: a value may hold at most 48 KB"),
                                   (twins, "GitHubInvalidName", "case-insensitive; used twice: MODEL_ID")):
        with pytest.raises(PermanentError) as caught:
            await sync(target, desired, None)
        assert caught.value.reason == reason and words in caught.value.message
    assert emulator.requests == []


async def test_the_emulator_refuses_what_github_refuses(github) -> None:  # type: ignore[no-untyped-def]
    """The limits, as GitHub answers them: 422 for the 101st variable, a 48 KB+ secret, a name too long."""
    from github import Auth, Github, GithubException

    emulator, target = github
    emulator.repos[REPO].environments["dev"] = type(emulator.repos[REPO].scope)(
        variables={f"V{i:03d}": "x" for i in range(100)})

    def statuses() -> list[int]:   # PyGithub blocks: off the event loop the emulator runs on
        gh = Github(auth=Auth.Token(TOKEN), base_url=target.api_url, verify=target.ca_bundle, retry=None)
        env = gh.get_repo(REPO).get_environment("dev")
        answers = []
        for attempt in (lambda: env.create_variable("ONE_TOO_MANY", "x"),
                        lambda: env.create_secret("BIG", "s" * (48 * 1024 + 1)),
                        lambda: gh.get_repo(REPO).create_environment("e" * 256)):
            try:
                attempt()
                answers.append(200)
            except GithubException as exc:
                answers.append(exc.status)
        env.create_secret("lower_case", "v")
        return answers

    assert await asyncio.to_thread(statuses) == [422, 422, 422]
    assert "LOWER_CASE" in emulator.environment_secrets(REPO, "dev")   # stored upper-case


async def test_names_are_case_insensitive_so_a_renamed_case_is_an_update_not_a_create(github) -> None:  # type: ignore[no-untyped-def]
    emulator, target = github
    first = DesiredGitHubState(variables={"model_id": "m1"}, secrets={"api_key": SECRET})
    record = await sync(target, first, None)
    assert record.variables == ("MODEL_ID",) and record.secrets == ("API_KEY",)   # as GitHub keeps them
    assert emulator.environment_variables(REPO, "dev") == {"MODEL_ID": "m1"}
    before = len(emulator.writes())
    again = await sync(target, DesiredGitHubState(variables={"MODEL_ID": "m2"}, secrets={"API_KEY": SECRET}), record)
    variable_writes = [w for w in emulator.writes()[before:] if "/variables" in w[1]]
    assert variable_writes == [("PATCH", f"/repos/{REPO}/environments/dev/variables/MODEL_ID", 204)]   # no 409
    assert emulator.environment_variables(REPO, "dev") == {"MODEL_ID": "m2"}
    await remove(target, again)
    assert emulator.environments(REPO) == set()


@pytest.mark.parametrize("status", [403, 429, 500])
async def test_a_refused_delete_is_a_failure_not_done(github, status: int) -> None:  # type: ignore[no-untyped-def]
    """PyGithub's delete_* answer False for these; the glue must not call that done."""
    emulator, target = github
    record = await sync(target, DESIRED, None)
    emulator.fail_next(r"^DELETE .*/variables/ECS_SERVICE$", status)
    with pytest.raises((PermanentError, TransientError)):
        await remove(target, record)
    assert "ECS_SERVICE" in emulator.environment_variables(REPO, "dev")   # still there, and still ours
    await remove(target, record)                                           # the retry finishes it
    assert emulator.environments(REPO) == set()
    # In a sync that drops a name, a refused delete keeps the name in the record (the sync fails).
    record = await sync(target, DESIRED, None)
    emulator.fail_next(r"^DELETE .*/variables/AWS_REGION$", 500)
    dropped = DesiredGitHubState(variables={"ECS_CLUSTER": "c1", "ECS_SERVICE": "s1"}, secrets=DESIRED.secrets)
    with pytest.raises(TransientError):
        await sync(target, dropped, record)
    assert "AWS_REGION" in emulator.environment_variables(REPO, "dev")


async def test_a_repository_the_token_no_longer_sees_is_not_called_removed(github) -> None:  # type: ignore[no-untyped-def]
    emulator, target = github
    record = await sync(target, DESIRED, None)
    emulator.tokens[TOKEN].discard(REPO)   # access revoked: GitHub answers 404
    with pytest.raises(PermanentError) as caught:
        await remove(target, record)
    assert caught.value.reason == "GitHubNotFound"
    assert emulator.environment_variables(REPO, "dev")   # left behind, and the teardown says so


@pytest.mark.parametrize(("headers", "message", "delay"), [
    ({}, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", 60),
    ({"Retry-After": "17"}, "You have exceeded a secondary rate limit.", 17),
])
async def test_a_secondary_rate_limit_waits_instead_of_stalling(github, headers, message, delay) -> None:  # type: ignore[no-untyped-def]
    emulator, target = github
    emulator.fail_next(r"^GET /repos/acme/rags$", 403, headers=headers, message=message)
    with pytest.raises(TransientError) as caught:
        await sync(target, DESIRED, None)
    assert caught.value.reason == "GitHubRateLimited" and caught.value.delay == delay  # type: ignore[attr-defined]


async def test_a_missing_permission_is_named_when_github_says_which(github) -> None:  # type: ignore[no-untyped-def]
    emulator, target = github
    emulator.fail_next(r"^PUT /repos/acme/rags/environments/dev$", 403,
                       headers={"X-Accepted-GitHub-Permissions": "administration=write"},
                       message="Resource not accessible by personal access token")
    with pytest.raises(PermanentError) as caught:
        await sync(target, DESIRED, None)
    assert caught.value.reason == "GitHubForbidden" and "administration=write" in caught.value.message


@pytest.mark.parametrize(
    ("status", "headers", "kind", "reason"),
    [
        (401, {}, PermanentError, "GitHubUnauthorized"),
        (403, {}, PermanentError, "GitHubForbidden"),
        (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 120)},
         TransientError, "GitHubRateLimited"),
        (429, {"Retry-After": "30"}, TransientError, "GitHubRateLimited"),
        (404, {}, PermanentError, "GitHubNotFound"),
        (422, {}, PermanentError, "GitHubRejected"),
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
