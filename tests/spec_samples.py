"""Spec samples the schema and the model are checked on: the largest object the CRD admits, and
generated specs near every bound (valid and invalid), for the agreement property test."""

from __future__ import annotations

import copy
import string
from typing import Any

from hypothesis import strategies as st

from llmapp_operator.api import spec as api

# -- the largest object -----------------------------------------------------------------------------
# Control characters are escaped as \u00XX by encoding/json (Go) and json.dumps (Python) alike: 6 bytes
# for one character, the worst an annotation can grow by.
WORST_CHAR = "\u0001"


def _name(prefix: str, index: int, length: int, alphabet: str = string.ascii_uppercase) -> str:
    """A unique name of exactly `length` characters."""
    stem = f"{prefix}{index:03d}_"
    return (stem + alphabet[index % len(alphabet)] * length)[:length]


def _dns_name(index: int, length: int = 253) -> str:
    labels, text = [], f"s{index:03d}"
    while len(".".join([text, *labels])) < length:
        labels.append("a" * 62)
    name = ".".join([text, *labels])[:length]
    return name.rstrip(".-") + "z" * (length - len(name.rstrip(".-")))


def largest_spec(*, module: str = "sandbox", github_url: str = "https://api.github.com",
                 module_vars: int = api.MODULE_VARS, backend_bucket: str | None = None) -> dict[str, Any]:
    """Every string at its maxLength (free text at 6 bytes a character), every list and map full.

    The Secrets it refers to are `largest_secrets()`; `module` must offer `module_vars` variables."""
    env_names = [_name("E", i, api.NAME_LENGTH) for i in range(api.ENV_ENTRIES)]
    per_value = api.ENV_VALUES_TOTAL // api.ENV_ENTRIES
    ref = {"name": _dns_name(0), "key": "k" * 253}
    secrets = [{"name": _name("S", i, api.NAME_LENGTH), "valueFrom": {"secretKeyRef": {"name": _dns_name(i),
                                                                                      "key": "k" * 253}}}
               for i in range(api.SECRET_ENTRIES)]
    github_secrets = [{"name": _name("G", i, api.NAME_LENGTH), "valueFrom": {"secretKeyRef": ref}}
                      for i in range(api.SECRET_ENTRIES)]
    var_value = api.MODULE_VARS_TOTAL // max(module_vars, 1)
    spec: dict[str, Any] = {
        "environment": "e" * 63,
        "aws": {"region": "us-east-1"},
        "app": {
            "image": "r" * 500 + ":" + "t" * 11,
            "containerPort": 65535, "cpu": 16384, "memory": 122880, "desiredCount": 100,
            "healthCheckPath": "/" + WORST_CHAR * 1023,
            "env": {name: WORST_CHAR * per_value for name in env_names},
            "secrets": secrets,
        },
        "network": {"vpcCidr": "100.100.100.0/23", "azCount": 6, "singleNatGateway": False},
        "github": {
            "repository": "o" * 39 + "/" + "r" * 100,
            "environment": "g" * 63,
            "apiUrl": github_url,
            "tokenSecretRef": ref,
            "variables": {_name("V", i, api.NAME_LENGTH): WORST_CHAR * per_value for i in range(api.ENV_ENTRIES)},
            "secrets": github_secrets,
        },
        "terraform": {
            "module": module,
            "vars": {_name("v", i, api.NAME_LENGTH, string.ascii_lowercase).lower(): "1" * var_value
                     for i in range(module_vars)},
            "backend": {"keyPrefix": "p" * 200, "dynamodbTable": "t" * 255,
                        **({"bucket": backend_bucket} if backend_bucket else {})},
            "runner": "local", "timeout": "24h", "allowDestructiveChanges": True,
            "policy": {"skip": [f"LLMAPP-{'X' * 50}-{i:02d}" for i in range(20)]},
            "maxMonthlyCost": 999999.99,
        },
        "suspend": False, "deletionPolicy": "Delete", "approvePlan": "auto",
        "driftDetection": {"interval": "0", "autoRemediate": True},
    }
    return spec


def largest_secrets(namespace: str, value: str) -> list[dict[str, Any]]:
    """The Secrets `largest_spec` names, each holding `value` under the 253-character key."""
    import base64

    encoded = base64.b64encode(value.encode()).decode()
    return [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": _dns_name(i), "namespace": namespace,
                                                         "annotations": {"llmops.dev/allowed-llmapps": "*"}},
             "data": {"k" * 253: encoded}} for i in range(api.SECRET_ENTRIES)]


# -- generated specs near the bounds ----------------------------------------------------------------
BASE: dict[str, Any] = {"environment": "dev", "aws": {"region": "us-east-1"}, "github": {"repository": "acme/rags"}}

