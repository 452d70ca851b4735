"""`make e2e-aws`: the checklist of what tests/e2e/test_aws_stack.py needs, printed before anything
runs, then each item that can be checked from here is checked in order; the first missing one
stops with what to do about it. Also `make lock`'s registry check (`--only terraform,registry`).

    python scripts/e2e_aws_checklist.py            # print the checklist, then check it
    python scripts/e2e_aws_checklist.py --list     # print only (standard library only: any python3)
    python scripts/e2e_aws_checklist.py --check --only terraform,registry

The checks are pure functions of the environment and of `Probes` (the calls to the outside
world: PATH, HTTPS, STS, S3, IAM), so tests/unit/test_e2e_checklist.py runs them with fakes.
boto3 is imported only by the AWS probes. docs/e2e-aws.md describes every item.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

ROOT = pathlib.Path(__file__).resolve().parent.parent
VERSIONS_TF = ROOT / "terraform" / "stack" / "versions.tf"
DEFAULT_REGION = "us-east-1"            # tests/e2e/test_aws_stack.py: AWS_REGION, else this
DEFAULT_BUCKET = "llmapp-e2e-tfstate"   # tests/e2e/test_aws_stack.py: LLMAPP_STATE_BUCKET, else this
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"   # Settings.state_bucket
TABLE_PATTERN = r"^[A-Za-z0-9_.-]{3,255}$"                # DynamoDB table names
REPOSITORY_PATTERN = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-\d+$"
# Providers: the registry answers where they are, releases.hashicorp.com serves them.
REGISTRY_URLS = ("https://registry.terraform.io/.well-known/terraform.json", "https://releases.hashicorp.com/")
# The registry's terraform-aws-modules are git sources on GitHub (terraform runs git to fetch them).
GITHUB_URL = "https://github.com/"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
STATE_PREFIX = "llmapp/llmapp-e2e/e2e/"   # the test's object: namespace llmapp-e2e, name e2e


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str


@dataclass
class Probes:
    """Everything a check may ask the outside world. Each AWS probe raises on failure."""

    which: Callable[[str], str | None]
    terraform_version: Callable[[str], str]
    reach: Callable[[str], str | None]                       # url -> None when it answered, else why not
    caller_identity: Callable[[str], tuple[str, str]]       # region -> (account, arn)
    bucket: Callable[[str, str], tuple[str, str | None]]    # name, region -> (yours|missing|forbidden, its region)
    github_oidc_provider: Callable[[str], bool]             # region -> does the account have one


Check = Callable[[Mapping[str, str], Probes], Outcome]


@dataclass(frozen=True)
class Item:
    key: str
    need: str
    check: Check | None   # None: yours to confirm (nothing here can tell)


def region(env: Mapping[str, str]) -> str:
    return env.get("AWS_REGION") or DEFAULT_REGION


def bucket_name(env: Mapping[str, str]) -> str:
    return env.get("LLMAPP_STATE_BUCKET") or DEFAULT_BUCKET


def required_terraform() -> tuple[int, ...]:
    match = re.search(r'required_version\s*=\s*">=\s*([\d.]+)"', VERSIONS_TF.read_text())
    if not match:
        raise ValueError(f"{VERSIONS_TF} has no `required_version = \">= x.y\"`")
    return _version(match.group(1))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# -- the checks -------------------------------------------------------------------------------
def check_consent(env: Mapping[str, str], probes: Probes) -> Outcome:
    if env.get("LLMAPP_E2E_AWS") == "1":
        return Outcome(True, "LLMAPP_E2E_AWS=1")
    return Outcome(False, "set LLMAPP_E2E_AWS=1 to say you accept the cost (item 1); nothing was created")


def check_repository(env: Mapping[str, str], probes: Probes) -> Outcome:
    repository = env.get("LLMAPP_E2E_REPOSITORY", "")
    if re.match(REPOSITORY_PATTERN, repository):
        return Outcome(True, repository)
    if not repository:
        return Outcome(False, "set LLMAPP_E2E_REPOSITORY=owner/name (the repository the deploy role trusts)")
    return Outcome(False, f"LLMAPP_E2E_REPOSITORY={repository!r} is not owner/name")


def check_endpoints(env: Mapping[str, str], probes: Probes) -> Outcome:
    redirected = [name for name in ("LLMAPP_AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL") if env.get(name)]
    if redirected:
        return Outcome(False, f"unset {' and '.join(redirected)}: it sends AWS calls to an emulator, not AWS")
    return Outcome(True, "AWS calls go to AWS")


def check_terraform(env: Mapping[str, str], probes: Probes) -> Outcome:
    path = probes.which("terraform")
    needed = ".".join(map(str, required_terraform()))
    if path is None:
        return Outcome(False, f"terraform is not on PATH: install Terraform >= {needed}")
    try:
        version = probes.terraform_version(path)
    except Exception as exc:  # not executable, not terraform
        return Outcome(False, f"{path} does not run: {_error(exc)}")
    if _version(version) < required_terraform():
        return Outcome(False, f"{path} is Terraform {version}; terraform/stack needs >= {needed}")
    return Outcome(True, f"Terraform {version} ({path})")


def check_git(env: Mapping[str, str], probes: Probes) -> Outcome:
    path = probes.which("git")
    if path is None:
        return Outcome(False, "git is not on PATH: terraform init clones the registry's modules with it")
    return Outcome(True, path)


def _reach_all(urls: Sequence[str], probes: Probes, what: str) -> Outcome:
    for url in urls:
        why = probes.reach(url)
        if why is not None:
            return Outcome(False, f"{url} did not answer ({why}): {what}; run where it is reachable "
                                  "(HTTPS_PROXY is honoured)")
    return Outcome(True, ", ".join(urls))


def check_registry(env: Mapping[str, str], probes: Probes) -> Outcome:
    return _reach_all(REGISTRY_URLS, probes, "terraform init downloads the stack's providers from there")


def check_github(env: Mapping[str, str], probes: Probes) -> Outcome:
    return _reach_all((GITHUB_URL,), probes, "the registry's terraform-aws-modules are fetched from GitHub")


def check_region(env: Mapping[str, str], probes: Probes) -> Outcome:
    chosen = region(env)
    if not re.match(REGION_PATTERN, chosen):
        return Outcome(False, f"AWS_REGION={chosen!r} is not a region name (like eu-west-1)")
    return Outcome(True, chosen if env.get("AWS_REGION") else f"{chosen} (AWS_REGION is unset: the test's default)")


def check_credentials(env: Mapping[str, str], probes: Probes) -> Outcome:
    try:
        account, arn = probes.caller_identity(region(env))
    except Exception as exc:  # no credentials, expired session, no network
        return Outcome(False, f"no usable AWS credentials ({_error(exc)}): export AWS_PROFILE (after "
                              "`aws sso login` if it is an SSO profile) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    return Outcome(True, f"account {account} as {arn}")


def check_state_bucket(env: Mapping[str, str], probes: Probes) -> Outcome:
    name, wanted = bucket_name(env), region(env)
    if not re.match(BUCKET_PATTERN, name):
        return Outcome(False, f"LLMAPP_STATE_BUCKET={name!r} is not a valid bucket name")
    try:
        status, located = probes.bucket(name, wanted)
    except Exception as exc:
        return Outcome(False, f"could not look at s3://{name} ({_error(exc)})")
    if status == "forbidden":
        try:
            account = probes.caller_identity(wanted)[0]
        except Exception:
            account = "<account id>"
        return Outcome(False, f"s3://{name} exists in another account (or your identity may not list it): "
                              f"bucket names are global, set LLMAPP_STATE_BUCKET to one of yours, "
                              f"e.g. llmapp-e2e-{account}")
    if located and located != wanted:
        return Outcome(False, f"s3://{name} is in {located}, the test's region is {wanted}: set AWS_REGION={located} "
                              "or another LLMAPP_STATE_BUCKET")
    if status == "missing":
        return Outcome(True, f"s3://{name} does not exist yet: the operator creates it in {wanted} "
                             "(versioned, encrypted, public access blocked)")
    return Outcome(True, f"s3://{name} exists in {wanted} and is yours")


def check_lock(env: Mapping[str, str], probes: Probes) -> Outcome:
    table = env.get("LLMAPP_LOCK_TABLE", "")
    if not table:
        return Outcome(True, "S3 lock files beside the state (use_lockfile); no DynamoDB table")
    if not re.match(TABLE_PATTERN, table):
        return Outcome(False, f"LLMAPP_LOCK_TABLE={table!r} is not a DynamoDB table name")
    return Outcome(True, f"DynamoDB table {table} (created when missing)")


def check_github_oidc(env: Mapping[str, str], probes: Probes) -> Outcome:
    try:
        present = probes.github_oidc_provider(region(env))
    except Exception as exc:
        return Outcome(False, f"could not list the account's IAM OIDC providers ({_error(exc)}): "
                              "your identity needs iam:ListOpenIDConnectProviders")
    if present:
        return Outcome(True, f"the account has the {GITHUB_OIDC_HOST} OIDC provider")
    return Outcome(False, f"the account has no IAM OIDC provider for {GITHUB_OIDC_HOST}, which the stack looks "
                          "up (create_github_oidc_provider defaults to false). Create it once: IAM console, "
                          f"Identity providers, OpenID Connect, URL https://{GITHUB_OIDC_HOST}, audience "
                          "sts.amazonaws.com")


ITEMS: tuple[Item, ...] = (
    Item("consent", "Cost: LLMAPP_E2E_AWS=1 says you accept it. The test creates, in your account, a VPC with "
                    "a NAT gateway, an ALB, an ECS Fargate service, an ECR repository, CloudWatch logs, an S3 "
                    "bucket for ALB logs and IAM roles; they are billed while they exist (the test takes about "
                    "10 minutes and destroys them at its end)", check_consent),
    Item("repository", "LLMAPP_E2E_REPOSITORY=owner/name: the GitHub repository the stack's deploy role trusts. "
                       "No GitHub token is used: the test writes nothing to GitHub", check_repository),
    Item("endpoints", "No LLMAPP_AWS_ENDPOINT_URL or AWS_ENDPOINT_URL (left over from the sandbox)", check_endpoints),
    Item("terraform", "terraform on PATH, at least the version terraform/stack requires", check_terraform),
    Item("git", "git on PATH (terraform init fetches the registry's terraform-aws-modules with it)", check_git),
    Item("registry", "The Terraform registry reachable: registry.terraform.io, releases.hashicorp.com",
         check_registry),
    Item("github", "github.com reachable (where the registry's modules come from)", check_github),
    Item("region", f"AWS_REGION: where the stack and the state bucket go ({DEFAULT_REGION} when unset)",
         check_region),
    Item("credentials", "AWS credentials boto3 and Terraform find (environment, AWS_PROFILE, SSO)",
         check_credentials),
    Item("permissions", "Permissions: without a tenant role, your identity runs Terraform itself, so it needs "
                        "the operator's calls (docs/iam.md, 'What the operator calls itself') and everything "
                        "the stack creates: VPC, ALB, ECS, ECR, CloudWatch Logs, S3, IAM roles and policies. "
                        "Not checked here: only a real run can tell", None),
    Item("state", f"LLMAPP_STATE_BUCKET: the S3 state bucket ({DEFAULT_BUCKET} when unset; names are global, "
                  "so one of your own, e.g. llmapp-e2e-<account id>); created when missing", check_state_bucket),
    Item("lock", "State locking: S3 lock files by default; LLMAPP_LOCK_TABLE names a DynamoDB table instead",
         check_lock),
    Item("oidc", f"The account's IAM OIDC provider for {GITHUB_OIDC_HOST} (the stack looks it up)",
         check_github_oidc),
    Item("cleanup", "Clean-up: the test destroys what it created, also when it fails. If it is interrupted, "
                    f"the state stays in the bucket under {STATE_PREFIX}; resources carry the tags "
                    "managed-by=llmapp-operator and llmops.dev/namespace=llmapp-e2e (docs/e2e-aws.md). "
                    "The state bucket itself is kept: empty it (every version) and delete it when done", None),
)


# -- the run ----------------------------------------------------------------------------------
def print_checklist(items: Sequence[Item], out: TextIO) -> None:
    out.write("make e2e-aws: the real terraform/stack in your AWS account. You need:\n")
    for number, item in enumerate(items, 1):
        mark = "" if item.check else "  (yours to confirm)"
        out.write(f"  {number:2}. [{item.key}] {item.need}{mark}\n")
    out.write("\n")


def run_checks(items: Sequence[Item], env: Mapping[str, str], probes: Probes, out: TextIO) -> Item | None:
    """Each checkable item in order; the first that fails is returned (and nothing after it runs)."""
    for item in items:
        if item.check is None:
            continue
        outcome = item.check(env, probes)
        out.write(f"  [{'ok' if outcome.ok else 'MISSING'}] {item.key}: {outcome.detail}\n")
        if not outcome.ok:
            return item
    return None


# -- the real probes --------------------------------------------------------------------------
def _terraform_version(path: str) -> str:
    done = subprocess.run([path, "version", "-json"], capture_output=True, text=True, timeout=60, check=True)
    return str(json.loads(done.stdout)["terraform_version"])


def _reach(url: str) -> str | None:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=10):
            return None
    except urllib.error.HTTPError:
        return None   # an HTTP answer, whatever its status: the host is reachable
    except (urllib.error.URLError, OSError) as exc:
        return _error(getattr(exc, "reason", exc) if isinstance(exc, urllib.error.URLError) else exc)


def _client(service: str, region_name: str) -> Any:
    import boto3

    factory: Any = boto3.client   # one call site for every service: no per-service overload
    return factory(service, region_name=region_name)


def _caller_identity(region_name: str) -> tuple[str, str]:
    identity = _client("sts", region_name).get_caller_identity()
    return str(identity["Account"]), str(identity["Arn"])


def _bucket(name: str, region_name: str) -> tuple[str, str | None]:
    import botocore.exceptions

    try:
        answer = _client("s3", region_name).head_bucket(Bucket=name)
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        located = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region")
        if code in {"404", "NoSuchBucket", "NotFound"}:
            return "missing", None
        if code in {"403", "AccessDenied", "Forbidden"}:
            return "forbidden", located
        if code in {"301", "PermanentRedirect"}:
            return "yours", located
        raise
    return "yours", answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region")


def _github_oidc_provider(region_name: str) -> bool:
    providers = _client("iam", region_name).list_open_id_connect_providers()["OpenIDConnectProviderList"]
    return any(str(entry["Arn"]).endswith(f":oidc-provider/{GITHUB_OIDC_HOST}") for entry in providers)


def real_probes() -> Probes:
    return Probes(which=shutil.which, terraform_version=_terraform_version, reach=_reach,
                  caller_identity=_caller_identity, bucket=_bucket, github_oidc_provider=_github_oidc_provider)


def main(argv: Sequence[str], env: Mapping[str, str], probes: Probes | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--list", action="store_true", help="print the checklist only")
    parser.add_argument("--check", action="store_true", help="check only (no list)")
    parser.add_argument("--only", default="", help="comma-separated item keys to check")
    args = parser.parse_args(argv)
    keys = {key.strip() for key in args.only.split(",") if key.strip()}
    unknown = keys - {item.key for item in ITEMS}
    if unknown:
        parser.error(f"unknown item(s): {', '.join(sorted(unknown))}")
    items = [item for item in ITEMS if not keys or item.key in keys]
    if not args.check:
        print_checklist(items, out)
    if args.list:
        return 0
    out.write("Checking what can be checked from here:\n")
    failed = run_checks(items, env, probes or real_probes(), out)
    if failed is not None:
        out.write(f"\nStopped at [{failed.key}]: fix it and run again. Nothing was created.\n")
        return 1
    out.write("\nEvery checkable item is there.\n")
    return 0


if __name__ == "__main__":
    import os

    sys.exit(main(sys.argv[1:], os.environ))
