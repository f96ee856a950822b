{{/*
Usage: {{ include "gpu.devicePluginConfigMap" . }}
Name of the device-plugin config ConfigMap.
*/}}
{{- define "gpu.devicePluginConfigMap" -}}
{{- default (printf "%s-device-plugin" (include "common.names.fullname" .)) .Values.devicePlugin.configMapName -}}
{{- end -}}

{{/*
Usage: {{ include "gpu.dcgmMetricsConfigMap" . }}
Name of the DCGM exporter counters ConfigMap.
*/}}
{{- define "gpu.dcgmMetricsConfigMap" -}}
{{- printf "%s-dcgm-metrics" (include "common.names.fullname" .) -}}
{{- end -}}

{{/*
Usage: {{ include "gpu.priorityClassName" . }}
Name of the inference PriorityClass.
*/}}
{{- define "gpu.priorityClassName" -}}
{{- default (printf "%s-inference" .Release.Name) .Values.priorityClass.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Usage: {{ include "gpu.validateValues" . }}
Every cross-field problem of this chart, one "values.path: problem" per line.
*/}}
{{- define "gpu.validateValues" -}}
{{- $ := . -}}
{{- $dp := .Values.devicePlugin -}}
{{- if $dp.enabled }}
{{- if not (hasKey $dp.configs $dp.defaultConfig) }}
gpu.devicePlugin.defaultConfig: {{ $dp.defaultConfig | quote }} is not a key of devicePlugin.configs (have: {{ keys $dp.configs | sortAlpha | join ", " }})
{{- end }}
{{- range $name, $c := $dp.configs }}
{{- include "common.validate.oneOf" (dict "path" (printf "gpu.devicePlugin.configs.%s.migStrategy" $name) "value" $c.migStrategy "allowed" (list "none" "single" "mixed")) -}}
{{- end }}
{{- end }}
{{- include "common.validate.oneOf" (dict "path" "gpu.clusterPolicy.migStrategy" "value" .Values.clusterPolicy.migStrategy "allowed" (list "none" "single" "mixed")) -}}
{{- if and .Values.clusterPolicy.create (ne .Values.clusterPolicy.migStrategy "none") (not .Values.clusterPolicy.migManager) }}
gpu.clusterPolicy.migManager: must be true when migStrategy is {{ .Values.clusterPolicy.migStrategy }} (the MIG manager applies the partitioning)
{{- end }}
{{- end -}}
