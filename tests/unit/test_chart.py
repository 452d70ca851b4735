"""The Helm chart rendered by Helm's own engine (helm-python-sdk: Helm's Go SDK as a shared
library inside the wheel), every object validated against the Kubernetes 1.32 schemas."""

from __future__ import annotations

import base64
import pathlib
import tempfile
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (Helm's engine) is needed to render the chart")
kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is needed")

CHART = REPO / "charts" / "llmapp-operator"
KUBERNETES_VERSION = "1.32.0"
FULL_VALUES = yaml.safe_load((CHART / "ci" / "full-values.yaml").read_text())
NOT_IN_CORE_SCHEMAS = {"ServiceMonitor"}  # custom resources
HA_VALUES = yaml.safe_load((CHART / "ci" / "ha-values.yaml").read_text())
SHARDS_VALUES = yaml.safe_load((CHART / "ci" / "shards-values.yaml").read_text())


def render(values: dict[str, Any] | None = None, name: str = "llmapp-operator") -> list[dict[str, Any]]:
    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values or {}, name=name, namespace="llmapp-system", is_install=True)
    return [doc for text in manifests.values() for doc in yaml.safe_load_all(text) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def operator_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    container = by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_chart_crd_is_the_single_source() -> None:
    assert (CHART / "files" / "llmapp-crd.yaml").read_bytes() == (REPO / "crds" / "llmapp.yaml").read_bytes(), (
        "charts/llmapp-operator/files/llmapp-crd.yaml differs from crds/llmapp.yaml: run make crd")


@pytest.mark.parametrize("values", [{}, HA_VALUES, FULL_VALUES, {"replicas": 3, "jobRunner": {"enabled": True}},
                                    SHARDS_VALUES], ids=["defaults", "ha", "full", "three-replicas", "shards"])
def test_no_object_of_a_kind_whose_crd_is_in_the_same_release(values: dict[str, Any]) -> None:
    """Helm maps every object of a release before it creates any: an object whose CRD comes in the same
    release has no mapping yet and the install fails (`no matches for kind ...`). Kopf's peering CRD
    and its KopfPeering objects did exactly that."""
    objects = render(values)
    defined = {(crd["spec"]["group"], crd["spec"]["names"]["kind"])
               for crd in by_kind(objects, "CustomResourceDefinition")}
    shipped = {(o["apiVersion"].split("/")[0] if "/" in o["apiVersion"] else "", o["kind"]) for o in objects}
    assert not defined & shipped, f"objects of kinds defined in the same release: {sorted(defined & shipped)}"


def test_helm_lint_is_clean() -> None:
    for values in ({}, FULL_VALUES):
        report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBERNETES_VERSION}")
        assert report["errors"] == []
        assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("values", [{}, FULL_VALUES, SHARDS_VALUES], ids=["defaults", "full", "shards"])
def test_every_object_is_valid_for_the_supported_kubernetes(values: dict[str, Any]) -> None:
    objects = render(values)
    checked = 0
    for obj in objects:
        if obj["kind"] in NOT_IN_CORE_SCHEMAS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 5


def test_defaults_render_the_operator_with_cluster_rbac_and_the_kept_crd() -> None:
    objects = render()
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding",
                     "CustomResourceDefinition", "Deployment", "NetworkPolicy", "Role", "RoleBinding", "Secret",
                     "Service", "ServiceAccount"]
    # The install's digest key: from its Secret, never a plain value.
    digest_key = by_kind(objects, "Secret")[0]
    container = by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "LLMAPP_DIGEST_KEY", "valueFrom": {"secretKeyRef": {
        "name": digest_key["metadata"]["name"], "key": "key"}}} in container["env"]
    assert len(base64.b64decode(digest_key["data"]["key"])) >= 32
    crd = by_kind(objects, "CustomResourceDefinition")[0]
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    source = yaml.safe_load((REPO / "crds" / "llmapp.yaml").read_text())
    assert crd["spec"] == source["spec"], "the rendered CRD must be crds/llmapp.yaml (labels aside)"
    env = operator_env(objects)
    assert env["LLMAPP_LEADER_ELECTION"] == "true" and env["LLMAPP_NAMESPACES"] == ""
    assert env["LLMAPP_WORKDIR"] == "/work" and env["LLMAPP_LOG_FORMAT"] == "json"
    deployment = by_kind(objects, "Deployment")[0]
    # The new pod stands by until the old one releases the leader Lease: never two operators at once.
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert by_kind(render({"leaderElection": {"enabled": False}}), "Deployment")[0]["spec"]["strategy"]["type"] == \
        "Recreate"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == ["run", "--skip-crd"]


