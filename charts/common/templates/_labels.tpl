{{/*
Label helpers. Selectors use only name, instance and component: they are
immutable on Deployments, so the version never goes into them.
*/}}

{{/*
Usage: {{ include "common.labels.standard" (dict "context" $ "component" "engine" "extra" (dict "llmops.io/model" "x")) }}
Every recommended app.kubernetes.io label plus helm.sh/chart; "extra" is
optional and merged last (it cannot override the standard keys).
*/}}
{{- define "common.labels.standard" -}}
{{- $ctx := .context -}}
{{- $labels := dict
  "app.kubernetes.io/name" (include "common.names.name" $ctx)
  "app.kubernetes.io/instance" $ctx.Release.Name
  "app.kubernetes.io/managed-by" $ctx.Release.Service
  "app.kubernetes.io/part-of" "llmops-stack"
  "helm.sh/chart" (include "common.names.chart" $ctx)
-}}
{{- with .component }}{{- $_ := set $labels "app.kubernetes.io/component" . -}}{{- end }}
{{- with (default $ctx.Chart.AppVersion .version) }}{{- $_ := set $labels "app.kubernetes.io/version" (toString . | replace "+" "_" | replace "@" "_" | replace ":" "_" | trunc 63 | trimSuffix "-") -}}{{- end }}
{{- $all := merge $labels (.extra | default dict) -}}
{{- toYaml $all -}}
{{- end -}}

{{/*
Usage: {{ include "common.labels.selector" (dict "context" $ "component" "engine" "extra" (dict "llmops.io/model" "x")) }}
The immutable subset used in selectors: name, instance, component (+ "extra").
*/}}
{{- define "common.labels.selector" -}}
{{- $ctx := .context -}}
{{- $labels := dict
  "app.kubernetes.io/name" (include "common.names.name" $ctx)
  "app.kubernetes.io/instance" $ctx.Release.Name
-}}
{{- with .component }}{{- $_ := set $labels "app.kubernetes.io/component" . -}}{{- end }}
{{- $all := merge $labels (.extra | default dict) -}}
{{- toYaml $all -}}
{{- end -}}
