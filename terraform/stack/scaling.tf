# spec.app.scaling: Application Auto Scaling of the service's task count. Written here rather than
# through the ecs service module's autoscaling inputs: at v7.5.0 the module registers
# min_capacity = min(var.autoscaling_min_capacity, var.desired_count) (modules/service/main.tf), and
# the stack creates the service with desired_count = 0 (no tasks before the image exists), so the
# module would register every app with a minimum of 0. The module's own autoscaling stays off.
locals {
  scaling_on          = var.scaling != null
  scaling_resource_id = "service/${module.ecs_cluster.name}/${module.ecs_service.name}"
  scaling_schedule_on = local.scaling_on ? var.scaling.schedule != null : false
}

resource "aws_appautoscaling_target" "app" {
  count              = local.scaling_on ? 1 : 0
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = local.scaling_resource_id
  min_capacity       = var.scaling.min_tasks
  max_capacity       = var.scaling.max_tasks
  tags               = var.tags
}

# One target tracking policy per metric the spec names; with both, the service scales out when
# either asks for more tasks and in only when both allow it.
locals {
  scaling_metrics = local.scaling_on ? {
    cpu = { type = "ECSServiceAverageCPUUtilization", target = var.scaling.cpu_target, label = null }
    requests = {
      type   = "ALBRequestCountPerTarget"
      target = var.scaling.requests_per_target
      # app/<alb name>/<id>/targetgroup/<tg name>/<id>, as CloudWatch names the pair.
      label = "${module.alb.arn_suffix}/${module.alb.target_groups["app"].arn_suffix}"
    }
  } : {}
}

resource "aws_appautoscaling_policy" "app" {
  for_each           = { for key, metric in local.scaling_metrics : key => metric if metric.target != null }
  name               = "${var.name}-${each.key}"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.app[0].service_namespace
  resource_id        = aws_appautoscaling_target.app[0].resource_id
  scalable_dimension = aws_appautoscaling_target.app[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = each.value.target
    scale_in_cooldown  = 300 # scale in slowly: an LLM request can run for a minute
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = each.value.type
      resource_label         = each.value.label
    }
  }
}

# Out of hours: min = max = 0 at stop, the spec's range again at start. A scheduled action that
# raises the minimum scales the service out to it when it runs.
locals {
  scaling_actions = local.scaling_schedule_on ? {
    stop  = { schedule = var.scaling.schedule.stop, min = 0, max = 0 }
    start = { schedule = var.scaling.schedule.start, min = var.scaling.min_tasks, max = var.scaling.max_tasks }
  } : {}
}

resource "aws_appautoscaling_scheduled_action" "app" {
  for_each           = local.scaling_actions
  name               = "${var.name}-${each.key}"
  service_namespace  = aws_appautoscaling_target.app[0].service_namespace
  resource_id        = aws_appautoscaling_target.app[0].resource_id
  scalable_dimension = aws_appautoscaling_target.app[0].scalable_dimension
  schedule           = each.value.schedule
  timezone           = var.scaling.schedule.timezone
  scalable_target_action {
    min_capacity = each.value.min
    max_capacity = each.value.max
  }
}