def test_shards_run_one_deployment_each_with_its_own_pods_and_lease() -> None:
    from llmapp_operator.config import Settings

    objects = render({**SHARDS_VALUES, "shards": 3})
    deployments = by_kind(objects, "Deployment")
    assert [d["metadata"]["name"] for d in deployments] == [f"llmapp-operator-shard-{k}" for k in range(3)]
    leases = set()
    for shard, deployment in enumerate(deployments):
        env = operator_env([deployment])
        assert (env["LLMAPP_SHARDS"], env["LLMAPP_SHARD"], env["LLMAPP_SHARD_BY"]) == ("3", str(shard), "label")
        settings = Settings.model_validate({name: env[f"LLMAPP_{name.upper()}"] for name in (
            "shards", "shard", "shard_by", "shard_assign", "leader_election_name")})
        leases.add(settings.lease_name)
        # Each Deployment selects only its own pods (two Deployments must never adopt each other's).
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector["llmops.dev/operator-shard"] == str(shard) == \
            deployment["spec"]["template"]["metadata"]["labels"]["llmops.dev/operator-shard"]
        assert deployment["spec"]["replicas"] == 2
    # The leader Role lets the shards use exactly their own Leases.
    leader = next(r for r in by_kind(objects, "Role") if r["metadata"]["name"].endswith("-leader"))
    named = next(rule for rule in leader["rules"] if "resourceNames" in rule)
    assert set(named["resourceNames"]) == leases == {f"llmapp-operator-shard-{k}" for k in range(3)}
    # The metrics Service and the network policy keep covering every shard's pods.
    service = by_kind(objects, "Service")[0]
    assert "llmops.dev/operator-shard" not in service["spec"]["selector"]


def test_one_shard_renders_the_unsharded_names_and_selectors() -> None:
    """An upgrade from a release before shards changes nothing (a Deployment's selector is immutable)."""
    deployment = by_kind(render(), "Deployment")[0]
    assert deployment["metadata"]["name"] == "llmapp-operator"
    assert "llmops.dev/operator-shard" not in deployment["spec"]["selector"]["matchLabels"]
    env = operator_env([deployment])
    assert (env["LLMAPP_SHARDS"], env["LLMAPP_SHARD"]) == ("1", "0")
    leader = next(r for r in by_kind(render(), "Role") if r["metadata"]["name"].endswith("-leader"))
    assert next(rule for rule in leader["rules"] if "resourceNames" in rule)["resourceNames"] == ["llmapp-operator"]


def test_env_names_are_the_ones_the_operator_reads() -> None:
    from llmapp_operator.config import Settings

    known = set(Settings().to_env(secrets=True)) | {"POD_NAME"}
    assert set(operator_env(render(FULL_VALUES))) - {"AWS_REGION"} <= known
    assert set(operator_env(render(FULL_VALUES))) >= {"LLMAPP_SHUTDOWN_GRACE_SECONDS", "LLMAPP_KILL_GRACE_SECONDS"}


