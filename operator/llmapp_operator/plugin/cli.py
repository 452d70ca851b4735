"""`kubectl llmapp`: the LLMApp commands users ask for, as a kubectl plugin (console script
`kubectl-llmapp`, found by kubectl on PATH).

Everything goes through the Kubernetes API with the user's own kubeconfig (KUBECONFIG, --context),
so RBAC decides what each user may do, exactly as for kubectl. Output follows kubectl's habits:
`-n`/`-A`, `-o json|yaml`, errors on stderr as `Error from server (Reason): …`, exit code 1 on
failure. Waits show progress on stderr.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
import time
import webbrowser
from collections.abc import Sequence
from typing import Any

import yaml

from llmapp_operator import GROUP, PLURAL, VERSION
from llmapp_operator.api.errors import TransientError
from llmapp_operator.engine.worker import REQUEST_ANNOTATION
from llmapp_operator.kube.client import MERGE_PATCH, Answer, KubeClient, namespaced
from llmapp_operator.plugin import view

RESOURCE = f"{PLURAL}.{GROUP}"


class Failed(Exception):
    """A message for stderr and exit code 1."""


class Cluster:
    """The user's kubeconfig and the LLMApp API."""

    def __init__(self, context: str | None, namespace: str | None) -> None:
        import kubernetes

        try:
            kubernetes.config.load_kube_config(context=context)  # type: ignore[no-untyped-call]
            _, active = kubernetes.config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        except (kubernetes.config.ConfigException, OSError) as exc:
            raise Failed(f"error: no usable kubeconfig ({exc}); set KUBECONFIG or --context") from None
        self.namespace = namespace or (active or {}).get("context", {}).get("namespace") or "default"
        self.client = KubeClient(user_agent="kubectl-llmapp")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            answer = self.client.request_blocking(method, path, body=body,
                                                  content_type=MERGE_PATCH if method == "PATCH" else "application/json")
        except TransientError as exc:
            raise Failed(f"error: {exc.message}") from None
        if not answer.ok:
            raise Failed(_server_error(answer))
        return answer.json()

    def get(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", namespaced(f"{GROUP}/{VERSION}", self.namespace, PLURAL, name))
        return found

    def list(self, *, all_namespaces: bool) -> list[dict[str, Any]]:
        path = (f"/apis/{GROUP}/{VERSION}/{PLURAL}" if all_namespaces
                else namespaced(f"{GROUP}/{VERSION}", self.namespace, PLURAL))
        items: list[dict[str, Any]] = self._call("GET", path).get("items") or []
        return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    def patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        done: dict[str, Any] = self._call("PATCH", namespaced(f"{GROUP}/{VERSION}", self.namespace, PLURAL, name),
                                          patch)
        return done


def _server_error(answer: Answer) -> str:
    try:
        body = answer.json()
    except ValueError:
        body = None
    reason = body.get("reason") if isinstance(body, dict) else None
    return f"Error from server ({reason or answer.reason or answer.status}): {answer.message()}"


# -- commands --------------------------------------------------------------------------------------

def _emit(obj: Any, output: str | None, text: str) -> None:
    if output == "json":
        print(json.dumps(obj, indent=2, sort_keys=True))
    elif output == "yaml":
        print(yaml.safe_dump(obj, sort_keys=True), end="")
    else:
        print(text)


def cmd_status(cluster: Cluster, args: argparse.Namespace) -> int:
    if args.name is None:
        objects = cluster.list(all_namespaces=args.all_namespaces)
        if not objects and args.output is None:
            where = "any namespace" if args.all_namespaces else f"{cluster.namespace} namespace"
            print(f"No resources found in {where}.", file=sys.stderr)
            return 0
        _emit({"items": objects}, args.output, view.listing(objects, all_namespaces=args.all_namespaces))
        return 0
    obj = cluster.get(args.name)
    _emit(obj.get("status") or {}, args.output, view.status_screen(obj))
    return 0


def cmd_plan_show(cluster: Cluster, args: argparse.Namespace) -> int:
    obj = cluster.get(args.name)
    status = obj.get("status") or {}
    _emit({key: status.get(key) for key in ("plan", "cost", "policy")}, args.output, view.plan_screen(obj))
    return 0


def cmd_cost(cluster: Cluster, args: argparse.Namespace) -> int:
    obj = cluster.get(args.name)
    _emit((obj.get("status") or {}).get("cost") or {}, args.output, view.cost_screen(obj))
    return 0


def cmd_approve(cluster: Cluster, args: argparse.Namespace) -> int:
    obj = cluster.get(args.name)
    plan_id, why = view.pending_plan(obj, args.plan)
    if plan_id is None:
        raise Failed(f"error: {why}")
    cluster.patch(args.name, {"spec": {"approvePlan": plan_id}})
    print(f"{RESOURCE}/{args.name} plan {plan_id} approved (spec.approvePlan: {plan_id})")
    return 0


def cmd_suspend(cluster: Cluster, args: argparse.Namespace, *, suspend: bool) -> int:
    cluster.patch(args.name, {"spec": {"suspend": suspend}})
    print(f"{RESOURCE}/{args.name} {'suspended' if suspend else 'resumed'}")
    return 0


def cmd_open(cluster: Cluster, args: argparse.Namespace) -> int:
    url = (cluster.get(args.name).get("status") or {}).get("url")
    if not url:
        raise Failed(f"error: {RESOURCE}/{args.name} has no URL yet (kubectl llmapp status {args.name})")
    print(url)
    if not args.print_only:
        webbrowser.open(url)
    return 0


def cmd_reconcile(cluster: Cluster, args: argparse.Namespace) -> int:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    cluster.patch(args.name, {"metadata": {"annotations": {REQUEST_ANNOTATION: stamp}}})
    print(f"{RESOURCE}/{args.name} reconcile requested ({REQUEST_ANNOTATION}={stamp})")
    if not args.wait:
        return 0
    deadline, shown = time.monotonic() + args.timeout, ""
    while time.monotonic() < deadline:
        obj = cluster.get(args.name)
        status = obj.get("status") or {}
        line = f"phase {status.get('phase') or 'Pending'}"
        if line != shown:
            print(f"  ... {line}", file=sys.stderr)
            shown = line
        if status.get("handledRequest") == stamp:
            print(view.status_screen(obj))
            ready: dict[str, Any] = next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), {})
            return 0 if ready.get("status") == "True" else 1
        time.sleep(args.poll)
    raise Failed(f"error: timed out after {args.timeout:g}s waiting for the operator to handle the request")


