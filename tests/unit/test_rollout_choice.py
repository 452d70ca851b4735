"""engine/rollout.choose and decide: which revision the service runs and the one UpdateService (pure)."""

from __future__ import annotations

from llmapp_operator.cloud.ecs_service import LoadBalancer, Revision, ServiceView, view_of
from llmapp_operator.engine.rollout import Wanted, choose, decide

OLD = Revision("arn:td/app:1", "repo:sha-1")
CD = Revision("arn:td/app:2", "repo:sha-2")
OURS = Revision("arn:td/app:3", "repo:sha-2")
LB = LoadBalancer("arn:tg/app-8501", "app", 8501)


def view(task_definition: str, *, desired: int = 1, balancers: tuple[LoadBalancer, ...] = (LB,),
         deployments: tuple[tuple[str, str], ...] = ()) -> ServiceView:
    return ServiceView(task_definition, desired, desired, balancers, "COMPLETED", "", deployments)


def wanted(mode: str = "pipeline", terraform: Revision | None = OURS, *, applied_now: bool = True,
           requested: str = "", count: int = 1, lb: LoadBalancer | None = LB) -> Wanted:
    return Wanted(mode, count, lb, terraform, applied_now, requested)  # type: ignore[arg-type]


def test_pipeline_deploys_a_new_terraform_revision_built_with_the_running_image() -> None:
    choice = choose(wanted(), view(CD.arn), CD)
    assert choice.deploy == OURS and choice.problem is None


def test_pipeline_without_an_apply_keeps_the_cd_s_revision() -> None:
    assert choose(wanted(terraform=OLD, applied_now=False), view(CD.arn), CD).deploy is None
    # ... and so does a pass whose Terraform revision the operator already deployed once.
    assert choose(wanted(requested=OURS.arn), view(CD.arn), CD).deploy is None


def test_pipeline_refuses_a_revision_whose_image_is_not_the_running_one() -> None:
    choice = choose(wanted(terraform=Revision("arn:td/app:3", "repo:sha-1")), view(CD.arn), CD)
    assert choice.deploy is None and choice.problem == "DeployedMeanwhile"


def test_operator_mode_deploys_its_revision_once() -> None:
    assert choose(wanted("operator"), view(OLD.arn), OLD).deploy == OURS
    choice = choose(wanted("operator", requested=OURS.arn), view(OLD.arn), OLD)
    assert choice.deploy is None and choice.problem == "RolledBack" and "repo:sha-2" in choice.message


def test_operator_mode_is_not_rolled_back_while_its_deployment_is_in_progress() -> None:
    running = view(OLD.arn, deployments=((OURS.arn, "IN_PROGRESS"), (OLD.arn, "COMPLETED")))
    choice = choose(wanted("operator", requested=OURS.arn), running, OLD)
    assert choice.problem is None and choice.runs == OURS


def test_a_service_on_terraform_s_revision_needs_nothing() -> None:
    choice = choose(wanted("operator"), view(OURS.arn), OURS)
    assert choice.deploy is None and decide(wanted("operator"), view(OURS.arn), choice, True).empty


def test_no_tasks_while_the_image_is_missing_and_the_spec_count_once_it_exists() -> None:
    choice = choose(wanted(count=3), view(CD.arn, desired=0), CD)
    assert decide(wanted(count=3), view(CD.arn, desired=0), choice, image_exists=False).desired_count is None
    assert decide(wanted(count=3), view(CD.arn, desired=2), choice, image_exists=False).desired_count == 0
    assert decide(wanted(count=3), view(CD.arn, desired=0), choice, image_exists=True).desired_count == 3


def test_a_port_change_moves_the_load_balancer_with_the_revision() -> None:
    moved = LoadBalancer("arn:tg/app-8080", "app", 8080)
    change = decide(wanted("operator", lb=moved), view(OLD.arn), choose(wanted("operator", lb=moved), view(OLD.arn),
                                                                          OLD), True)
    assert change.task_definition == OURS.arn and change.load_balancers == (moved,)
    # A new target group alone (the name now carries the port) moves too; an unchanged one is left.
    assert decide(wanted("operator", lb=moved), view(OURS.arn), choose(wanted("operator"), view(OURS.arn), OURS),
                  True).load_balancers == (moved,)
    assert decide(wanted("operator"), view(OURS.arn), choose(wanted("operator"), view(OURS.arn), OURS),
                  True).empty


def test_view_reads_the_primary_deployment() -> None:
    seen = view_of({"taskDefinition": "arn:td/app:2", "desiredCount": 2, "runningCount": 1,
                    "loadBalancers": [{"targetGroupArn": "arn:tg", "containerName": "app", "containerPort": 8501}],
                    "deployments": [{"status": "ACTIVE", "taskDefinition": "arn:td/app:1", "rolloutState": "COMPLETED"},
                                    {"status": "PRIMARY", "taskDefinition": "arn:td/app:2",
                                     "rolloutState": "IN_PROGRESS"}]})
    assert seen.rollout_state == "IN_PROGRESS" and seen.deployments[0] == ("arn:td/app:2", "IN_PROGRESS")
    assert seen.load_balancers == (LoadBalancer("arn:tg", "app", 8501),)


def test_the_rollout_in_effect_follows_the_image_when_unset() -> None:
    from llmapp_operator.api.spec import AppSpec
    assert AppSpec().rollout_mode == "pipeline"
    assert AppSpec(image="ghcr.io/acme/rags:1").rollout_mode == "operator"
    assert AppSpec(rollout="pipeline").rollout_mode == "pipeline"


def test_the_running_image_changes_the_plan_s_inputs_but_not_the_digest() -> None:
    import pathlib

    from llmapp_operator.api.spec import LLMApp
    from llmapp_operator.api.workspace import render, with_running_image
    from llmapp_operator.config import Settings
    from llmapp_operator.runners.modules import load_module

    settings = Settings()
    app = LLMApp.from_body({"metadata": {"name": "a", "namespace": "b", "uid": "u"},
                            "spec": {"environment": "dev", "aws": {"region": "us-east-1"},
                                     "github": {"repository": "acme/rags"}}})
    ws = render(app, settings.updated(workdir=pathlib.Path("/w")), load_module("stack", settings.modules))
    running = with_running_image(ws, "123456789012.dkr.ecr.us-east-1.amazonaws.com/a:sha-1")
    assert ws.tfvars["image"] == "" and ws.tfvars["rollout"] == "pipeline"
    assert running.tfvars["image"].endswith(":sha-1") and running.digest == ws.digest
    assert with_running_image(ws, "") is ws   # no service yet: the stack's first revision
