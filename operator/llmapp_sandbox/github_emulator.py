"""A GitHub REST emulator for the sandbox and the tests (aiohttp on 127.0.0.1).

It implements the endpoints PyGithub calls for repositories, environments, and environment and
repository variables and secrets, with the answers GitHub gives: 201/204/409/404/422, Link-header
pagination (30 a page unless `per_page` asks for up to 100), 401 for unknown tokens and 404 for
repositories a token cannot see. Names are case-insensitive and stored upper-case; an environment
holds at most 100 variables and 100 secrets, a value at most 48 KB, an environment name at most
255 characters (422 beyond). Secrets arrive sealed with the emulator's X25519 key and are
decrypted (real libsodium sealed boxes), so tests prove the right plaintext arrived. Faults
(a status, headers and GitHub's message, e.g. a secondary rate limit) can be injected per path
pattern, deletes included.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import functools
import pathlib
import re
import secrets as random_tokens
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from nacl.public import PrivateKey, SealedBox

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_NAMES = 100                 # variables, and secrets, per environment (or repository)
MAX_VALUE_BYTES = 48 * 1024     # a secret's or a variable's value
MAX_ENVIRONMENT_NAME = 255
SECONDARY_RATE_LIMIT = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try "
                        "again.")


@dataclass
class Scope:
    """Variables and secrets of one repository or one of its environments."""

    variables: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # decrypted plaintext


@dataclass
class Repo:
    id: int
    full_name: str
    scope: Scope = field(default_factory=Scope)
    environments: dict[str, Scope] = field(default_factory=dict)


@dataclass
class Fault:
    pattern: re.Pattern[str]
    status: int
    times: int
    headers: Mapping[str, str]
    message: str = "injected failure"


class GitHubEmulator:
    def __init__(self, tokens: Mapping[str, set[str]] | None = None) -> None:
        self.tokens = {token: set(repos) for token, repos in (tokens or {}).items()}
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, int]] = []
        self._faults: list[Fault] = []
        self._key = PrivateKey.generate()
        self._key_id = random_tokens.token_hex(8)
        self.base_url = ""

    # -- test API ---------------------------------------------------------------------------------
    def add_repository(self, full_name: str) -> None:
        self.repos[full_name] = Repo(id=len(self.repos) + 1000, full_name=full_name)

    def environments(self, repo: str) -> set[str]:
        return set(self.repos[repo].environments)

    def environment_variables(self, repo: str, env: str) -> dict[str, str]:
        return dict(self.repos[repo].environments[env].variables)

    def environment_secrets(self, repo: str, env: str) -> dict[str, str]:
        return dict(self.repos[repo].environments[env].secrets)

    def repository_variables(self, repo: str) -> dict[str, str]:
        return dict(self.repos[repo].scope.variables)

    def repository_secrets(self, repo: str) -> dict[str, str]:
        return dict(self.repos[repo].scope.secrets)

    def fail_next(self, pattern: str, status: int, *, times: int = 1, headers: Mapping[str, str] | None = None,
                  message: str = "injected failure") -> None:
        """The next `times` requests whose 'METHOD /path' matches `pattern` answer `status`."""
        self._faults.append(Fault(re.compile(pattern), status, times, dict(headers or {}), message))

    def writes(self) -> list[tuple[str, str, int]]:
        return [request for request in self.requests if request[0] in ("POST", "PUT", "PATCH", "DELETE")]

    # -- HTTP -------------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        repo = r"/repos/{owner}/{name}"
        scopes = (repo + "/actions", repo + "/environments/{env}")
        app.router.add_get(repo, self._get_repo)
        app.router.add_get(repo + "/environments", self._list_environments)
        app.router.add_route("PUT", repo + "/environments/{env}", self._put_environment)
        app.router.add_get(repo + "/environments/{env}", self._get_environment)
        app.router.add_delete(repo + "/environments/{env}", self._delete_environment)
        for prefix in scopes:
            app.router.add_get(prefix + "/variables", self._list_variables)
            app.router.add_post(prefix + "/variables", self._create_variable)
            app.router.add_get(prefix + "/variables/{var}", self._get_variable)
            app.router.add_patch(prefix + "/variables/{var}", self._update_variable)
            app.router.add_delete(prefix + "/variables/{var}", self._delete_variable)
            app.router.add_get(prefix + "/secrets/public-key", self._public_key)
            app.router.add_get(prefix + "/secrets", self._list_secrets)
            app.router.add_route("PUT", prefix + "/secrets/{secret}", self._put_secret)
            app.router.add_delete(prefix + "/secrets/{secret}", self._delete_secret)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response = await self._guarded(request, handler)
        self.requests.append((request.method, request.path, response.status))
        return response

    async def _guarded(self, request: web.Request, handler: Any) -> web.StreamResponse:
        line = f"{request.method} {request.path}"
        for fault in self._faults:
            if fault.times > 0 and fault.pattern.search(line):
                fault.times -= 1
                return _error(fault.status, fault.message, headers=fault.headers)
        token = request.headers.get("Authorization", "").removeprefix("token ").removeprefix("Bearer ")
        if token not in self.tokens:
            return _error(401, "Bad credentials")
        full_name = f"{request.match_info.get('owner')}/{request.match_info.get('name')}"
        if full_name not in self.repos or full_name not in self.tokens[token]:
            return _error(404, "Not Found")
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except KeyError:
            return _error(404, "Not Found")

    # -- helpers ----------------------------------------------------------------------------------
    def _repo(self, request: web.Request) -> Repo:
        return self.repos[f"{request.match_info['owner']}/{request.match_info['name']}"]

    def _scope(self, request: web.Request) -> Scope:
        repo = self._repo(request)
        env = request.match_info.get("env")
        return repo.scope if env is None else repo.environments[env]

    def _url(self, request: web.Request) -> str:
        return self.base_url + request.path

    def _env_json(self, repo: Repo, name: str) -> dict[str, Any]:
        return {"id": abs(hash((repo.full_name, name))) % 10**9, "name": name,
                "url": f"{self.base_url}/repos/{repo.full_name}/environments/{name}",
                "html_url": f"https://github.invalid/{repo.full_name}/deployments/activity_log?environment={name}",
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                "protection_rules": [], "deployment_branch_policy": None}

    def _paginate(self, request: web.Request, key: str, items: list[Any]) -> web.Response:
        per_page = min(int(request.query.get("per_page", 30)), 100)
        page = int(request.query.get("page", 1))
        chunk = items[(page - 1) * per_page: page * per_page]
        response = web.json_response({"total_count": len(items), key: chunk})
        if page * per_page < len(items):
            url = request.url.update_query(page=page + 1, per_page=per_page)
            absolute = self.base_url + url.path_qs
            response.headers["Link"] = f'<{absolute}>; rel="next"'
        return response

    # -- repositories and environments ------------------------------------------------------------
    async def _get_repo(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        owner, name = repo.full_name.split("/")
        return web.json_response({"id": repo.id, "name": name, "full_name": repo.full_name,
                                  "owner": {"login": owner}, "private": True,
                                  "url": f"{self.base_url}/repos/{repo.full_name}"})

    async def _list_environments(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        return self._paginate(request, "environments", [self._env_json(repo, n) for n in sorted(repo.environments)])

    async def _put_environment(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        name = request.match_info["env"]
        if len(name) > MAX_ENVIRONMENT_NAME:
            return _error(422, f"Name is too long (maximum is {MAX_ENVIRONMENT_NAME} characters)")
        repo.environments.setdefault(name, Scope())
        return web.json_response(self._env_json(repo, name))

    async def _get_environment(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        name = request.match_info["env"]
        if name not in repo.environments:
            return _error(404, "Not Found")
        return web.json_response(self._env_json(repo, name))

    async def _delete_environment(self, request: web.Request) -> web.Response:
        del self._repo(request).environments[request.match_info["env"]]
        return web.Response(status=204)

    # -- variables --------------------------------------------------------------------------------
    def _variable_json(self, request: web.Request, name: str, value: str) -> dict[str, Any]:
        base = self._url(request).split("/variables")[0]
        return {"name": name, "value": value, "url": f"{base}/variables/{name}",
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}

    async def _list_variables(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        items = [self._variable_json(request, n, v) for n, v in sorted(scope.variables.items())]
        return self._paginate(request, "variables", items)

    async def _create_variable(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        body = await request.json()
        name, value = str(body.get("name", "")).upper(), body.get("value", "")
        if not NAME_PATTERN.match(name) or name.startswith("GITHUB_"):
            return _error(422, "Invalid name")
        if name in scope.variables:
            return _error(409, "Already exists")
        if len(scope.variables) >= MAX_NAMES:
            return _error(422, f"Maximum number of variables ({MAX_NAMES}) reached")
        if len(str(value).encode()) > MAX_VALUE_BYTES:
            return _error(422, "Value is too large (maximum is 48 KB)")
        scope.variables[name] = value
        return web.json_response({}, status=201)

    async def _get_variable(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        name = request.match_info["var"].upper()
        return web.json_response(self._variable_json(request, name, scope.variables[name]))

    async def _update_variable(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        name = request.match_info["var"].upper()
        if name not in scope.variables:
            return _error(404, "Not Found")
        value = (await request.json())["value"]
        if len(str(value).encode()) > MAX_VALUE_BYTES:
            return _error(422, "Value is too large (maximum is 48 KB)")
        scope.variables[name] = value
        return web.Response(status=204)

    async def _delete_variable(self, request: web.Request) -> web.Response:
        del self._scope(request).variables[request.match_info["var"].upper()]
        return web.Response(status=204)

    # -- secrets ----------------------------------------------------------------------------------
    async def _public_key(self, request: web.Request) -> web.Response:
        self._scope(request)
        key = base64.b64encode(bytes(self._key.public_key)).decode()
        return web.json_response({"key_id": self._key_id, "key": key})

    async def _list_secrets(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        items = [{"name": n, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
                 for n in sorted(scope.secrets)]
        return self._paginate(request, "secrets", items)

    async def _put_secret(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        name = request.match_info["secret"].upper()   # GitHub stores secret names upper-case
        if not NAME_PATTERN.match(name) or name.startswith("GITHUB_"):
            return _error(422, "Invalid name")
        body = await request.json()
        if body.get("key_id") != self._key_id:
            return _error(422, "Unknown key_id")
        sealed = base64.b64decode(body["encrypted_value"])
        existed = name in scope.secrets
        if not existed and len(scope.secrets) >= MAX_NAMES:
            return _error(422, f"Maximum number of secrets ({MAX_NAMES}) reached")
        value = SealedBox(self._key).decrypt(sealed).decode()
        if len(value.encode()) > MAX_VALUE_BYTES:
            return _error(422, "Secret value is too large (maximum is 48 KB)")
        scope.secrets[name] = value
        return web.Response(status=204 if existed else 201)

    async def _delete_secret(self, request: web.Request) -> web.Response:
        del self._scope(request).secrets[request.match_info["secret"].upper()]
        return web.Response(status=204)


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"message": message, "documentation_url": "https://docs.github.com/rest"},
                             status=status, headers=dict(headers or {}))


@functools.cache
def _sandbox_ca() -> Any:
    import trustme

    return trustme.CA(organization_name="llmapp sandbox")


@functools.cache
def sandbox_ca_file() -> pathlib.Path:
    """The PEM of the CA that signs the emulator's certificate: what an operator (or PyGithub)
    under test trusts, as it would trust a GitHub Enterprise Server's private CA."""
    directory = tempfile.mkdtemp(prefix="llmapp-sandbox-ca-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = pathlib.Path(directory) / "ca.pem"
    _sandbox_ca().cert_pem.write_to_path(str(path))
    return path


@contextlib.asynccontextmanager
async def running_github(emulator: GitHubEmulator) -> AsyncIterator[str]:
    """Serve the emulator over https (GitHub is https only) on a free 127.0.0.1 port; yield its
    base URL. Its certificate is for 127.0.0.1, signed by `sandbox_ca_file()`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _sandbox_ca().issue_cert("127.0.0.1", "localhost").configure_cert(context)
    runner = web.AppRunner(emulator.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    emulator.base_url = f"https://127.0.0.1:{port}"
    try:
        yield emulator.base_url
    finally:
        await runner.cleanup()