@pytest.mark.parametrize("values", [{}, {"terminationGracePeriodSeconds": 120, "operator": {"killGraceSeconds": 20}}])
def test_a_stopping_pod_finishes_its_passes_inside_the_grace_period(values: dict[str, Any],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Kopf's exit timeout (shutdown grace + kill grace + 5) from the chart's settings ends the
    whole stop 10 s before the kubelet's SIGKILL."""
    objects = render(values)
    env = operator_env(objects)
    grace = by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    import kopf

    from llmapp_operator.config import Settings
    from llmapp_operator.kopf_app.handlers import configure_kopf

    for name, value in env.items():
        if value is not None and name.startswith("LLMAPP_"):
            monkeypatch.setenv(name, value)
    operator = Settings.from_env()
    assert operator.shutdown_grace_seconds > 0
    kopf_settings = kopf.OperatorSettings()
    configure_kopf(kopf_settings, operator)
    assert kopf_settings.queueing.exit_timeout == grace - 10


def test_full_values_turn_every_knob() -> None:
    objects = render(FULL_VALUES, name="llmapp")
    assert not by_kind(objects, "CustomResourceDefinition") or all(
        o["metadata"]["name"].endswith("kopf.dev") for o in by_kind(objects, "CustomResourceDefinition"))
    # Cluster-wide only the labels of the watched namespaces (tenant policies select by label).
    assert [(r["metadata"]["name"], r["rules"]) for r in by_kind(objects, "ClusterRole")] == [
        ("llmapp-namespaces", [{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["team-a", "team-b"],
                                "verbs": ["get"]}])]
    roles = [r for r in by_kind(objects, "Role") if r["metadata"]["name"] == "llmapp"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    # The job runner is on, but nothing of it is in a tenant namespace: its Jobs, its account,
    # its rights and its key live in the job namespace only.
    assert not any(rule["resources"] == ["jobs"] for r in roles for rule in r["rules"])
    jobs_role = next(r for r in by_kind(objects, "Role") if r["metadata"]["name"] == "llmapp-jobs")
    assert jobs_role["metadata"]["namespace"] == "llmapp-runs"
    assert any(rule["resources"] == ["jobs"] for rule in jobs_role["rules"])
    runner_roles = [r for r in by_kind(objects, "Role") if r["metadata"]["name"] == "llmapp-terraform"]
    assert [(r["metadata"]["namespace"], r["rules"]) for r in runner_roles] == [
        ("llmapp-runs", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}])]
    runner_account = next(a for a in by_kind(objects, "ServiceAccount") if a["metadata"]["name"] == "llmapp-terraform")
    assert runner_account["metadata"]["namespace"] == "llmapp-runs"
    assert runner_account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith("role/llmapp-terraform")
    keys = {(s["metadata"]["namespace"], s["data"]["key"]) for s in by_kind(objects, "Secret")
            if s["metadata"]["name"] == "llmapp-job-signing-key"}
    assert {namespace for namespace, _ in keys} == {"llmapp-runs", "llmapp-system"}
    assert len({key for _, key in keys}) == 1 and len(base64.b64decode(next(iter(keys))[1])) >= 32   # one key
    leader = next(r for r in by_kind(objects, "Role") if r["metadata"]["name"] == "llmapp-leader")
    assert leader["metadata"]["namespace"] == "llmapp-system"
    assert {(tuple(r["resources"]), tuple(r.get("resourceNames", ())), tuple(r["verbs"])) for r in leader["rules"]} == {
        (("leases",), (), ("create",)), (("leases",), ("llmapp",), ("get", "update"))}
    env = operator_env(objects)
    assert env["LLMAPP_LEADER_ELECTION"] == "true" and env["LLMAPP_NAMESPACES"] == "team-a,team-b"
    assert env["LLMAPP_GITHUB_HOSTS"] == "api.github.com,github.example.com"
    assert env["LLMAPP_LEADER_ELECTION_NAME"] == "llmapp" and env["LLMAPP_LEADER_ELECTION_NAMESPACE"] == "llmapp-system"
    assert env["LLMAPP_LOCK_TABLE"] == "terraform-locks" and env["LLMAPP_METRICS_PORT"] == "9191"
    monitor = by_kind(objects, "ServiceMonitor")[0]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert env["LLMAPP_DEFAULT_RUNNER"] == "job" and env["LLMAPP_JOB_MEMORY"] == "2Gi"
    assert env["LLMAPP_JOB_IMAGE"] == "registry.example.com/platform/llmapp-operator:0.1.0-rc1"  # its own image
    account = next(a for a in by_kind(objects, "ServiceAccount") if a["metadata"]["name"] == "llmapp-operator")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")


def test_the_job_runner_s_rights_exist_only_when_it_is_enabled_and_only_in_the_job_namespace() -> None:
    def resources(objects: list[dict[str, Any]], kind: str) -> set[str]:
        return {resource for role in by_kind(objects, kind) for rule in role["rules"] for resource in rule["resources"]}

    assert not (resources(render(), "ClusterRole") | resources(render(), "Role")) & {"jobs", "pods", "pods/log",
                                                                                     "configmaps"}
    assert operator_env(render())["LLMAPP_DEFAULT_RUNNER"] == "local"
    assert "LLMAPP_JOB_IMAGE" not in operator_env(render())
    objects = render({"jobRunner": {"enabled": True}})
    assert not resources(objects, "ClusterRole") & {"jobs", "pods", "pods/log", "configmaps"}
    jobs_role = next(r for r in by_kind(objects, "Role") if r["metadata"]["name"].endswith("-jobs"))
    assert jobs_role["metadata"]["namespace"] == "llmapp-system"   # the release namespace by default
    assert {"jobs", "pods", "pods/log", "configmaps"} <= resources([jobs_role], "Role")
    env = operator_env(objects)
    assert env["LLMAPP_JOB_NAMESPACE"] == "llmapp-system"
    container = by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    key = next(item for item in container["env"] if item["name"] == "LLMAPP_JOB_SIGNING_KEY")
    secret = next(s for s in by_kind(objects, "Secret") if s["metadata"]["name"] == env["LLMAPP_JOB_SIGNING_SECRET"])
    assert key["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"], "key": "key"}


