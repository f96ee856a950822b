{{/*
Usage: {{ include "networkPolicies.engineSelector" . | nindent 6 }}
Labels of this release's engine pods (the serving chart's contract).
*/}}
{{- define "networkPolicies.engineSelector" -}}
app.kubernetes.io/name: vllm
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: engine
{{- end -}}

{{/*
Usage: {{ include "networkPolicies.routerSelector" . | nindent 6 }}
Labels of this release's router pods (the router chart's contract).
*/}}
{{- define "networkPolicies.routerSelector" -}}
app.kubernetes.io/name: router
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: router
{{- end -}}

{{/*
Usage: {{ include "networkPolicies.addOnSelector" (dict "context" $ "part" "interceptor") | nindent 6 }}
Labels of this release's KEDA HTTP add-on pods (the autoscaling chart's
contract): part is interceptor or scaler.
*/}}
{{- define "networkPolicies.addOnSelector" -}}
app.kubernetes.io/name: autoscaling
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/component: {{ printf "http-%s" .part }}
{{- end -}}

{{/*
Usage: {{ include "networkPolicies.testSelector" . | nindent 6 }}
Labels of this release's helm test pods.
*/}}
{{- define "networkPolicies.testSelector" -}}
app.kubernetes.io/name: vllm
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end -}}

{{/*
Usage: {{ include "networkPolicies.prefix" . }}
Prefix of every policy name: fullnameOverride or <release>-netpol. Not
common.names.fullname: under the umbrella this chart's name is its alias
"networkPolicies", which is not a valid object name.
*/}}
{{- define "networkPolicies.prefix" -}}
{{- default (printf "%s-netpol" .Release.Name) .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/*
Usage: {{ include "networkPolicies.meta" (dict "context" $ "name" "default-deny" "purpose" "...") | nindent 2 }}
Name, namespace, labels and the purpose annotation of one policy.
*/}}
{{- define "networkPolicies.meta" -}}
name: {{ printf "%s-%s" (include "networkPolicies.prefix" .context) .name | trunc 63 | trimSuffix "-" }}
namespace: {{ .context.Release.Namespace }}
labels:
  {{- include "common.labels.standard" (dict "context" .context "component" "network-policy") | nindent 2 }}
annotations:
  llmops.io/purpose: {{ .purpose | quote }}
{{- end -}}

{{/*
Usage: {{ include "networkPolicies.validateValues" . }}
Every cross-field problem of this chart, one "values.path: problem" per line.
*/}}
{{- define "networkPolicies.validateValues" -}}
{{- if and .Values.router.enabled (not .Values.router.apiServer.cidrs) }}
networkPolicies.router.apiServer.cidrs: empty while router is enabled; the router could not watch the engine pods (list the API server's addresses)
{{- end }}
{{- if and .Values.modelDownload.enabled (not .Values.global.airGapped) (not .Values.modelDownload.cidrs) }}
networkPolicies.modelDownload.cidrs: empty while modelDownload is enabled (list the model store's CIDRs, or disable it)
{{- end }}
{{- if and .Values.modelDownload.enabled (not .Values.global.airGapped) (not .Values.modelDownload.ports) }}
networkPolicies.modelDownload.ports: empty while modelDownload is enabled
{{- end }}
{{- end -}}
