{{/*
Usage: {{ include "autoscaling.model" (dict "context" $ "name" $name) | fromYaml }}
The settings of one model: `defaults` deep-merged with `models.<name>`.
*/}}
{{- define "autoscaling.model" -}}
{{- $ctx := .context -}}
{{- $override := get $ctx.Values.models .name | default dict -}}
{{- toYaml (mergeOverwrite (deepCopy $ctx.Values.defaults) (deepCopy $override)) -}}
{{- end -}}

{{/*
Usage: {{ include "autoscaling.selector" (dict "context" $ "name" $name) }}
PromQL label matchers that select one model's engine series in this namespace.
*/}}
{{- define "autoscaling.selector" -}}
{{- $p := .context.Values.prometheus -}}
{{- printf "%s=%q," $p.namespaceLabel .context.Release.Namespace -}}
{{- with $p.releaseLabel }}{{ printf "%s=%q," . $.context.Release.Name }}{{ end -}}
{{- printf "%s=%q" $p.modelLabel .name -}}
{{- end -}}

{{/*
Usage: {{ include "autoscaling.queries" (dict "context" $ "name" $name "model" $m) | fromYaml }}
The trigger queries of one model, keyed queue, kvCache, ttft. Queue and KV
cache are summed over the model's pods (AverageValue divides by replicas);
the TTFT quantile is multiplied by the pod count for the same reason, so the
HPA's proportional rule (replicas x observed / target) holds for a latency.
A quantile of an idle histogram is NaN: `>= 0` drops it and `or vector(0)`
reads "no traffic" as 0 instead of an error.
*/}}
{{- define "autoscaling.queries" -}}
{{- $sel := include "autoscaling.selector" . -}}
{{- $ttft := .model.triggers.ttft -}}
queue: {{ printf "sum(vllm:num_requests_waiting{%s})" $sel | quote }}
kvCache: {{ printf "sum(vllm:kv_cache_usage_perc{%s})" $sel | quote }}
ttft: {{ printf "(histogram_quantile(%v, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{%s}[%s]))) * scalar(count(vllm:num_requests_running{%s})) >= 0) or vector(0)" $ttft.quantile $sel $ttft.window $sel | quote }}
{{- end -}}

{{/*
Usage: {{ include "autoscaling.behavior" $m.behavior | nindent 8 }}
HPA behavior (autoscaling/v2) from a behavior block.
*/}}
{{- define "autoscaling.behavior" -}}
{{- toYaml . -}}
{{- end -}}