SINCE = re.compile(r"^(\d+)([smhd])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since_seconds(text: str) -> int:
    """kubectl logs' --since: 30s, 10m, 2h, 1d."""
    match = SINCE.match(text)
    if not match:
        raise Failed(f"error: invalid --since {text!r}: use a number with s, m, h or d (10m)")
    return int(match.group(1)) * SECONDS[match.group(2)]


def cmd_logs(cluster: Cluster, args: argparse.Namespace) -> int:
    """The app container's CloudWatch logs, with your own AWS credentials (the operator's are not
    involved): the log group is the stack's `app_log_group` output, the region spec.aws.region."""
    import boto3
    import botocore.exceptions

    obj = cluster.get(args.name)
    group = ((obj.get("status") or {}).get("outputs") or {}).get("app_log_group")
    region = ((obj.get("spec") or {}).get("aws") or {}).get("region")
    if not group:
        raise Failed(f"error: {RESOURCE}/{args.name} has no app_log_group output yet (not applied, or a module "
                     "without it)")
    logs = boto3.session.Session().client("logs", region_name=region)
    start = int((time.time() - since_seconds(args.since)) * 1000)
    seen: set[str] = set()
    try:
        while True:
            request: dict[str, Any] = {"logGroupName": group, "startTime": start}
            while True:
                page = logs.filter_log_events(**request)
                for event in page.get("events", []):
                    if event["eventId"] in seen:
                        continue
                    seen.add(event["eventId"])
                    start = max(start, int(event["timestamp"]))
                    stamp = datetime.datetime.fromtimestamp(event["timestamp"] / 1000, datetime.UTC)
                    prefix = f"{stamp:%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z " if args.timestamps else ""
                    print(f"{prefix}{event.get('message', '').rstrip()}", flush=True)
                if not page.get("nextToken"):
                    break
                request["nextToken"] = page["nextToken"]
            if not args.follow:
                return 0
            time.sleep(args.poll)
    except botocore.exceptions.NoCredentialsError:
        raise Failed("error: no AWS credentials for CloudWatch Logs (AWS_PROFILE, AWS_* variables or SSO): "
                     "logs are read with your identity") from None
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise Failed(f"error: log group {group} does not exist in {region} (yet): the app has not run") from None
        raise Failed(f"error: CloudWatch Logs {group} ({region}): {code}") from None


def holder_pod_gone(cluster: Cluster, who: str) -> bool | None:
    """Terraform's lock `Who` is user@hostname, and a pod's hostname is its name: True when no pod of
    that name exists in any namespace (its terraform is gone with it), None when you may not look."""
    host = who.rsplit("@", 1)[-1]
    if not host:
        return None
    try:
        answer = cluster.client.request_blocking("GET", "/api/v1/pods",
                                                 query=[("fieldSelector", f"metadata.name={host}")])
    except TransientError:
        return None
    if not answer.ok:
        return None
    return not (answer.json() or {}).get("items")


def cmd_unlock(cluster: Cluster, args: argparse.Namespace) -> int:
    """Who holds the state lock (the S3 lock file Terraform writes beside the state), since when and
    for what; removed only with --force or when its holder's pod is provably gone, and only the lock
    that was shown (its ID is read again right before)."""
    import boto3
    import botocore.exceptions

    obj = cluster.get(args.name)
    state = str((obj.get("status") or {}).get("state") or "")
    if not state.startswith("s3://"):
        raise Failed(f"error: {RESOURCE}/{args.name} has no state yet (status.state)")
    bucket, key = state[len("s3://"):].split("/", 1)
    s3 = boto3.session.Session().client("s3", region_name=((obj.get("spec") or {}).get("aws") or {}).get("region"))
    lock_key = f"{key}.tflock"

    def read() -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=lock_key)["Body"].read())
            return found
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise Failed(f"error: s3://{bucket}/{lock_key}: {exc.response.get('Error', {}).get('Code')}") from None
        except botocore.exceptions.NoCredentialsError:
            raise Failed("error: no AWS credentials to read the state lock (your identity, not the "
                         "operator's)") from None

    lock = read()
    if lock is None:
        print(f"{RESOURCE}/{args.name}: the state s3://{bucket}/{key} is not locked (no {lock_key.rsplit('/', 1)[-1]})")
        return 0
    who, lock_id = str(lock.get("Who") or "?"), str(lock.get("ID") or "")
    print(f"locked by {who} for {lock.get('Operation') or '?'} since {lock.get('Created') or '?'} "
          f"(lock ID {lock_id}, Terraform {lock.get('Version') or '?'})")
    gone = holder_pod_gone(cluster, who)
    if not args.force and gone is not True:
        why = ("its pod still exists: it may be running" if gone is False
               else "cannot tell whether its holder is alive (no pod of that name visible to you)")
        raise Failed(f"error: not unlocking: {why}. If you know it is dead: kubectl llmapp unlock {args.name} "
                     f"-n {cluster.namespace} --force")
    again = read()
    if again is None or str(again.get("ID") or "") != lock_id:
        raise Failed("error: the lock changed while you looked (another run took it or released it): nothing removed")
    s3.delete_object(Bucket=bucket, Key=lock_key)
    print(f"unlocked: removed lock {lock_id}" + (" (its holder's pod is gone)" if gone else " (--force)"))
    return 0


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", help="the LLMApp's namespace (default: the kubeconfig's)")
    common.add_argument("--context", help="the kubeconfig context to use")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("-o", "--output", choices=["json", "yaml"], help="print the data instead of the screen")

    top = argparse.ArgumentParser(prog="kubectl llmapp", description="Operate LLMApps (llmops.dev).")
    commands = top.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", parents=[common, output],
                                 help="phase, URL, conditions, cost, plan, drift and last error")
    status.add_argument("name", nargs="?", help="one LLMApp; without it, a table of all")
    status.add_argument("-A", "--all-namespaces", action="store_true")
    plan = commands.add_parser("plan", help="the plan held for approval")
    plan_commands = plan.add_subparsers(dest="plan_command", required=True)
    show = plan_commands.add_parser("show", parents=[common, output], help="resource changes, cost, findings")
    show.add_argument("name")
    approve = commands.add_parser("approve", parents=[common], help="approve the plan that waits (never a stale one)")
    approve.add_argument("name")
    approve.add_argument("--plan", help="the plan id you reviewed; refused unless it is the one waiting")
    reconcile = commands.add_parser("reconcile", parents=[common], help="ask for a pass now")
    reconcile.add_argument("name")
    reconcile.add_argument("--wait", action="store_true", help="wait until the operator handled it")
    reconcile.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (default 600)")
    reconcile.add_argument("--poll", type=float, default=2.0, help=argparse.SUPPRESS)
    for verb in ("suspend", "resume"):
        commands.add_parser(verb, parents=[common], help=f"{verb} Terraform runs (spec.suspend)").add_argument("name")
    opened = commands.add_parser("open", parents=[common], help="print the app's URL and open it")
    opened.add_argument("name")
    opened.add_argument("--print", dest="print_only", action="store_true", help="print only, open no browser")
    cost = commands.add_parser("cost", parents=[common, output], help="the breakdown behind the estimate")
    cost.add_argument("name")
    unlock = commands.add_parser("unlock", parents=[common], help="who holds the state lock; remove a dead one")
    unlock.add_argument("name")
    unlock.add_argument("--force", action="store_true", help="remove it even if its holder may be alive")
    logs = commands.add_parser("logs", parents=[common], help="the app's CloudWatch logs (your AWS credentials)")
    logs.add_argument("name")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--since", default="1h", help="how far back: 30s, 10m, 2h, 1d (default 1h)")
    logs.add_argument("--timestamps", action="store_true", help="prefix each line with its time (UTC)")
    logs.add_argument("--poll", type=float, default=2.0, help=argparse.SUPPRESS)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cluster = Cluster(args.context, args.namespace)
        if args.command == "status":
            return cmd_status(cluster, args)
        if args.command == "plan":
            return cmd_plan_show(cluster, args)
        if args.command == "approve":
            return cmd_approve(cluster, args)
        if args.command == "reconcile":
            return cmd_reconcile(cluster, args)
        if args.command in ("suspend", "resume"):
            return cmd_suspend(cluster, args, suspend=args.command == "suspend")
        if args.command == "open":
            return cmd_open(cluster, args)
        if args.command == "logs":
            return cmd_logs(cluster, args)
        if args.command == "unlock":
            return cmd_unlock(cluster, args)
        return cmd_cost(cluster, args)
    except Failed as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
