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

{{/*
Usage: {{ include "common.quantity.float" "20Gi" | float64 }}
A Kubernetes quantity (500m, 20Gi, 1.5G, 1e3, 4) as a plain number of base
units, or "" when it is not a quantity. Lets rules compare requests with
limits and add up volume sizes.
*/}}
{{- define "common.quantity.float" -}}
{{- $q := toString . -}}
{{- $num := regexFind "^[+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?" $q -}}
{{- $suffix := trimPrefix $num $q -}}
{{- $mult := dict "" 1.0 "m" 0.001 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 "P" 1000000000000000.0 "E" 1000000000000000000.0 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 -}}
{{- if and $num (hasKey $mult $suffix) -}}
{{- mulf (float64 (trimPrefix "+" $num)) (get $mult $suffix) -}}
{{- end -}}
{{- end -}}

{{/*
Usage: {{ include "common.resources.compare" (dict "path" "vllm.models[0].resources" "resources" $res) }}
A line per resource whose request is larger than its limit (the API server
refuses such a pod, long after the chart rendered).
*/}}
{{- define "common.resources.compare" -}}
{{- $r := .resources | default dict -}}
{{- $req := $r.requests | default dict -}}
{{- $lim := $r.limits | default dict -}}
{{- range $name, $l := $lim -}}
{{- if hasKey $req $name -}}
{{- $rv := include "common.quantity.float" (get $req $name) -}}
{{- $lv := include "common.quantity.float" $l -}}
{{- if and $rv $lv (gt (float64 $rv) (float64 $lv)) }}
{{ $.path }}.requests.{{ $name }}: {{ get $req $name }} is larger than {{ $.path }}.limits.{{ $name }} {{ $l }} (a request may not exceed its limit)
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
