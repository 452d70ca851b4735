"""The one way the operator reaches the Kubernetes API outside Kopf.

Kopf watches LLMApps and posts Events with its own client; everything else (Secrets, the status
subresource, Leases, Jobs and their ConfigMaps, Pods' logs, the CRD) goes through `KubeClient`:
JSON requests over the `kubernetes` library's ApiClient, configured once (Kopf's login, or
`load_config` in processes without Kopf), in worker threads so the event loop never blocks, with
one answer type whatever the call. Callers map status codes to what they mean for them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmapp_operator.api.errors import TransientError

USER_AGENT = "llmapp-operator"
MERGE_PATCH = "application/merge-patch+json"
KUBE_THREADS = 32   # concurrent requests of the blocking client (urllib3 keeps a pool per host)


class ClusterUnreachable(RuntimeError):
    """No configuration, or the API server did not answer."""


def load_config() -> None:
    """In-cluster ServiceAccount first, then the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    import kubernetes

    try:
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
    except (kubernetes.config.ConfigException, OSError) as exc:
        raise ClusterUnreachable(f"no Kubernetes configuration found ({exc}); "
                                 "set KUBECONFIG or run inside a cluster") from None


def api_host() -> str:
    import kubernetes

    return str(kubernetes.client.Configuration.get_default_copy().host)


@dataclass(frozen=True)
class Answer:
    status: int
    data: bytes
    reason: str = ""   # the HTTP reason phrase ("Forbidden")

    @property
    def ok(self) -> bool:
        return self.status < 300

    def json(self) -> Any:
        return json.loads(self.data or b"null")

    def message(self) -> str:
        """The `message` of the API server's Status body: it says why (which rule, which RBAC verb)."""
        try:
            body = json.loads(self.data or b"{}")
        except ValueError:
            return self.data.decode(errors="replace")[:2000]
        return str(body.get("message") or self.status) if isinstance(body, dict) else str(self.status)

    def causes(self) -> list[dict[str, Any]]:
        try:
            body = json.loads(self.data or b"{}")
        except ValueError:
            return []
        causes = ((body.get("details") or {}).get("causes") or []) if isinstance(body, dict) else []
        return [cause for cause in causes if isinstance(cause, dict)]


class KubeClient:
    """One connection pool (created on first use, after the configuration is loaded)."""

    def __init__(self, user_agent: str = USER_AGENT, timeout: float = 15) -> None:
        self.user_agent, self.timeout = user_agent, timeout
        self._client: Any = None
        self._lock = threading.Lock()

    async def request(self, method: str, path: str, *, body: Any = None,
                      query: Sequence[tuple[str, str]] = (), content_type: str = "application/json") -> Answer:
        """Any answer of the API server comes back (callers decide what a 404 or 409 means); no
        answer at all (connection refused, timeout, TLS) is a TransientError."""
        call = functools.partial(self.request_blocking, method, path, body=body, query=query,
                                 content_type=content_type)
        return await asyncio.get_running_loop().run_in_executor(_executor(), call)

    def request_blocking(self, method: str, path: str, *, body: Any = None,
                         query: Sequence[tuple[str, str]] = (), content_type: str = "application/json") -> Answer:
        import kubernetes
        import urllib3

        api = self._api()
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            request = api.param_serialize(method, path, query_params=list(query), header_params=headers,
                                          body=body, auth_settings=["BearerToken"])
            response = api.call_api(*request[:2], header_params=request[2], body=request[3],
                                    post_params=request[4], _request_timeout=self.timeout)
            return Answer(int(response.status), bytes(response.read() or b""), str(response.reason or ""))
        except (kubernetes.client.ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
            raise TransientError(f"Kubernetes API unreachable: {type(exc).__name__}",
                                 reason="KubernetesUnavailable") from None

    def _api(self) -> Any:
        import kubernetes  # configured by Kopf's login (login_via_client) or load_config()

        with self._lock:
            if self._client is None:
                config = kubernetes.client.Configuration.get_default_copy()
                config.connection_pool_maxsize = KUBE_THREADS   # one connection per thread, kept
                self._client = kubernetes.client.ApiClient(config)
                self._client.user_agent = self.user_agent   # audit logs tell the operator from its Jobs
            return self._client


@functools.cache
def _executor() -> concurrent.futures.ThreadPoolExecutor:
    """The threads the blocking client runs in: its own, not asyncio's default pool (6 threads on
    2 cores, shared with aiohttp's name resolution for Kopf's requests). When thousands of objects
    finish at once, status writes must not queue six at a time behind Kopf's own requests."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=KUBE_THREADS, thread_name_prefix="llmapp-kube")


def namespaced(group_version: str, namespace: str, plural: str, name: str | None = None,
               subresource: str | None = None) -> str:
    """The REST path of a namespaced resource: `v1` is the core group, else `group/version`."""
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    path = f"{base}/namespaces/{namespace}/{plural}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


def as_mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None
