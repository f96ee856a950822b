{{/*
Usage: {{ include "llmops-stack.validateValues" . }}
Rules that span subcharts. Every subchart that keeps per-model settings
keys them by model name under `<alias>.models` (a map); each key must name
an entry of vllm.models, or the settings would silently apply to nothing.
*/}}
{{- define "llmops-stack.validateValues" -}}
{{- $p := "" -}}
{{- $models := list -}}
{{- if .Values.vllm.enabled -}}
{{- $models = .Values.vllm.models | default list -}}
{{- end -}}
{{- range $alias, $block := .Values -}}
{{- if and (kindIs "map" $block) (ne $alias "vllm") (ne $alias "global") -}}
{{- if and (ne (toString $block.enabled) "false") (kindIs "map" $block.models) -}}
{{- $p = print $p (include "common.validate.modelKeys" (dict "path" (printf "%s.models" $alias) "map" $block.models "models" $models)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $ing := .Values.ingress | default dict -}}
{{- if $ing.enabled -}}
{{- $names := list -}}
{{- range $models -}}{{- $names = append $names (toString .name) -}}{{- end -}}
{{- range $i, $r := ($ing.routes | default list) -}}
{{- if and $r.model (not (has (toString $r.model) $names)) -}}
{{- $p = print $p (printf "\ningress.routes[%d].model: no model named %q in vllm.models (have: %s)" $i (toString $r.model) (join ", " $names)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* An autoscaled model must leave spec.replicas to its autoscaler, or every
       helm upgrade resets the count the autoscaler chose. */ -}}
{{- $as := .Values.autoscaling | default dict -}}
{{- if and .Values.vllm.enabled (eq (toString $as.enabled) "true") (kindIs "map" $as.models) -}}
{{- $ctx := dict "Values" .Values.vllm "Release" .Release "Chart" (dict "Name" "vllm") -}}
{{- range $m := (include "vllm.models" $ctx | fromYaml).models -}}
{{- if and (hasKey $as.models (toString $m.name)) (not (kindIs "invalid" $m.replicas)) }}
{{- $p = print $p (printf "\nvllm.models[%d].replicas: %v, but autoscaling.models.%s scales this model; set replicas to null (here or in vllm.modelDefaults) so helm upgrade does not reset the autoscaler's count" (int $m.index) $m.replicas $m.name) -}}
{{- end }}
{{- end -}}
{{- end -}}
{{- include "common.validate.oneOf" (dict "path" "global.environment" "value" .Values.global.environment "allowed" (list "local" "staging" "production")) | print $p | include "llmops-stack.failIfAny" -}}
{{- end -}}

{{/*
Usage: {{ include "llmops-stack.failIfAny" $messages }}
*/}}
{{- define "llmops-stack.failIfAny" -}}
{{- include "common.validate.fail" (dict "chart" "llmops-stack" "messages" .) -}}
{{- end -}}
