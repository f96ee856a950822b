{{/*
Validation helpers. Checks emit "values.path: problem" lines (empty when
fine); a chart's <chart>.validateValues collects every line and calls
common.validate.fail once, so the user sees every problem in one run.
*/}}

{{/*
Usage: {{ include "common.validate.fail" (dict "chart" "vllm" "messages" $text) }}
Fails rendering with one bullet per non-empty line of "messages".
*/}}
{{- define "common.validate.fail" -}}
{{- $lines := list -}}
{{- range (splitList "\n" (toString .messages)) -}}
{{- if trim . -}}{{- $lines = append $lines (trim .) -}}{{- end -}}
{{- end -}}
{{- if $lines -}}
{{- fail (printf "\n%s values are invalid (%d problem(s)):\n- %s" .chart (len $lines) (join "\n- " $lines)) -}}
{{- end -}}
{{- end -}}

{{/*
Usage: {{ include "common.validate.dnsLabel" (dict "path" "vllm.models[0].name" "value" $name) }}
A line when the value is not an RFC 1123 DNS label (lower case, digits, "-", <= 63).
*/}}
{{- define "common.validate.dnsLabel" -}}
{{- $v := toString (.value | default "") -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" $v) }}
{{ .path }}: {{ $v | quote }} is not a DNS label (lower-case letters, digits and "-", at most 63 characters)
{{- end }}
{{- end -}}

{{/*
Usage: {{ include "common.validate.oneOf" (dict "path" "vllm.engine" "value" .Values.engine "allowed" (list "vllm" "simulator")) }}
A line when the value is not one of "allowed".
*/}}
{{- define "common.validate.oneOf" -}}
{{- if not (has .value .allowed) }}
{{ .path }}: {{ toString .value | quote }} is not one of {{ join ", " .allowed }}
{{- end }}
{{- end -}}

{{/*
Usage: {{ include "common.validate.uniqueNames" (dict "path" "vllm.models" "items" .Values.models) }}
A line per name that appears more than once in a list of maps with .name.
*/}}
{{- define "common.validate.uniqueNames" -}}
{{- $seen := dict -}}
{{- range $i, $item := .items -}}
{{- $n := toString $item.name -}}
{{- if hasKey $seen $n }}
{{ $.path }}[{{ $i }}].name: {{ $n | quote }} is already used by {{ $.path }}[{{ get $seen $n }}]
{{- else -}}
{{- $_ := set $seen $n $i -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Usage: {{ include "common.validate.modelKeys" (dict "path" "autoscaling.models" "map" .Values.autoscaling.models "models" .Values.vllm.models) }}
A line per key of a per-model map that does not name an entry of vllm.models.
*/}}
{{- define "common.validate.modelKeys" -}}
{{- $names := list -}}
{{- range (.models | default list) -}}{{- $names = append $names (toString .name) -}}{{- end -}}
{{- range $key, $_ := (.map | default dict) -}}
{{- if not (has $key $names) }}
{{ $.path }}.{{ $key }}: no model named {{ $key | quote }} in vllm.models (have: {{ join ", " $names }})
{{- end -}}
{{- end -}}
{{- end -}}
