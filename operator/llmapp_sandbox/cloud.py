"""The sandbox's AWS: moto in server mode on 127.0.0.1, with dummy credentials.

Both boto3 (state-backend bootstrap) and Terraform's S3 backend talk to it, exactly as they would
to AWS; nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

SANDBOX_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "sandbox-access-key",
    "AWS_SECRET_ACCESS_KEY": "sandbox-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@contextlib.contextmanager
def running_moto() -> Iterator[str]:
    """Start moto on a free loopback port; yield its endpoint URL; stop it afterwards."""
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request at INFO with its own handler; the sandbox's output is for people.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
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
