"""Specs generated from the CRD's own schema (crds/llmapp.yaml): most of them parse, the model and the
API server agree on every one, and what the operator derives from a parsed spec keeps its promises:
the input digest is stable and follows every Terraform input, resource names fit AWS and the stack
and never collide, and no variable the operator sets can be set through spec.terraform.vars."""

from __future__ import annotations

import copy
import pathlib
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator

from llmapp_operator.api import spec as api
from llmapp_operator.api.spec import STANDARD_VARIABLES, InvalidSpec, LLMApp
from llmapp_operator.api.workspace import NAME_MAX, ModuleInfo, Workspace, render, resource_name, standard_variables
from llmapp_operator.config import Settings
from tests.conftest import REPO
from tests.spec_samples import BASE, as_json_schema, crd_schema, crd_specs, set_path
from tests.unit.test_crd import model_verdict, server_verdict

# The stack's variable contract: every standard variable (the first five required), and the
# variables an object may set for it.
CONTRACT = {name: name in {"name", "environment", "aws_region", "github_repository", "github_environment"}
            for name in STANDARD_VARIABLES}
CONTRACT.update({name: False for name in api.BUILTIN_MODULE_VARIABLES["stack"]})
MODULE = ModuleInfo(name="stack", path=pathlib.Path("/m"), digest="d", variables=CONTRACT, outputs=frozenset())
SETTINGS = Settings()
SPEC_VALIDATOR = Draft4Validator(as_json_schema(crd_schema()["properties"]["spec"]))
MIN_PARSED_SHARE = 0.6   # below this the strategy has degenerated: the properties would test little

# The stack's own check of the name the operator derives (terraform/stack/variables.tf).
_NAME_VARIABLE = (REPO / "terraform" / "stack" / "variables.tf").read_text().split('variable "name"', 1)[1]
STACK_NAME = re.compile(re.search(r'regex\("([^"]+)", var\.name\)', _NAME_VARIABLE).group(1))  # type: ignore[union-attr]