def test_tenant_policies_from_values_are_what_the_operator_reads() -> None:
    from llmapp_operator.kube.tenants import read_policies

    policy = {"name": "team-a", "namespaceSelector": {"matchLabels": {"llmops.dev/tenant": "a"}},
              "role": {"arn": "arn:aws:iam::123456789012:role/llmapp-tenant-a", "externalId": "ext-a"},
              "regions": ["eu-west-1"], "backends": {"default": {"bucket": "acme-tfstate", "region": "eu-west-1"}},
              "modules": ["stack"], "tenantVariables": ["ecr_keep_images"], "maxMonthlyCost": 500}
    objects = render({"tenants": {"policies": [policy]}})
    configmap = next(c for c in by_kind(objects, "ConfigMap") if c["metadata"]["name"].endswith("-tenants"))
    env = operator_env(objects)
    path = pathlib.Path(env["LLMAPP_TENANT_POLICIES"])
    pod = by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "tenants")
    assert str(path.parent) == mount["mountPath"] and mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == "tenants")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    with tempfile.TemporaryDirectory() as scratch:
        written = pathlib.Path(scratch) / path.name
        written.write_text(configmap["data"][path.name])
        parsed = read_policies(written)
    assert parsed.policies[0].role is not None and parsed.policies[0].role.external_id == "ext-a"
    assert "LLMAPP_TENANT_POLICIES" not in operator_env(render())   # no policies: single tenant


@pytest.mark.parametrize("bad", [
    {"name": "team-a", "namespaces": ["team-a"]},                                            # no backends
    {"name": "team-a", "namespaces": ["team-a"], "backends": {"d": {"bucket": "b", "region": "x"}}},
    {"name": "team-a", "namespaces": ["team-a"], "backends": {}, "role": {"arn": "not-an-arn"}},
    {"name": "Team A", "namespaces": ["team-a"], "backends": {}},
    {"name": "team-a", "namespaces": ["team-a"], "backends": {}, "typo": 1},
])
def test_a_tenant_policy_the_operator_would_refuse_fails_the_install(bad: dict[str, Any]) -> None:
    with pytest.raises(Exception, match="values don't meet the specifications|schema"):
        render({"tenants": {"policies": [bad]}})


def test_rbac_has_no_wildcards_and_every_rule_is_explained() -> None:
    for values in ({}, FULL_VALUES, {"replicas": 3}):
        for role in by_kind(render(values), "ClusterRole") + by_kind(render(values), "Role"):
            for rule in role["rules"]:
                for field in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule[field], (role["metadata"]["name"], rule)
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    for define, at_least in (("llmapp-operator.rules", 4), ("llmapp-operator.jobRules", 4)):
        rules = helpers.split(f'define "{define}"', 1)[1].split('{{- define', 1)[0]
        lines = rules.splitlines()
        unexplained = [lines[i + 1] for i in range(len(lines) - 1)
                       if lines[i + 1].startswith("- apiGroups:") and not lines[i].startswith("#")]
        assert rules.count("- apiGroups:") >= at_least and not unexplained  # a comment (the reason) above each


def test_pod_runs_restricted() -> None:
    pod = by_kind(render(), "Deployment")[0]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    container = pod["containers"][0]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/work", "/tmp"}  # writable places are emptyDirs
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["port"] == "health"


@pytest.mark.parametrize("values", [
    {"replicas": "two"}, {"image": {"tag": 5}}, {"unknownKey": True}, {"operator": {"logFormat": "xml"}},
    {"watchNamespaces": ["Team_A"]}, {"metrics": {"port": 70000}}, {"shards": 0}, {"sharding": {"by": "hash"}},
    {"operator": {"driftConcurrency": "0"}},
], ids=["replicas-string", "tag-int", "unknown-key", "log-format", "namespace-name", "port-range", "no-shards",
        "shard-by", "drift-none"])
def test_schema_rejects_wrong_values(values: dict[str, Any]) -> None:
    import jsonschema

    schema = yaml.safe_load((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.validate(defaults, schema)  # the defaults themselves pass
    with pytest.raises(helm.errors.HelmValuesError):
        helm.Chart.load(str(CHART)).validate_schema(values)
    merged = {**defaults, **values}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(merged, schema)
