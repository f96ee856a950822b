{{/*
Usage: {{ include "observability.sel" . }}
PromQL matchers that select this release's engine series (the monitor adds
llmops_release and llmops_model from the pod labels).
*/}}
{{- define "observability.sel" -}}
{{- printf "namespace=%q,llmops_release=%q" .Release.Namespace .Release.Name -}}
{{- end -}}

{{/*
Usage: {{ include "observability.podSel" . }}
Matchers for kube-state-metrics and DCGM series of this release's pods.
*/}}
{{- define "observability.podSel" -}}
{{- printf "namespace=%q,pod=~%q" .Release.Namespace (printf "%s-.*" .Release.Name) -}}
{{- end -}}

{{/*
Usage: {{ include "observability.le" 2.5 }}
A regex matching a histogram bucket boundary however the exporter prints it
(Go prints 1, Python prints 1.0).
*/}}
{{- define "observability.le" -}}
{{- $v := toString . -}}
{{- printf "%s(\\\\.0+)?" (replace "." "\\\\." $v) -}}
{{- end -}}

{{/*
Usage: {{ include "observability.engineSelector" . | nindent 6 }}
Labels of the engine pods and Services (the serving chart's contract).
*/}}
{{- define "observability.engineSelector" -}}
app.kubernetes.io/name: vllm
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: engine
{{- end -}}

{{/*
Usage: {{ include "observability.routerSelector" . | nindent 6 }}
Labels of the router Service (the router chart's contract).
*/}}
{{- define "observability.routerSelector" -}}
app.kubernetes.io/name: router
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: router
{{- end -}}

{{/*
Usage: {{ include "observability.relabelings" . | nindent 8 }}
Copies the release and model pod labels onto every scraped series.
*/}}
{{- define "observability.relabelings" -}}
- sourceLabels: [__meta_kubernetes_pod_label_llmops_io_model]
  targetLabel: llmops_model
- sourceLabels: [__meta_kubernetes_pod_label_app_kubernetes_io_instance]
  targetLabel: llmops_release
- sourceLabels: [__meta_kubernetes_pod_name]
  targetLabel: pod
{{- end -}}

{{/*
Usage: {{ include "observability.windows" . }}
Every burn-rate window the alerts need, comma separated, without duplicates.
*/}}
{{- define "observability.windows" -}}
{{- $w := list -}}
{{- range .Values.rules.slo.burnRates -}}
{{- $w = append (append $w .long) .short -}}
{{- end -}}
{{- $w | uniq | join "," -}}
{{- end -}}

{{/*
Usage: {{ include "observability.validateValues" . }}
Every cross-field problem of this chart, one "values.path: problem" per line.
*/}}
{{- define "observability.validateValues" -}}
{{- include "common.validate.oneOf" (dict "path" "observability.monitor.kind" "value" .Values.monitor.kind "allowed" (list "ServiceMonitor" "PodMonitor")) -}}
{{- range $k := list "ttft" "itl" }}
{{- $s := get $.Values.rules.slo $k }}
{{- if and $s.enabled (or (le (float64 $s.objective) 0.0) (ge (float64 $s.objective) 1.0)) }}
observability.rules.slo.{{ $k }}.objective: {{ $s.objective }} must be between 0 and 1 (exclusive)
{{- end }}
{{- end }}
{{- if and .Values.rules.enabled (not .Values.monitor.enabled) (not .Values.rules.scrapedElsewhere) }}
observability.rules.enabled: the rules read engine series, but observability.monitor.enabled is false, so nothing scrapes them and no alert can fire; enable the monitor, or set observability.rules.scrapedElsewhere true if another scrape config writes llmops_release/llmops_model
{{- end }}
{{- if .Values.monitor.enabled }}
{{- $iv := include "observability.seconds" .Values.monitor.interval | float64 -}}
{{- $to := include "observability.seconds" .Values.monitor.scrapeTimeout | float64 -}}
{{- if gt $to $iv }}
observability.monitor.scrapeTimeout: {{ .Values.monitor.scrapeTimeout }} is longer than monitor.interval {{ .Values.monitor.interval }}; Prometheus refuses such a scrape config and the engines are never scraped
{{- end }}
{{- end }}
{{- $names := list -}}
{{- range $i, $b := .Values.rules.slo.burnRates }}
{{- if has $b.name $names }}
observability.rules.slo.burnRates[{{ $i }}].name: {{ $b.name | quote }} is used twice (alert names would collide)
{{- end }}
{{- $names = append $names $b.name -}}
{{- end }}
{{- end -}}

{{/*
Usage: {{ include "observability.seconds" "1m30s" | float64 }}
A Prometheus duration (ms, s, m, h, d, w, y parts) in seconds.
*/}}
{{- define "observability.seconds" -}}
{{- $unit := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 "d" 86400.0 "w" 604800.0 "y" 31536000.0 -}}
{{- $total := 0.0 -}}
{{- range (regexFindAll "[0-9]+(ms|s|m|h|d|w|y)" (toString .) -1) -}}
{{- $n := regexFind "^[0-9]+" . -}}
{{- $total = addf $total (mulf (float64 $n) (get $unit (trimPrefix $n .))) -}}
{{- end -}}
{{- $total -}}
{{- end -}}
