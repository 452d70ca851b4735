"""Spec samples the schema and the model are checked on: the largest object the CRD admits, and
generated specs near every bound (valid and invalid), for the agreement property test."""

from __future__ import annotations

import copy
import functools
import re
import string
from typing import Any

import yaml
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
            "scaling": {"minTasks": 100, "maxTasks": 100, "cpuTarget": 90, "requestsPerTarget": 100000,
                        "schedule": {"stop": "cron(" + "1" * 8 + (" " + "2" * 9) * 5 + ")",
                                     "start": "cron(" + "3" * 8 + (" " + "4" * 9) * 5 + ")",
                                     "timezone": "America/" + "A" * 56}},
            "models": [{"id": f"global.{chr(97 + i)}{'p' * 16}.{'m' * 71}", "env": _name("M", i, api.MODEL_ENV_LENGTH)}
                       for i in range(api.MODEL_ENTRIES)],
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
        "domain": {"name": ("a" * 63 + ".") * 3 + "b" * 61, "hostedZoneId": "Z" + "A" * 31},
        "auth": {"oidc": {name: _url(name, 256) for name in ("issuer", "authorizationEndpoint", "tokenEndpoint",
                                                              "userInfoEndpoint")}
                 | {"clientId": "c" * 255, "clientSecretRef": ref, "scope": ("openid " * 37)[:255].strip() + "x"}},
    }
    return spec


def _url(name: str, length: int) -> str:
    stem = f"https://login.example.com/{name}/"
    return stem + "p" * (length - len(stem))


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
    (("app", "scaling"), [{"maxTasks": 4, "cpuTarget": 60}, {"minTasks": 5, "maxTasks": 4, "cpuTarget": 60},
                          {"maxTasks": 4}, {"minTasks": 0, "maxTasks": 4, "cpuTarget": 50},
                          {"maxTasks": 4, "cpuTarget": 95}, {"minTasks": 2, "maxTasks": 2, "requestsPerTarget": 100},
                          {"maxTasks": 101, "cpuTarget": 50}, {"cpuTarget": 50},
                          {"maxTasks": 4, "cpuTarget": 50, "schedule": {"stop": "cron(0 20 ? * MON-FRI *)",
                                                                        "start": "cron(0 7 ? * MON-FRI *)",
                                                                        "timezone": "Europe/Berlin"}},
                          {"maxTasks": 4, "cpuTarget": 50, "schedule": {"stop": "0 20 * * *",
                                                                        "start": "cron(0 7 ? * MON-FRI *)"}},
                          {"maxTasks": 4, "cpuTarget": 50, "schedule": {"stop": "cron(0 20 ? * MON-FRI)",
                                                                        "start": "cron(0 7 ? * MON-FRI *)"}},
                          {"maxTasks": 4, "cpuTarget": 50, "schedule": {"stop": "cron(0 20 ? * MON-FRI *)",
                                                                        "start": "cron(0 7 ? * MON-FRI *)",
                                                                        "timezone": "../etc/passwd"}},
                          {"maxTasks": 4, "cpuTarget": 50, "schedule": {"stop": "cron(0 20 ? * MON-FRI *)"}}]),
    (("app", "storage"), [{}, {"keepOnDelete": False}, {"env": "DATA_BUCKET"}, {"env": "1X"}, {"env": ""},
                          {"keepOnDelete": "yes"}, {"mountPath": "/data"}]),
    (("app", "models"), [[], [{"id": "anthropic.claude-3-haiku-20240307-v1:0"}],
                         [{"id": "eu.anthropic.claude-3-5-sonnet-20240620-v1:0", "env": "CHAT_MODEL"},
                          {"id": "amazon.titan-embed-text-v2:0", "env": "EMBED_MODEL"}],
                         [{"id": "anthropic.*"}], [{"id": "*"}], [{"id": "claude"}], [{"id": "Anthropic.Claude"}],
                         [{"id": "a.b", "env": "BEDROCK_MODEL_IDS"}], [{"id": "a.b", "env": "1X"}],
                         [{"id": "a.b", "env": "X"}, {"id": "c.d", "env": "X"}], [{"id": "a.b"}, {"id": "a.b"}],
                         [{"id": f"p.m{i}"} for i in range(8)], [{"id": f"p.m{i}"} for i in range(9)],
                         [{"id": "a." + "b" * 94}], [{"id": "a." + "b" * 95}]]),
    (("domain",), [{"name": "rags.example.com", "hostedZoneId": "Z0123456789ABCDEFGHIJ"},
                   {"name": "a.b.example.co.uk", "hostedZoneId": "Z1"}, {"name": "example", "hostedZoneId": "Z1"},
                   {"name": "*.example.com", "hostedZoneId": "Z1"}, {"name": "Rags.Example.com", "hostedZoneId": "Z1"},
                   {"name": "rags.example.com", "hostedZoneId": "zone-1"}, {"name": "rags.example.com"},
                   {"name": "-x.example.com", "hostedZoneId": "Z1"},
                   {"name": "rags.example.com.", "hostedZoneId": "Z1"},
                   {"name": "x" * 64 + ".example.com", "hostedZoneId": "Z1"}]),
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


