{{/*
Resource presets. An explicit resources block always wins; an unknown
preset name fails rendering (a typo must not silently mean "unbounded").
*/}}

{{/*
Usage: {{ include "common.resources.preset" (dict "type" "small") }}
Requests and limits of one named preset: none, nano, micro, small, medium,
large, xlarge ("none" renders {}).
*/}}
{{- define "common.resources.preset" -}}
{{- $presets := dict
  "none" dict
  "nano" (dict "requests" (dict "cpu" "50m" "memory" "64Mi" "ephemeral-storage" "50Mi") "limits" (dict "memory" "128Mi" "ephemeral-storage" "1Gi"))
  "micro" (dict "requests" (dict "cpu" "100m" "memory" "128Mi" "ephemeral-storage" "50Mi") "limits" (dict "memory" "256Mi" "ephemeral-storage" "1Gi"))
  "small" (dict "requests" (dict "cpu" "250m" "memory" "256Mi" "ephemeral-storage" "50Mi") "limits" (dict "memory" "512Mi" "ephemeral-storage" "2Gi"))
  "medium" (dict "requests" (dict "cpu" "500m" "memory" "1Gi" "ephemeral-storage" "50Mi") "limits" (dict "memory" "2Gi" "ephemeral-storage" "2Gi"))
  "large" (dict "requests" (dict "cpu" "2" "memory" "8Gi" "ephemeral-storage" "50Mi") "limits" (dict "memory" "16Gi" "ephemeral-storage" "4Gi"))
  "xlarge" (dict "requests" (dict "cpu" "8" "memory" "64Gi" "ephemeral-storage" "50Mi") "limits" (dict "memory" "128Gi" "ephemeral-storage" "8Gi"))
-}}
{{- $name := toString .type -}}
{{- if not (hasKey $presets $name) -}}
{{- fail (printf "resources preset %q is unknown; use one of: %s (or set resources explicitly)" $name (keys $presets | sortAlpha | join ", ")) -}}
{{- end -}}
{{- toYaml (get $presets $name) -}}
{{- end -}}

{{/*
Usage: {{ include "common.resources.render" (dict "resources" .Values.resources "preset" .Values.resourcesPreset) | nindent 12 }}
The explicit resources when non-empty, else the preset. The preset name is
checked even when explicit resources win, so a typo never hides.
*/}}
{{- define "common.resources.render" -}}
{{- $preset := include "common.resources.preset" (dict "type" (default "none" .preset)) | fromYaml -}}
{{- if .resources -}}
{{- toYaml .resources -}}
{{- else -}}
{{- toYaml $preset -}}
{{- end -}}
{{- end -}}
