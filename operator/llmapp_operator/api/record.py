"""The applied record: what the operator did to the outside world for one object, kept beside its
Terraform state (`<prefix>/<namespace>/<name>/llmapp-record.json` in the state bucket).

Status is a view for users; it can be wiped (a restore without status, a `kubectl replace`), and
it says nothing once a first apply was killed before it finished. The record is what teardown and
the identity checks trust. It is written *before* the first apply starts and holds everything a
destroy needs without the spec (module, backend, region, the rendered variables — never a secret
value: app secrets appear as ARNs), the GitHub target with the names the operator manages there,
and the progress of a teardown, so a teardown interrupted at any point resumes where it stopped.
Pure: no I/O (cloud/record.py reads and writes it).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RECORD_FILE = "llmapp-record.json"


class RecordModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class BackendRecord(RecordModel):
    bucket: str
    key: str
    region: str
    dynamodb_table: str | None = None


class GitHubRecord(RecordModel):
    """Where the operator wrote, and what: a change of target removes these names from here first."""

    api_url: str
    repository: str
    environment: str
    token_secret: str | None = None       # the Secret the token was read from (name/key), to remove later
    token_key: str | None = None
    variables: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    created_environment: bool = False
    digest: str = ""
    synced_at: str = ""

    def same_target(self, api_url: str, repository: str, environment: str) -> bool:
        return (self.api_url.rstrip("/").lower(), self.repository.lower(), self.environment) == (
            api_url.rstrip("/").lower(), repository.lower(), environment)


class TeardownProgress(RecordModel):
    started_at: str = ""
    destroyed: bool = False
    app_secrets_removed: bool = False
    github_removed: bool = False
    plans_removed: bool = False


class AppliedRecord(RecordModel):
    version: int = 1
    namespace: str
    name: str
    uid: str
    module: str
    module_digest: str
    backend: BackendRecord
    region: str
    tfvars: dict[str, Any] = Field(default_factory=dict)
    attempted_digest: str = ""
    applied_digest: str = ""
    outputs: dict[str, Any] = Field(default_factory=dict)
    """The module's outputs after the apply of applied_digest: a pass whose status write was lost
    takes them from here instead of planning and applying the same inputs again."""
    app_secrets: tuple[str, ...] = ()
    github: GitHubRecord | None = None
    teardown: TeardownProgress | None = None
    updated_at: str = ""


def record_key(state_key: str) -> str:
    """The record's key beside the state: `<prefix>/<ns>/<name>/llmapp-record.json`."""
    return f"{state_key.rsplit('/', 1)[0]}/{RECORD_FILE}"
