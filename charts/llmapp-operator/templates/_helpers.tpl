{{- define "llmapp-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llmapp-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "llmapp-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llmapp-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "llmapp-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "llmapp-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "llmapp-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "llmapp-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The leader Lease's name (LLMAPP_LEADER_ELECTION_NAME), in the release namespace. */}}
{{- define "llmapp-operator.leaseName" -}}
{{- include "llmapp-operator.fullname" . -}}
{{- end -}}

{{/* RBAC rules, each verb with the reason it is needed (templates/rbac.yaml). */}}
{{- define "llmapp-operator.rules" -}}
# Kopf lists and watches LLMApps and patches them: its finalizer and its progress annotations.
- apiGroups: ["llmops.dev"]
  resources: ["llmapps"]
  verbs: ["list", "watch", "patch"]
# Status (phase, conditions, URL, outputs) is written through the status subresource.
- apiGroups: ["llmops.dev"]
  resources: ["llmapps/status"]
  verbs: ["patch"]
# One Event per phase change and per new failure (kubectl describe); Kopf posts core/v1 Events.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# The Secrets an LLMApp names (GitHub token, app secrets): read by name, never listed or watched.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}
{{/* Where Terraform Jobs run: a runner namespace, else the release's own (never a tenant's). */}}
{{- define "llmapp-operator.jobNamespace" -}}
{{ .Values.jobRunner.namespace | default .Release.Namespace }}
{{- end }}
{{- define "llmapp-operator.signingSecret" -}}
{{ include "llmapp-operator.fullname" . }}-job-signing-key
{{- end }}
{{/* The operator's rights in the job namespace: Jobs, their ConfigMaps, their pods' state and logs. */}}
{{- define "llmapp-operator.jobRules" -}}
# One Job per Terraform step, found again by its labels after a restart (list), and read until it
# finishes (get); ttlSecondsAfterFinished removes finished ones. The operator deletes a Job when its
# request could not be created, and a deleted LLMApp's Jobs (by their uid label).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "list", "delete"]
# The Job's request (inputs, no secrets, MACed) is created by the operator; its result is read back.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create", "get"]
# Why a Job failed without a result: was its pod evicted (pods, listed by the job-name label) ...
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# ... and the tail of its log, redacted, in the condition message.
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
{{- end }}