# (path, values): for each field, values on both sides of each rule. Types are right, so the model
# and the API server must agree on every combination.
FIELD_VALUES: list[tuple[tuple[str, ...], list[Any]]] = [
    (("environment",), ["dev", "e" * 63, "e" * 64, "-dev", "dev.x", "Dev_1", ""]),
    (("aws", "region"), ["us-east-1", "us-gov-west-1", "eu-central-1x", "US-EAST-1", "x"]),
    (("app", "cpu"), [256, 512, 1024, 2048, 4096, 8192, 16384, 300]),
    (("app", "memory"), [512, 1024, 2048, 3072, 4096, 8192, 16384, 20480, 30720, 32768, 61440, 65536, 122880,
                         122881, 511, 1536]),
    (("app", "containerPort"), [1, 8501, 65535, 0, 65536]),
    (("app", "desiredCount"), [0, 1, 100, 101, -1]),
    (("app", "healthCheckPath"), ["/", "/_stcore/health", "health", "/a b", "/" + "h" * 1023, "/" + "h" * 1024]),
    (("app", "image"), ["", "ghcr.io/acme/app:1", "acme/app@sha256:" + "a" * 64, "-bad", "a b", "r" * 513]),
    (("app", "rollout"), ["pipeline", "operator", "canary"]),   # with and without app.image (CEL on app)
    (("app", "env"), [{}, {"A": "1"}, {"_x": ""}, {"1BAD": "v"}, {"has-dash": "v"}, {"A" * 128: "v"},
                      {"A" * 129: "v"}, {f"V{i}": "" for i in range(32)}, {f"V{i}": "" for i in range(33)},
                      {"A": "x" * 2048, "B": "x" * 2048}, {"A": "x" * 2048, "B": "x" * 2048, "C": "x"},
                      {"A": "x" * 2049}]),
    (("app", "secrets"), [[], [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                          [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "Bad_Name", "key": "k"}}}],
                          [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "a/b"}}}],
                          [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": ".."}}}],
                          [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "..x"}}}],
                          [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": ".x"}}}],
                          [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                           {"name": "K", "valueFrom": {"secretKeyRef": {"name": "t", "key": "k"}}}],
                          [{"name": "1K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]]),
    (("network", "vpcCidr"), ["10.0.0.0/16", "10.0.0.0/24", "255.255.255.0/24", "999.1.1.1/16", "10.0.0.0/25",
                              "10.0.0.0/15", "10.0.0/16", "01.2.3.4/16"]),
    (("network", "azCount"), [2, 6, 1, 7]),
    (("github", "repository"), ["acme/rags", "acme/.github", "a-b/c.d", "acme/.", "acme/..", "acme/../x",
                                "acme/x..y", "-acme/x", "acme/x/y", "o" * 39 + "/r", "o" * 40 + "/r"]),
    (("github", "environment"), ["dev", "prod-eu", "bad env", "g" * 64]),
    (("github", "apiUrl"), ["https://api.github.com", "https://ghe.example.com/api/v3", "ftp://x", "https://"]),
    (("github", "variables"), [{}, {"MODEL_ID": "x"}, {"bad-name": "x"}, {"GITHUB_TOKEN": "x"},
                               {"github_x": "x"}, {"model_id": "a", "MODEL_ID": "b"}, {"_ok": "x"},
                               {"1x": "y"}, {f"V{i}": "" for i in range(33)}]),
    (("github", "secrets"), [[], [{"name": "OPENAI_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                             [{"name": "GITHUB_TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                             [{"name": "bad-name", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                             [{"name": "key", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                              {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]]),
    (("terraform", "module"), ["stack", "sandbox", "custom-1", "Bad", "../x"]),
    (("terraform", "vars"), [{}, {"ecr_keep_images": "10"}, {"unknown_var": "1"}, {"name": "x"},
                             {"Bad": "1"}, {"alb_log_retention_days": "x" * 513}]),
    (("terraform", "timeout"), ["30m", "1m", "24h", "1h30m", "0s", "59s", "25h", "", "m", "10"]),
    (("terraform", "runner"), ["local", "job", "pod"]),
    (("terraform", "policy", "skip"), [[], ["LLMAPP-S3-PRIVATE"], ["CKV_AWS_18"], ["bogus"],
                                       ["LLMAPP-S3-PRIVATE", "LLMAPP-S3-PRIVATE"]]),
    (("terraform", "maxMonthlyCost"), [0, 10.5, -1, 1_000_000, 1_000_001]),
    (("terraform", "backend"), [{}, {"bucket": "my-state"}, {"bucket": "UPPER"}, {"keyPrefix": "a/b"},
                                {"region": "eu-west-1"}, {"dynamodbTable": "ab"}]),
    (("terraform", "backendRef"), ["default", "eu-1", "Bad", "-x", "a" * 63, "a" * 64, ""]),
    (("approvePlan",), ["auto", "manual", "0123456789abcdef", "0123456789ABCDEF", "yes"]),
    (("driftDetection", "interval"), ["0", "0s", "1h", "1m", "1s", "168h", "169h", "", "h"]),
    (("deletionPolicy",), ["Delete", "Orphan", "Keep"]),
]


def set_path(spec: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = spec
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = copy.deepcopy(value)


@st.composite
def near_bound_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid base spec with one to three fields set to values on either side of their rules."""
    spec = copy.deepcopy(BASE)
    chosen = draw(st.lists(st.sampled_from(range(len(FIELD_VALUES))), min_size=1, max_size=3, unique=True))
    for index in chosen:
        path, options = FIELD_VALUES[index]
        set_path(spec, path, draw(st.sampled_from(options)))
    return spec