# -- specs generated from the CRD's own schema -------------------------------------------------------
# The strategy is read from crds/llmapp.yaml (openAPIV3Schema.properties.spec), so a field, bound or
# pattern added to the models reaches the generated specs with no change here. hypothesis-jsonschema
# generates the leaves (strings from their patterns and lengths, numbers within their bounds, enums);
# objects, maps and lists are composed here from the schema's properties: hypothesis-jsonschema 0.23.1's
# own object strategy calls a private Hypothesis API that current Hypothesis no longer has
# (AttributeError: 'many' object has no attribute 'more' with Hypothesis 6.170).
CAP_LENGTH = 40   # strings, lists and maps are generated shorter than their bounds: fast, still valid
CAP_ITEMS = 3


@functools.cache
def _crd_schema() -> dict[str, Any]:
    from tests.conftest import REPO

    crd = yaml.safe_load((REPO / "crds" / "llmapp.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def crd_schema() -> dict[str, Any]:
    """The committed CRD's openAPIV3Schema (a copy)."""
    return copy.deepcopy(_crd_schema())


def as_json_schema(node: Any, *, caps: bool = False) -> Any:
    """A structural OpenAPI v3 schema as plain JSON Schema (draft 4), for jsonschema and
    hypothesis-jsonschema: the `x-kubernetes-*` extensions stripped, and what they change about
    validity translated. An object with properties takes no others (the API server's strict field
    validation refuses them); `caps` shortens every bound to CAP_LENGTH / CAP_ITEMS for generation."""
    if isinstance(node, list):
        return [as_json_schema(item, caps=caps) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: as_json_schema(value, caps=caps) for key, value in node.items()
           if not key.startswith("x-kubernetes-") and key not in ("description", "default")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (out.get("type") == "object" and "properties" in out and "additionalProperties" not in out
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if caps:
        for key, cap in (("maxLength", CAP_LENGTH), ("maxItems", CAP_ITEMS), ("maxProperties", CAP_ITEMS)):
            if key in out:
                out[key] = min(out[key], cap)
    return out


def _rules(node: dict[str, Any]) -> list[str]:
    return [entry["rule"] for entry in node.get("x-kubernetes-validations", [])]


def _map_keys(node: dict[str, Any], allowed: list[str] | None) -> st.SearchStrategy[str]:
    """Map keys as the map's CEL rule says: `self.all(k, k.matches(P) && size(k) <= N &&
    !k.upperAscii().startsWith(X))`, or one of the names the parent's `self.<map>.all(k, k in [...])`
    allows."""
    if allowed is not None:
        return st.sampled_from(allowed)
    from hypothesis_jsonschema import from_schema

    key: dict[str, Any] = {"type": "string", "maxLength": CAP_LENGTH}
    prefixes: list[str] = []
    for rule in _rules(node):
        if match := re.search(r"k\.matches\('([^']*)'\)", rule):
            key["pattern"] = match.group(1)
        if match := re.search(r"size\(k\) <= (\d+)", rule):
            key["maxLength"] = min(int(match.group(1)), CAP_LENGTH)
        prefixes += re.findall(r"!k\.upperAscii\(\)\.startsWith\('([^']*)'\)", rule)
    strategy = from_schema(key)
    if prefixes:
        strategy = strategy.filter(lambda k: not k.upper().startswith(tuple(prefixes)))
    return strategy


def _allowed_keys(node: dict[str, Any], field: str) -> list[str] | None:
    for rule in _rules(node):
        if match := re.search(rf"self\.{field}\.all\(k, k in \[([^\]]*)\]\)", rule):
            return re.findall(r"'([^']*)'", match.group(1))
    return None


def schema_strategy(node: dict[str, Any], path: str = "", *,
                    allowed_keys: list[str] | None = None) -> st.SearchStrategy[Any]:
    """Values the schema `node` (at `path`, e.g. `.app`) admits, CEL rules aside (see CEL_AS_STRATEGY)."""
    from hypothesis_jsonschema import from_schema

    kind = node.get("type")
    strategy: st.SearchStrategy[Any]
    if kind == "object" and "properties" in node:
        children = {name: schema_strategy(child, f"{path}.{name}", allowed_keys=_allowed_keys(node, name))
                    for name, child in node["properties"].items()}
        required = set(node.get("required", []))
        strategy = st.fixed_dictionaries({n: s for n, s in children.items() if n in required},
                                         optional={n: s for n, s in children.items() if n not in required})
    elif kind == "object" and isinstance(node.get("additionalProperties"), dict):
        strategy = st.dictionaries(_map_keys(node, allowed_keys),
                                   schema_strategy(node["additionalProperties"], path + "{}"),
                                   max_size=min(node.get("maxProperties", CAP_ITEMS), CAP_ITEMS))
    elif kind == "array":
        unique_by = None
        if node.get("x-kubernetes-list-type") == "map":
            keys = node["x-kubernetes-list-map-keys"]
            unique_by = lambda item: tuple(item.get(k) for k in keys)  # noqa: E731
        strategy = st.lists(schema_strategy(node["items"], path + "[]"), min_size=node.get("minItems", 0),
                            max_size=min(node.get("maxItems", CAP_ITEMS), CAP_ITEMS), unique_by=unique_by,
                            unique=node.get("x-kubernetes-list-type") == "set")
    else:
        strategy = from_schema(as_json_schema(node, caps=True))
    if path in CEL_AS_STRATEGY:
        strategy = CEL_AS_STRATEGY[path](strategy)
    return strategy


_FARGATE_PAIRS = sorted((cpu, memory) for cpu, sizes in api.FARGATE_SIZES.items() for memory in sizes)


def _fargate_sizes(apps: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """The app's Fargate rule (generated from FARGATE_SIZES): 9 in 10 apps whose cpu and memory are no
    Fargate size get one instead, so that sizes other than the defaults reach rendering; the rest stay
    refused. A cpu or memory alone is left to the rule (with the other's default)."""
    @st.composite
    def sized(draw: st.DrawFn) -> dict[str, Any]:
        app = draw(apps)
        if ("cpu" in app and "memory" in app and app["memory"] not in api.FARGATE_SIZES[app["cpu"]]
                and draw(st.integers(0, 9))):
            app["cpu"], app["memory"] = draw(st.sampled_from(_FARGATE_PAIRS))
        return app

    return sized()


# CEL rules the schema's keywords cannot say and that would refuse most examples, as strategy
# transforms by path. The map-key rules and the `k in [...]` lists are read from the rules themselves
# (`_map_keys`); the other rules (rollout/image, durations, case-insensitive names, backendRef and
# backend together, ...) are left to refuse the examples that break them.
CEL_AS_STRATEGY = {".app": _fargate_sizes}


@functools.cache
def crd_specs() -> st.SearchStrategy[dict[str, Any]]:
    """Specs the CRD's schema admits (most of them its CEL rules too), from crds/llmapp.yaml."""
    return schema_strategy(_crd_schema()["properties"]["spec"])