SETTINGS_FOR_GENERATION = settings(max_examples=200, deadline=None, database=None,
                                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def parse(spec: dict[str, Any], namespace: str = "team-a", name: str = "a") -> LLMApp:
    return LLMApp.from_body({"metadata": {"name": name, "namespace": namespace, "uid": "u"},
                             "spec": copy.deepcopy(spec)})


def rendered(spec: dict[str, Any], namespace: str = "team-a", name: str = "a") -> Workspace:
    return render(parse(spec, namespace, name), SETTINGS, MODULE)


def single_tenant(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with the state backend the single-tenant default offers (a tenant policy's backends
    are not the CRD's to know: render refuses others with a PermanentError)."""
    spec = copy.deepcopy(spec)
    terraform = spec.get("terraform", {})
    terraform.pop("backend", None)
    if "backendRef" in terraform:
        terraform["backendRef"] = "default"
    return spec


def parsed_specs() -> st.SearchStrategy[dict[str, Any]]:
    return crd_specs().map(single_tenant).filter(lambda spec: model_verdict(spec)[0])


# -- the generated specs ----------------------------------------------------------------------------
def test_generated_specs_are_valid_mostly_parse_and_the_server_agrees_on_each() -> None:
    """Each generated spec is valid against the CRD's OpenAPI schema (as JSON Schema); the API server
    (schema and CEL, as a v1.32 server evaluates them) and the model give it the same verdict; every
    spec that parses renders. And most parse: otherwise the properties below would test little."""
    seen: Counter[str] = Counter()

    @SETTINGS_FOR_GENERATION
    @given(spec=crd_specs())
    def check(spec: dict[str, Any]) -> None:
        assert [error.message for error in SPEC_VALIDATOR.iter_errors(spec)] == []
        server, model = server_verdict(spec), model_verdict(spec)
        note(f"server {server}, model {model}")
        assert server[0] == model[0], f"server {server}, model {model}"
        if model[0]:
            ws = rendered(single_tenant(spec))
            assert ws.tfvars["name"] == resource_name("team-a", "a")
        outcome = "parses" if model[0] else "refused: " + model[1].split(":")[0]
        event(outcome)
        seen["parses" if model[0] else "refused"] += 1

    check()
    total = seen["parses"] + seen["refused"]
    print(f"generated specs that parse: {seen['parses']}/{total}")
    assert total >= 100, seen
    assert seen["parses"] >= MIN_PARSED_SHARE * total, f"only {seen['parses']} of {total} generated specs parse"


# The API server's RE2 reads \s as ASCII whitespace only, pydantic's Rust regex as Unicode whitespace:
# the spec's patterns spell the class out (api/spec.py RE2_SPACE), so both refuse or admit alike.
@pytest.mark.parametrize(("path", "value"), [(("app", "healthCheckPath"), "/\u00a0"),
                                             (("app", "healthCheckPath"), "/\x0b"),
                                             (("github", "apiUrl"), "https://ghe.example.com/\u2003")])
def test_patterns_with_backslash_s_mean_the_same_to_the_server_and_the_model(path: tuple[str, ...],
                                                                             value: str) -> None:
    spec = copy.deepcopy(BASE)
    set_path(spec, path, value)
    assert server_verdict(spec)[0] == model_verdict(spec)[0]


# -- the input digest -------------------------------------------------------------------------------
def _other(text: str, limit: int) -> str:
    """A different string of at most `limit` characters, the same but for its last one."""
    other = text[: limit - 1] + "a"
    return other if other != text else text[: limit - 1] + "b"


def _toggle(current: Any, one: Any, another: Any) -> Any:
    return another if current == one else one


Change = Callable[[dict[str, Any]], None]


def _fargate(spec: dict[str, Any]) -> None:
    app = spec.setdefault("app", {})
    current = (app.get("cpu", 1024), app.get("memory", 2048))
    app["cpu"], app["memory"] = _toggle(current, (256, 512), (512, 1024))


def _env(spec: dict[str, Any]) -> None:
    env = spec.setdefault("app", {}).setdefault("env", {})
    env["CHANGED_INPUT"] = _toggle(env.get("CHANGED_INPUT"), "1", "2")


def _image(spec: dict[str, Any]) -> None:
    app = spec.setdefault("app", {})
    app["rollout"], app["image"] = "operator", _toggle(app.get("image"), "ghcr.io/acme/rags:1", "ghcr.io/acme/rags:2")


def _github_environment(spec: dict[str, Any]) -> None:
    github = spec["github"]
    github["environment"] = _other(github.get("environment") or spec["environment"], 63)


def _module_var(spec: dict[str, Any]) -> None:
    variables = spec.setdefault("terraform", {}).setdefault("vars", {})
    variables["alb_log_retention_days"] = _toggle(variables.get("alb_log_retention_days"), "30", "31")


def _set(path: tuple[str, ...], new: Callable[[Any], Any], default: Any = None) -> Change:
    def change(spec: dict[str, Any]) -> None:
        node = spec
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = new(node.get(path[-1], default))
    change.__name__ = ".".join(path)
    return change


# Each changes at least one Terraform variable of a valid spec and keeps it valid.
INPUT_CHANGES: list[Change] = [
    _set(("environment",), lambda env: _other(env, 63)),
    _set(("aws", "region"), lambda region: _toggle(region, "us-east-1", "eu-west-1")),
    _set(("app", "containerPort"), lambda port: port % 65535 + 1, 8501),
    _set(("app", "healthCheckPath"), lambda path: _other(path, 1024), "/_stcore/health"),
    _fargate, _env, _image, _module_var,
    _set(("network", "vpcCidr"), lambda cidr: _toggle(cidr, "10.0.0.0/16", "10.1.0.0/16"), "10.0.0.0/16"),
    _set(("network", "azCount"), lambda count: _toggle(count, 2, 3), 2),
    _set(("network", "singleNatGateway"), lambda single: not single, True),
    _set(("github", "repository"), lambda repo: _toggle(repo, "acme/rags", "acme/other")),
    _github_environment,
]
# Run knobs: none of them changes what Terraform would build, so none may change the digest.
RUN_KNOBS: list[Change] = [
    _set(("terraform", "timeout"), lambda timeout: _toggle(timeout, "45m", "2h")),
    _set(("terraform", "runner"), lambda runner: _toggle(runner, "local", "job")),
    _set(("terraform", "allowDestructiveChanges"), lambda allow: not allow, False),
    _set(("terraform", "maxMonthlyCost"), lambda cost: _toggle(cost, 400, 500)),
    _set(("terraform", "policy", "skip"), lambda skip: [] if skip else ["LLMAPP-S3-PRIVATE"], []),
    _set(("app", "desiredCount"), lambda count: count % 100 + 1, 1),
    _set(("suspend",), lambda suspend: not suspend, False),
    _set(("approvePlan",), lambda approve: _toggle(approve, "manual", "auto"), "auto"),
    _set(("deletionPolicy",), lambda policy: _toggle(policy, "Orphan", "Delete"), "Delete"),
    _set(("driftDetection", "interval"), lambda interval: _toggle(interval, "30m", "0"), "1h"),
]
IDENTITY_CHANGES = [("team-b", "a"), ("team-a", "b"), ("team", "a-a")]


@SETTINGS_FOR_GENERATION
@given(spec=parsed_specs(), change=st.sampled_from(INPUT_CHANGES), knob=st.sampled_from(RUN_KNOBS),
       identity=st.sampled_from(IDENTITY_CHANGES))
def test_the_digest_is_stable_and_follows_every_terraform_input(spec: dict[str, Any], change: Change, knob: Change,
                                                                identity: tuple[str, str]) -> None:
    first = rendered(spec)
    assert rendered(copy.deepcopy(spec)).digest == first.digest == rendered(spec).digest

    changed_spec = copy.deepcopy(spec)
    change(changed_spec)
    note(f"{change.__name__}: {changed_spec}")
    changed = rendered(changed_spec)
    assert changed.tfvars != first.tfvars, "the change changed no Terraform variable: fix INPUT_CHANGES"
    assert changed.digest != first.digest, f"{change.__name__} changed the variables, not the digest"

    knobbed_spec = copy.deepcopy(spec)
    knob(knobbed_spec)
    knobbed = rendered(knobbed_spec)
    assert (knobbed.tfvars, knobbed.digest) == (first.tfvars, first.digest), knob.__name__

    moved = rendered(spec, *identity)   # another object, same spec: its own name and state key
    assert moved.digest != first.digest


# -- resource names ---------------------------------------------------------------------------------
labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)       # a namespace
subdomains = st.lists(labels, min_size=1, max_size=4).map(".".join).filter(lambda n: len(n) <= 253)  # a name
short_parts = st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(namespace=st.one_of(labels, st.text(max_size=80)), name=st.one_of(subdomains, st.text(max_size=300)))
def test_resource_names_fit_aws_and_the_stacks_check(namespace: str, name: str) -> None:
    derived = resource_name(namespace, name)
    assert len(derived) <= NAME_MAX, derived
    assert STACK_NAME.fullmatch(derived), derived
    assert resource_name(namespace, name) == derived


@st.composite
def identities(draw: st.DrawFn) -> set[tuple[str, str]]:
    """(namespace, name) pairs that read the same once joined: `a-b/c` and `a/b-c`, `a/b.c` and
    `a/b-c`, long names alike up to the truncation; plus any others."""
    parts = draw(st.lists(short_parts, min_size=2, max_size=5))
    pairs = {("-".join(parts[:i]), joiner.join(parts[i:])) for i in range(1, len(parts)) for joiner in "-."}
    stem = draw(st.from_regex(r"[a-z][a-z0-9-]{22,61}[a-z0-9]", fullmatch=True))
    pairs |= {(stem[:i], stem[i:] or "x") for i in range(1, len(stem), 7)}
    pairs |= {("team-a", stem + suffix) for suffix in ("", "-1", "-2", "x")}
    pairs |= set(draw(st.lists(st.tuples(labels, subdomains), max_size=5)))
    return pairs


@settings(max_examples=200, deadline=None)
@given(pairs=identities())
def test_resource_names_are_unique_across_namespace_and_name_pairs(pairs: set[tuple[str, str]]) -> None:
    derived = {pair: resource_name(*pair) for pair in pairs}
    twins = Counter(derived.values())
    assert [pair for pair, name in derived.items() if twins[name] > 1] == []


# -- the operator's own variables -------------------------------------------------------------------
@SETTINGS_FOR_GENERATION
@given(spec=parsed_specs(), variable=st.sampled_from(STANDARD_VARIABLES), value=st.text(max_size=20))
def test_no_standard_variable_can_be_set_through_terraform_vars(spec: dict[str, Any], variable: str,
                                                               value: str) -> None:
    app = parse(spec)
    ws = render(app, SETTINGS, MODULE)
    standard = standard_variables(app, {})
    assert {k: ws.tfvars[k] for k in STANDARD_VARIABLES} == {k: standard[k] for k in STANDARD_VARIABLES}

    forging = copy.deepcopy(spec)
    forging.setdefault("terraform", {}).setdefault("vars", {})[variable] = value
    assert not server_verdict(forging)[0], "the API server admits it"
    assert not model_verdict(forging)[0], "the model admits it"

    # A stored object that skipped admission and the model's check: render refuses it too.
    terraform = app.spec.terraform.model_copy(update={"vars": {**app.spec.terraform.vars, variable: value}})
    forged = app.model_copy(update={"spec": app.spec.model_copy(update={"terraform": terraform})})
    with pytest.raises(InvalidSpec, match="set by the operator") as refused:
        render(forged, SETTINGS, MODULE)
    assert variable in str(refused.value)


# -- hostile input ----------------------------------------------------------------------------------
hostile_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["../../etc/passwd", "acme/rags; rm -rf /", "$(reboot)", "a" * 300, "ünïcødé/名前", "acme/rags",
                     "us-east-1", "dev", "/_stcore/health", "10.0.0.0/16", "name", "stack"]),
)
hostile_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10, 200_000), st.floats(allow_nan=True), hostile_text),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(hostile_text, children, max_size=3)),
    max_leaves=8,
)


