"""The ALB's OIDC sign-in rule of spec.auth.oidc, set by the operator itself: its actions carry the
client secret, which must never reach Terraform (the stack creates the rule with a 503 answer and
ignores its actions; docs/stack.md). The operator's own AWS identity makes the calls (docs/iam.md);
blocking boto3 calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from llmapp_operator.cloud.clients import aws_errors, client

_DENIED_HINT = "the operator's AWS identity may not describe or modify the app's listener rules (docs/iam.md)"


@dataclass(frozen=True)
class OidcAction:
    """What the rule's authenticate-oidc action says, without its secret."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    user_info_endpoint: str
    client_id: str
    scope: str


@dataclass(frozen=True)
class RuleView:
    oidc: OidcAction | None
    """The rule's authenticate-oidc action; None: it has none (the stack's 503, or someone's edit)."""
    forwards_to: str
    """The target group its forward action names; "" without one."""


def view_of(rule: dict[str, Any]) -> RuleView:
    """What one DescribeRules entry says (pure)."""
    oidc, forward = None, ""
    for action in rule.get("Actions") or ():
        if action.get("Type") == "authenticate-oidc":
            config = action.get("AuthenticateOidcConfig") or {}
            oidc = OidcAction(str(config.get("Issuer") or ""), str(config.get("AuthorizationEndpoint") or ""),
                              str(config.get("TokenEndpoint") or ""), str(config.get("UserInfoEndpoint") or ""),
                              str(config.get("ClientId") or ""), str(config.get("Scope") or ""))
        elif action.get("Type") == "forward":
            forward = str(action.get("TargetGroupArn") or "")
    return RuleView(oidc=oidc, forwards_to=forward)


class AlbSignIn:
    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url

    async def observe(self, region: str, rule_arn: str) -> RuleView:
        def read() -> RuleView:
            with self._errors(region):
                rules = client("elbv2", region, self.endpoint_url).describe_rules(RuleArns=[rule_arn])["Rules"]
            return view_of(rules[0]) if rules else RuleView(None, "")
        return await asyncio.to_thread(read)

    async def set_up(self, region: str, rule_arn: str, action: OidcAction, client_secret: str,
                     target_group_arn: str) -> None:
        """Authenticate every request with the provider, then forward it to the app."""
        actions = [
            {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {
                "Issuer": action.issuer, "AuthorizationEndpoint": action.authorization_endpoint,
                "TokenEndpoint": action.token_endpoint, "UserInfoEndpoint": action.user_info_endpoint,
                "ClientId": action.client_id, "ClientSecret": client_secret, "Scope": action.scope,
                "OnUnauthenticatedRequest": "authenticate", "SessionTimeout": 28800}},
            {"Type": "forward", "Order": 2, "TargetGroupArn": target_group_arn},
        ]

        def write() -> None:
            with self._errors(region):
                client("elbv2", region, self.endpoint_url).modify_rule(RuleArn=rule_arn, Actions=actions)
        await asyncio.to_thread(write)

    @staticmethod
    def _errors(region: str) -> Any:
        return aws_errors(f"the app's sign-in rule ({region})", denied="SignInDenied", unavailable="SignInUnavailable",
                          denied_hint=_DENIED_HINT)
