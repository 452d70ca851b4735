"""spec.auth.oidc after Terraform: the operator sets the sign-in rule's actions itself, because they
carry the client secret (cloud/sign_in.py does the calls). `needs_setting` is pure: whether the rule
needs setting, from what status remembers (a keyed digest, never the secret) and what the rule says now.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmapp_operator.api.digests import keyed_digest
from llmapp_operator.api.spec import OidcSignIn
from llmapp_operator.cloud.sign_in import OidcAction, RuleView

_SALT = b"llmapp-sign-in"


def action_of(oidc: OidcSignIn) -> OidcAction:
    return OidcAction(oidc.issuer, oidc.authorization_endpoint, oidc.token_endpoint, oidc.user_info_endpoint,
                      oidc.client_id, oidc.scope)


def digest(action: OidcAction, client_secret: str, target_group_arn: str, key: bytes = b"") -> str:
    """HMAC-SHA256 with the install's key over what the rule is set to, the secret included (a new
    secret sets the rule again); without the key nobody can test guesses of the secret against it."""
    payload = "\0".join((*(str(v) for v in vars(action).values()), target_group_arn, client_secret)).encode()
    return keyed_digest(payload, key, _SALT)


def needs_setting(wanted: OidcAction, wanted_digest: str, target_group_arn: str, rule: RuleView,
                  previous: Mapping[str, Any] | None) -> bool:
    """Set the rule unless it already authenticates with exactly this provider and client, forwards
    to the app's target group, and status says the secret set last is this one."""
    return not (rule.oidc == wanted and rule.forwards_to == target_group_arn
                and (previous or {}).get("digest") == wanted_digest)
