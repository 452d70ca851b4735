"""The chart's NetworkPolicies, rendered by Helm's own engine like tests/unit/test_chart.py: the
operator's pods take scrapes and probes only, both pods reach DNS and HTTPS but never the instance
metadata service, and the Terraform Jobs' pods take nothing in."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_chart import CHART, FULL_VALUES, KUBERNETES_VERSION, by_kind, helm, kubernetes_validate, render

IMDS = "169.254.169.254/32"
JOB_LABELS = {"app.kubernetes.io/managed-by": "llmapp-operator", "app.kubernetes.io/name": "llmapp-terraform"}


def policies(values: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in by_kind(render(values), "NetworkPolicy")}


def tcp_ports(rule: dict[str, Any]) -> list[int]:
    return [p["port"] for p in rule.get("ports", []) if p.get("protocol", "TCP") == "TCP"]


def dns_rule(egress: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in egress if {(p["protocol"], p["port"]) for p in r["ports"]} == {("UDP", 53), ("TCP", 53)})


def anywhere_rule(egress: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in egress if any(peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for peer in r["to"]))


def assert_standard_egress(egress: list[dict[str, Any]]) -> None:
    assert dns_rule(egress)["to"] == [{"namespaceSelector": {}}]   # the resolver, in any namespace
    anywhere = anywhere_rule(egress)
    assert tcp_ports(anywhere) == [443, 6443]
    assert anywhere["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [IMDS]}}]
    assert all(rule.get("ports") for rule in egress), "a rule without ports would open every port"


def test_the_operator_policy_selects_the_deployment_s_pods_and_lets_in_scrapes_and_probes_only() -> None:
    objects = render()
    deployment = by_kind(objects, "Deployment")[0]
    [policy] = by_kind(objects, "NetworkPolicy")
    assert policy["metadata"]["namespace"] == deployment["metadata"]["namespace"] == "llmapp-system"
    assert policy["spec"]["podSelector"] == {"matchLabels": deployment["spec"]["selector"]["matchLabels"]}
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    [ingress] = policy["spec"]["ingress"]
    assert tcp_ports(ingress) == [9090, 8080] and "from" not in ingress   # empty metricsFrom: from anywhere
    container_ports = {p["name"]: p["containerPort"]
                       for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert set(tcp_ports(ingress)) == {container_ports["metrics"], container_ports["health"]}
    assert_standard_egress(policy["spec"]["egress"])


def test_the_ports_follow_the_values() -> None:
    policy = policies({"metrics": {"port": 9191}, "healthPort": 8181})["llmapp-operator"]
    assert tcp_ports(policy["spec"]["ingress"][0]) == [9191, 8181]
    egress = policies({"networkPolicy": {"egressPorts": [443]}})["llmapp-operator"]["spec"]["egress"]
    assert tcp_ports(anywhere_rule(egress)) == [443]


def test_no_egress_ports_means_no_anywhere_rule_rather_than_every_port() -> None:
    egress = policies({"networkPolicy": {"egressPorts": []}})["llmapp-operator"]["spec"]["egress"]
    assert not [r for r in egress if any(p.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for p in r["to"])]
    assert all(rule.get("ports") for rule in egress)


def test_the_pod_identity_agent_stays_reachable() -> None:
    egress = policies()["llmapp-operator"]["spec"]["egress"]
    agent = [r for r in egress if r["to"] == [{"ipBlock": {"cidr": "169.254.170.23/32"}}]]
    assert [tcp_ports(r) for r in agent] == [[80]]


def test_disabled_renders_no_policy() -> None:
    assert not policies({"networkPolicy": {"enabled": False}})
    assert not policies({"networkPolicy": {"enabled": False}, "jobRunner": {"enabled": True}})


def test_the_job_policy_exists_only_with_the_job_runner_and_lets_nothing_in() -> None:
    assert set(policies()) == {"llmapp-operator"}
    found = policies({"jobRunner": {"enabled": True}})
    assert set(found) == {"llmapp-operator", "llmapp-operator-terraform"}
    job = found["llmapp-operator-terraform"]
    assert job["metadata"]["namespace"] == "llmapp-system"   # jobRunner.namespace unset: the release's
    assert job["spec"]["podSelector"] == {"matchLabels": JOB_LABELS}
    assert job["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in job["spec"]
    assert job["spec"]["egress"] == found["llmapp-operator"]["spec"]["egress"]
    assert_standard_egress(job["spec"]["egress"])


def test_the_job_policy_selects_the_labels_the_runner_puts_on_its_pods() -> None:
    from llmapp_operator.runners.job import MANAGED_BY

    assert dict(MANAGED_BY) == JOB_LABELS


def test_metrics_from_and_extra_egress_are_rendered() -> None:
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    proxy = {"to": [{"ipBlock": {"cidr": "10.20.0.10/32"}}], "ports": [{"protocol": "TCP", "port": 3128}]}
    found = policies({"jobRunner": {"enabled": True},
                      "networkPolicy": {"metricsFrom": peers, "extraEgress": [proxy],
                                        "deniedCidrs": [IMDS, "192.0.2.0/24"]}})
    operator, job = found["llmapp-operator"]["spec"], found["llmapp-operator-terraform"]["spec"]
    assert operator["ingress"][0]["from"] == peers
    assert operator["egress"][-1] == proxy and job["egress"][-1] == proxy
    assert anywhere_rule(operator["egress"])["to"][0]["ipBlock"]["except"] == [IMDS, "192.0.2.0/24"]


def test_full_values_policies_are_valid_network_policies() -> None:
    found = by_kind(render(FULL_VALUES, name="llmapp"), "NetworkPolicy")
    assert sorted(p["metadata"]["name"] for p in found) == ["llmapp", "llmapp-terraform"]
    for policy in found + by_kind(render(), "NetworkPolicy"):
        kubernetes_validate.validate(policy, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("values", [
    {"networkPolicy": {"egressPorts": [0]}}, {"networkPolicy": {"deniedCidrs": ["169.254.169.254"]}},
    {"networkPolicy": {"metricsFrom": [{"namespace": "monitoring"}]}}, {"networkPolicy": {"unknown": True}},
], ids=["port-zero", "cidr-without-length", "peer-unknown-field", "unknown-key"])
def test_schema_rejects_wrong_network_policy_values(values: dict[str, Any]) -> None:
    with pytest.raises(helm.errors.HelmValuesError):
        helm.Chart.load(str(CHART)).validate_schema(values)
