"""Generated specs: each is rejected with InvalidSpec or renders; nothing else ever escapes."""

from __future__ import annotations

import pathlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmapp_operator.api.spec import InvalidSpec, LLMApp
from llmapp_operator.api.workspace import NAME_MAX, ModuleInfo, render
from llmapp_operator.config import Settings

CONTRACT = {
    name: name in {"name", "environment", "aws_region", "github_repository", "github_environment"}
    for name in (
        "name",
        "environment",
        "aws_region",
        "github_repository",
        "github_environment",
        "container_port",
        "task_cpu",
        "task_memory",
        "rollout",
        "health_check_path",
        "image",
        "app_environment",
        "app_secret_arns",
        "vpc_cidr",
        "az_count",
        "single_nat_gateway",
        "tags",
    )
}
MODULE = ModuleInfo(name="stack", path=pathlib.Path("/m"), digest="d", variables=CONTRACT, outputs=frozenset())

hostile_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "../../etc/passwd",
            "acme/rags; rm -rf /",
            "$(reboot)",
            "a" * 300,
            "ünïcødé/名前",
            "acme/rags",
            "us-east-1",
            "dev",
            "/_stcore/health",
            "10.0.0.0/16",
        ]
    ),
)
values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10, 200_000), hostile_text),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(hostile_text, children, max_size=3)),
    max_leaves=8,
)
specs = st.fixed_dictionaries(
    {},
    optional={
        "environment": hostile_text,
        "aws": st.fixed_dictionaries({}, optional={"region": hostile_text}),
        "app": st.fixed_dictionaries(
            {},
            optional={
                "cpu": st.sampled_from([256, 512, 1024, 2048, 300]),
                "memory": st.integers(0, 130_000),
                "containerPort": st.integers(-1, 70_000),
                "env": st.dictionaries(hostile_text, hostile_text, max_size=5),
                "healthCheckPath": hostile_text,
                "desiredCount": st.integers(-1, 200),
            },
        ),
        "github": st.fixed_dictionaries({}, optional={"repository": hostile_text, "environment": hostile_text}),
        "terraform": st.fixed_dictionaries(
            {},
            optional={
                "module": hostile_text,
                "timeout": hostile_text,
                "vars": st.dictionaries(hostile_text, values, max_size=3),
            },
        ),
        "suspend": values,
        "extra": values,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs, namespace=hostile_text, name=hostile_text)
def test_any_spec_is_rejected_cleanly_or_renders(spec: dict[str, Any], namespace: str, name: str) -> None:
    body = {"metadata": {"name": name, "namespace": namespace, "uid": "u"}, "spec": spec}
    try:
        app = LLMApp.from_body(body)
    except InvalidSpec as exc:
        assert str(exc).startswith("spec")
        return
    try:
        ws = render(app, Settings(), MODULE)
    except InvalidSpec:
        return
    assert len(ws.tfvars["name"]) <= NAME_MAX
    assert ws.backend.key.endswith(f"/{namespace}/{name}/terraform.tfstate")
