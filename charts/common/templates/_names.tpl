{{/*
Naming helpers. Kubernetes names are DNS labels: at most 63 characters.
*/}}

{{/*
Usage: {{ include "common.names.name" . }}
The chart name (or .Values.nameOverride), truncated to 63 characters.
*/}}
{{- define "common.names.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Usage: {{ include "common.names.fullname" . }}
<release>-<chart> unless the release name already contains the chart name;
.Values.fullnameOverride replaces it entirely.
*/}}
{{- define "common.names.fullname" -}}
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

{{/*
Usage: {{ include "common.names.engine" (dict "context" $ "model" $model) }}
Name of the engine Deployment and Service of one model: <release>-<model name>.
"model" is either a model entry (a map with .name) or the model name itself,
so concern subcharts keyed by model name (autoscaling.models.<name>) reach
the same object as the vllm chart.
*/}}
{{- define "common.names.engine" -}}
{{- $model := .model -}}
{{- $name := kindIs "map" $model | ternary (get (kindIs "map" $model | ternary $model dict) "name") $model -}}
{{- if not $name -}}
{{- fail "common.names.engine: model name is empty" -}}
{{- end -}}
{{- printf "%s-%s" .context.Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Usage: {{ include "common.names.chart" . }}
<chart>-<version> for the helm.sh/chart label ("+" is not allowed in label values).
*/}}
{{- define "common.names.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Usage: {{ include "common.names.namespace" . }}
The release namespace (or .Values.namespaceOverride).
*/}}
{{- define "common.names.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Usage: {{ include "common.names.serviceAccount" (dict "context" $ "serviceAccount" .Values.serviceAccount) }}
The ServiceAccount name: serviceAccount.name, else the fullname when the
chart creates one, else "default".
*/}}
{{- define "common.names.serviceAccount" -}}
{{- $sa := .serviceAccount | default dict -}}
{{- if $sa.create -}}
{{- default (include "common.names.fullname" .context) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}