{{/*
Usage: {{ include "autoscaling.validateValues" . }}
Every cross-field problem of this chart, one "values.path: problem" per line.
*/}}
{{- define "autoscaling.validateValues" -}}
{{- $ := . -}}
{{- include "common.validate.oneOf" (dict "path" "autoscaling.engine" "value" .Values.engine "allowed" (list "keda" "hpa")) -}}
{{- include "common.validate.oneOf" (dict "path" "autoscaling.prometheus.auth.mode" "value" .Values.prometheus.auth.mode "allowed" (list "none" "bearer" "basic" "tls")) -}}
{{- if and (ne .Values.prometheus.auth.mode "none") (not .Values.prometheus.auth.secretName) }}
autoscaling.prometheus.auth.secretName: required when auth.mode is {{ .Values.prometheus.auth.mode }} (name an existing Secret with the credentials)
{{- end }}
{{- range $name, $_ := .Values.models }}
{{- $path := printf "autoscaling.models.%s" $name -}}
{{- include "common.validate.dnsLabel" (dict "path" $path "value" $name) -}}
{{- $m := include "autoscaling.model" (dict "context" $ "name" $name) | fromYaml -}}
{{- $min := int $m.minReplicas -}}
{{- $max := int $m.maxReplicas -}}
{{- if lt $max 1 }}
{{ $path }}.maxReplicas: {{ $max }} must be at least 1
{{- end }}
{{- if gt $min $max }}
{{ $path }}.minReplicas: {{ $min }} is larger than maxReplicas {{ $max }}
{{- end }}
{{- include "common.validate.oneOf" (dict "path" (printf "%s.scaleToZero.holder" $path) "value" $m.scaleToZero.holder "allowed" (list "httpAddOn" "none")) -}}
{{- if not (regexMatch "^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$" (toString $m.scaleToZero.holdTimeout)) }}
{{ $path }}.scaleToZero.holdTimeout: {{ $m.scaleToZero.holdTimeout | quote }} is not a Go duration (e.g. 90s, 20m, 1h)
{{- end }}
{{- $t := $m.triggers -}}
{{- if not (or $t.queue.enabled $t.kvCache.enabled $t.ttft.enabled $t.demand.enabled) }}
{{ $path }}.triggers: no trigger is enabled (enable queue, kvCache, ttft or demand)
{{- end }}
{{- if and $t.demand.enabled (not $t.demand.query) }}
{{ $path }}.triggers.demand.query: required when demand is enabled (PromQL giving the model's arrivals per second, from the ingress or gateway in front of the engines)
{{- end }}
{{- if and $m.fallback.enabled (gt (int $m.fallback.replicas) $max) }}
{{ $path }}.fallback.replicas: {{ $m.fallback.replicas }} is larger than maxReplicas {{ $max }}
{{- end }}
{{- if eq $min 0 }}
{{- if eq $.Values.engine "hpa" }}
{{ $path }}.minReplicas: 0 needs engine keda (a plain HPA cannot scale to zero)
{{- else if and (eq (toString $m.scaleToZero.holder) "none") (not $m.scaleToZero.activationQuery) }}
{{ $path }}.scaleToZero.activationQuery: required with minReplicas 0 and scaleToZero.holder none: vLLM metrics vanish with the last engine pod, so no vLLM trigger can ever wake the model; set holder httpAddOn (requests held and counted by the KEDA HTTP add-on), give a series that exists at zero pods, or set minReplicas >= 1
{{- else if contains "vllm:" $m.scaleToZero.activationQuery }}
{{ $path }}.scaleToZero.activationQuery: reads vLLM metrics, which do not exist while zero engine pods run; scale from zero would never trigger (use a series outside the engines, e.g. ingress request rate)
{{- end }}
{{- end }}
{{- if and (eq $.Values.engine "hpa") $t.ttft.enabled }}
{{ $path }}.triggers.ttft: TTFT p95 scaling needs engine keda (prometheus-adapter exposes per-pod metrics, not histogram quantiles)
{{- end }}
{{- if and (eq $.Values.engine "hpa") $t.demand.enabled }}
{{ $path }}.triggers.demand: arrival-rate scaling needs engine keda (it is a query over series outside the engine pods, not a per-pod metric)
{{- end }}
{{- end }}
{{- end -}}

{{/*
Usage: {{ include "autoscaling.heldModels" . | fromYamlArray }}
Names of the models whose requests the KEDA HTTP add-on holds at zero
replicas: minReplicas 0 with scaleToZero.holder httpAddOn (engine keda).
*/}}
{{- define "autoscaling.heldModels" -}}
{{- $held := list -}}
{{- if eq .Values.engine "keda" -}}
{{- range $name, $_ := .Values.models -}}
{{- $m := include "autoscaling.model" (dict "context" $ "name" $name) | fromYaml -}}
{{- if and (eq (int $m.minReplicas) 0) (eq (toString $m.scaleToZero.holder) "httpAddOn") -}}
{{- $held = append $held $name -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $held -}}
{{- end -}}

{{/*
Usage: {{ include "autoscaling.httpAddOn.name" (dict "context" $ "part" "interceptor") }}
Name of one add-on object: <fullname>-<part>.
*/}}
{{- define "autoscaling.httpAddOn.name" -}}
{{- printf "%s-%s" (include "common.names.fullname" .context) .part | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Usage: {{ include "autoscaling.holdService" (dict "context" $ "name" $name) }}
The Service the router sends a held model's requests to (the interceptor's
proxy port); its DNS name is the host the HTTPScaledObject routes on.
*/}}
{{- define "autoscaling.holdService" -}}
{{- printf "%s-hold" (include "common.names.engine" (dict "context" .context "model" .name)) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Usage: {{ include "autoscaling.holdHost" (dict "context" $ "name" $name) }}
<hold Service>.<namespace>.svc: the URL host of the router's hold worker.
*/}}
{{- define "autoscaling.holdHost" -}}
{{- printf "%s.%s.svc" (include "autoscaling.holdService" .) .context.Release.Namespace -}}
{{- end -}}

{{/*
Usage: {{ include "autoscaling.scalerAddress" . }}
*/}}
{{- define "autoscaling.scalerAddress" -}}
{{- default (printf "%s.%s.svc:9090" (include "autoscaling.httpAddOn.name" (dict "context" . "part" "scaler")) .Release.Namespace) .Values.httpAddOn.scalerAddress -}}
{{- end -}}
