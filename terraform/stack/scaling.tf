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

resource "aws_appautoscaling_policy" "cpu" {
  count              = local.scaling_on ? (var.scaling.cpu_target != null ? 1 : 0) : 0
  name               = "${var.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.app[0].service_namespace
  resource_id        = aws_appautoscaling_target.app[0].resource_id
  scalable_dimension = aws_appautoscaling_target.app[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.scaling.cpu_target
    scale_in_cooldown  = 300 # scale in slowly: an LLM request can run for a minute
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "requests" {
  count              = local.scaling_on ? (var.scaling.requests_per_target != null ? 1 : 0) : 0
  name               = "${var.name}-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.app[0].service_namespace
  resource_id        = aws_appautoscaling_target.app[0].resource_id
  scalable_dimension = aws_appautoscaling_target.app[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.scaling.requests_per_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      # app/<alb name>/<id>/targetgroup/<tg name>/<id>, as CloudWatch names the pair.
      resource_label = "${module.alb.arn_suffix}/${module.alb.target_groups["app"].arn_suffix}"
    }
  }
}

# Out of hours: min = max = 0 at stop, the spec's range again at start. A scheduled action that
# raises the minimum scales the service out to it when it runs.
resource "aws_appautoscaling_scheduled_action" "stop" {
  count              = local.scaling_schedule_on ? 1 : 0
  name               = "${var.name}-stop"
  service_namespace  = aws_appautoscaling_target.app[0].service_namespace
  resource_id        = aws_appautoscaling_target.app[0].resource_id
  scalable_dimension = aws_appautoscaling_target.app[0].scalable_dimension
  schedule           = var.scaling.schedule.stop
  timezone           = var.scaling.schedule.timezone
  scalable_target_action {
    min_capacity = 0
    max_capacity = 0
  }
}

resource "aws_appautoscaling_scheduled_action" "start" {
  count              = local.scaling_schedule_on ? 1 : 0
  name               = "${var.name}-start"
  service_namespace  = aws_appautoscaling_target.app[0].service_namespace
  resource_id        = aws_appautoscaling_target.app[0].resource_id
  scalable_dimension = aws_appautoscaling_target.app[0].scalable_dimension
  schedule           = var.scaling.schedule.start
  timezone           = var.scaling.schedule.timezone
  scalable_target_action {
    min_capacity = var.scaling.min_tasks
    max_capacity = var.scaling.max_tasks
  }
}
