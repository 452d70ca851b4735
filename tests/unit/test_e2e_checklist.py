"""scripts/e2e_aws_checklist.py: which item stops `make e2e-aws`, given an environment and fake probes."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import pytest

from llmapp_operator.config import Settings
from tests.conftest import REPO, load_script

SCRIPT = REPO / "scripts" / "e2e_aws_checklist.py"
checklist: Any = load_script("e2e_aws_checklist")

READY = {"LLMAPP_E2E_AWS": "1", "LLMAPP_E2E_REPOSITORY": "acme/rag-app", "AWS_REGION": "eu-west-1",
         "LLMAPP_STATE_BUCKET": "llmapp-e2e-123456789012"}


def probes(**overrides: Any) -> Any:
    """Probes of a machine and an account where everything is in place; `overrides` break one."""
    calls: list[str] = []

    def noting(name: str, answer: Any) -> Any:
        def probe(*args: Any) -> Any:
            calls.append(name)
            return answer(*args) if callable(answer) else answer
        return probe

    fine: dict[str, Any] = {
        "which": lambda name: f"/usr/bin/{name}",
        "terraform_version": "1.11.4",
        "reach": None,
        "caller_identity": ("123456789012", "arn:aws:iam::123456789012:user/dev"),
        "bucket": ("yours", "eu-west-1"),
        "github_oidc_provider": True,
    }
    fine.update(overrides)
    made = checklist.Probes(**{name: noting(name, answer) for name, answer in fine.items()})
    made.calls = calls
    return made


def refusing(exc: BaseException) -> Any:
    def probe(*args: Any) -> Any:
        raise exc
    return probe


def stops_at(env: Mapping[str, str], made: Any | None = None) -> tuple[str | None, str]:
    out = io.StringIO()
    failed = checklist.run_checks(checklist.ITEMS, env, made or probes(), out)
    return (failed.key if failed else None), out.getvalue()


def test_everything_in_place_passes_every_checkable_item() -> None:
    made = probes()
    key, text = stops_at(READY, made)
    assert key is None
    checked = [item.key for item in checklist.ITEMS if item.check is not None]
    assert re.findall(r"\[ok\] (\w+):", text) == checked
    assert "account 123456789012" in text and "Terraform 1.11.4" in text


def test_without_consent_nothing_is_probed() -> None:
    made = probes()
    key, text = stops_at({**READY, "LLMAPP_E2E_AWS": ""}, made)
    assert key == "consent" and "LLMAPP_E2E_AWS=1" in text
    assert made.calls == []   # no STS call, no terraform, no network before consent


@pytest.mark.parametrize(("env", "message"), [
    ({"LLMAPP_E2E_REPOSITORY": ""}, "set LLMAPP_E2E_REPOSITORY=owner/name"),
    ({"LLMAPP_E2E_REPOSITORY": "just-a-name"}, "is not owner/name"),
])
def test_the_repository_is_required_as_owner_and_name(env: dict[str, str], message: str) -> None:
    key, text = stops_at({**READY, **env})
    assert key == "repository" and message in text


@pytest.mark.parametrize("variable", ["LLMAPP_AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL"])
def test_an_emulator_endpoint_left_in_the_environment_stops_the_run(variable: str) -> None:
    key, text = stops_at({**READY, variable: "http://127.0.0.1:5000"})
    assert key == "endpoints" and f"unset {variable}" in text


def test_terraform_missing_or_too_old() -> None:
    key, text = stops_at(READY, probes(which=lambda name: None if name == "terraform" else f"/bin/{name}"))
    assert key == "terraform" and "not on PATH" in text
    key, text = stops_at(READY, probes(terraform_version="1.8.5"))
    assert key == "terraform" and "needs >= 1.9" in text


def test_git_is_needed_for_the_registry_modules() -> None:
    key, text = stops_at(READY, probes(which=lambda name: None if name == "git" else f"/bin/{name}"))
    assert key == "git" and "git is not on PATH" in text


def test_an_unreachable_registry_or_github_stops_before_any_aws_call() -> None:
    made = probes(reach=lambda url: "no such host" if "releases.hashicorp.com" in url else None)
    key, text = stops_at(READY, made)
    assert key == "registry" and "https://releases.hashicorp.com/ did not answer (no such host)" in text
    assert "caller_identity" not in made.calls
    key, text = stops_at(READY, probes(reach=lambda url: "timed out" if "github.com" in url else None))
    assert key == "github"


def test_the_region_defaults_like_the_test_and_must_look_like_one() -> None:
    env = {key: value for key, value in READY.items() if key != "AWS_REGION"}
    key, text = stops_at(env, probes(bucket=("yours", "us-east-1")))
    assert key is None and "us-east-1 (AWS_REGION is unset" in text
    key, text = stops_at({**READY, "AWS_REGION": "Europe"})
    assert key == "region"


def test_missing_credentials_say_what_boto3_said() -> None:
    key, text = stops_at(READY, probes(caller_identity=refusing(RuntimeError("Unable to locate credentials"))))
    assert key == "credentials" and "RuntimeError: Unable to locate credentials" in text


def test_a_bucket_name_someone_else_owns_is_caught_with_a_name_to_use() -> None:
    key, text = stops_at(READY, probes(bucket=("forbidden", "us-west-2")))
    assert key == "state" and "llmapp-e2e-123456789012" in text and "global" in text


def test_a_missing_bucket_is_fine_and_one_in_another_region_is_not() -> None:
    key, text = stops_at(READY, probes(bucket=("missing", None)))
    assert key is None and "the operator creates it in eu-west-1" in text
    key, text = stops_at(READY, probes(bucket=("yours", "us-east-2")))
    assert key == "state" and "is in us-east-2" in text
    key, _ = stops_at({**READY, "LLMAPP_STATE_BUCKET": "Not_A_Bucket"})
    assert key == "state"


def test_the_lock_is_s3_lock_files_unless_a_table_is_named() -> None:
    _, text = stops_at(READY)
    assert "S3 lock files beside the state" in text
    _, text = stops_at({**READY, "LLMAPP_LOCK_TABLE": "llmapp-locks"})
    assert "DynamoDB table llmapp-locks" in text
    key, _ = stops_at({**READY, "LLMAPP_LOCK_TABLE": "x"})
    assert key == "lock"


def test_an_account_without_the_github_oidc_provider_is_told_how_to_add_it() -> None:
    key, text = stops_at(READY, probes(github_oidc_provider=False))
    assert key == "oidc" and "https://token.actions.githubusercontent.com" in text
    assert "sts.amazonaws.com" in text


def test_the_checklist_names_everything_a_first_run_needs() -> None:
    out = io.StringIO()
    checklist.print_checklist(checklist.ITEMS, out)
    text = out.getvalue()
    for needed in ("docs/iam.md", "AWS_REGION", "LLMAPP_STATE_BUCKET", "LLMAPP_LOCK_TABLE", "DynamoDB",
                   "LLMAPP_E2E_REPOSITORY", "No GitHub token", "billed", "Clean-up", "destroys",
                   "LLMAPP_E2E_AWS=1", "credentials", "terraform", "registry"):
        assert needed in text, needed
    assert text.count("(yours to confirm)") == 2   # permissions and clean-up: nothing here can tell


def test_main_prints_the_list_before_checking_and_stops_with_a_nonzero_status() -> None:
    out = io.StringIO()
    status = checklist.main([], {}, probes(), out)
    text = out.getvalue()
    assert status == 1 and text.index("You need:") < text.index("Checking") < text.index("Stopped at [consent]")
    out = io.StringIO()
    assert checklist.main(["--check", "--only", "terraform,registry"], {}, probes(), out) == 0
    assert "You need:" not in out.getvalue() and "[ok] registry" in out.getvalue()
    assert "[ok] consent" not in out.getvalue()


def test_the_list_needs_only_the_standard_library() -> None:
    """`make e2e-aws` prints it with any python3, before the virtualenv exists."""
    done = subprocess.run([sys.executable, "-S", "-I", str(SCRIPT), "--list"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "You need:" in done.stdout


def test_defaults_agree_with_the_test_and_the_operator() -> None:
    source = (REPO / "tests" / "e2e" / "test_aws_stack.py").read_text()
    assert f'os.environ.get("AWS_REGION", "{checklist.DEFAULT_REGION}")' in source
    assert f'os.environ.get("LLMAPP_STATE_BUCKET", "{checklist.DEFAULT_BUCKET}")' in source
    assert '"name": "e2e", "namespace": "llmapp-e2e"' in source
    prefix = Settings().state_key_prefix
    assert checklist.STATE_PREFIX.startswith(f"{prefix}/") and checklist.STATE_PREFIX.endswith("/llmapp-e2e/e2e/")
    pattern = next(meta.pattern for meta in Settings.model_fields["state_bucket"].metadata if hasattr(meta, "pattern"))
    assert pattern == checklist.BUCKET_PATTERN
    versions = (REPO / "terraform" / "stack" / "versions.tf").read_text()
    assert f'">= {".".join(map(str, checklist.required_terraform()))}"' in versions


def test_the_aws_probes_against_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real probe code (boto3 calls, answers read) on moto in-process: yours, missing, OIDC."""
    moto = pytest.importorskip("moto")
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with moto.mock_aws():
        import boto3

        account, arn = checklist._caller_identity("eu-west-1")
        assert re.fullmatch(r"\d{12}", account) and arn.startswith("arn:aws:")
        assert checklist._bucket("llmapp-e2e-probe", "eu-west-1") == ("missing", None)
        boto3.client("s3", region_name="eu-west-1").create_bucket(
            Bucket="llmapp-e2e-probe", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        assert checklist._bucket("llmapp-e2e-probe", "eu-west-1") == ("yours", "eu-west-1")
        # Asked from another region: found, with where it really is (the check then stops the run).
        assert checklist._bucket("llmapp-e2e-probe", "us-east-1") == ("yours", "eu-west-1")
        assert checklist._github_oidc_provider("eu-west-1") is False
        boto3.client("iam", region_name="eu-west-1").create_open_id_connect_provider(
            Url="https://token.actions.githubusercontent.com", ClientIDList=["sts.amazonaws.com"],
            ThumbprintList=["0" * 40])
        assert checklist._github_oidc_provider("eu-west-1") is True
