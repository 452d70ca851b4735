"""The sandbox's AWS: moto in server mode on 127.0.0.1, with dummy credentials.

Both boto3 (state-backend bootstrap) and Terraform's S3 backend talk to it, exactly as they would
to AWS; nothing leaves the machine.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

SANDBOX_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "sandbox-access-key",
    "AWS_SECRET_ACCESS_KEY": "sandbox-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")


def counting(app: Callable[..., Iterable[bytes]], counts: collections.Counter[str]) -> Callable[..., Iterable[bytes]]:
    """WSGI middleware: every request counted by the AWS service its signature names (s3, ecs, …)."""

    def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        counts[scope.group(1) if scope else "unsigned"] += 1
        return app(environ, start_response)

    return counted


@contextlib.contextmanager
def running_moto(counts: collections.Counter[str] | None = None) -> Iterator[str]:
    """Start moto on a free loopback port; yield its endpoint URL; stop it afterwards. With
    `counts`, every request is counted there by service (the benchmarks' cloud-call figures)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    tally = counts if counts is not None else collections.Counter()

    class CountingServer(ThreadedMotoServer):
        def _server_entry(self) -> None:   # ThreadedMotoServer's own, with the counter around the app
            app = counting(DomainDispatcherApplication(create_backend_app), tally)
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    # werkzeug logs every request at INFO with its own handler; the sandbox's output is for people.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = (CountingServer if counts is not None else ThreadedMotoServer)(ip_address="127.0.0.1", port=0,
                                                                            verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextlib.contextmanager
def sandbox_aws_env() -> Iterator[None]:
    """Dummy credentials in os.environ (Terraform children inherit them), restored afterwards."""
    saved = {name: os.environ.get(name) for name in SANDBOX_AWS_ENV}
    os.environ.update(SANDBOX_AWS_ENV)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
