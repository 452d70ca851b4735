"""Guardrails on every plan, before apply: policy rules, destroy protection and a cost estimate.

Pure: everything is read from `terraform show -json` of the saved plan (and a price table given
as data). The runner reviews right after `plan`, where the plan JSON is at hand, so the JSON itself
(which may hold sensitive attribute values) never leaves the place Terraform ran: only the verdict
travels (to status, or back from a Job).
"""