def _paths(node: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path] if path else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*path, key))
    return found


CRD_SPECS = crd_specs()


@st.composite
def hostile_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A generated spec with up to two values (existing or new keys) replaced by anything at all."""
    spec = single_tenant(draw(CRD_SPECS))
    for _ in range(draw(st.integers(0, 2))):
        paths = _paths(spec)
        path = draw(st.sampled_from(paths)) if paths and draw(st.booleans()) else (draw(hostile_text),)
        set_path(spec, path, draw(hostile_values))
    return spec


def test_any_spec_is_rejected_cleanly_or_renders() -> None:
    """Nothing but InvalidSpec (with a message that names the field) escapes parsing and rendering,
    whatever the spec and the object's name; both outcomes are reached."""
    seen: Counter[str] = Counter()

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(spec=hostile_specs(), namespace=st.one_of(labels, hostile_text), name=st.one_of(subdomains, hostile_text))
    def check(spec: dict[str, Any], namespace: str, name: str) -> None:
        body = {"metadata": {"name": name, "namespace": namespace, "uid": "u"}, "spec": spec}
        try:
            app = LLMApp.from_body(body)
        except InvalidSpec as exc:
            assert str(exc).startswith("spec")
            seen["refused"] += 1
            return
        try:
            ws = render(app, SETTINGS, MODULE)
        except InvalidSpec as exc:
            assert str(exc).startswith(("spec.terraform.vars", "module")), exc
            seen["refused"] += 1
            return
        assert len(ws.tfvars["name"]) <= NAME_MAX
        assert ws.backend.key.endswith(f"/{namespace}/{name}/terraform.tfstate")
        seen["renders"] += 1

    check()
    assert min(seen["refused"], seen["renders"]) >= 0.2 * sum(seen.values()), seen
