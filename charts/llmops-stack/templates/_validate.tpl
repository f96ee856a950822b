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
{{- if and $ing.enabled (ne (toString $ing.mode) "ingress") (ne (toString $ing.mode) "gateway") -}}
{{- else if and $ing.enabled (not (.Values.router | default dict).enabled) (not ($ing.backend | default dict).serviceName) -}}
{{- $p = print $p "\ningress.enabled: the public entry sends every request to the router; enable router (router.enabled) or name another Service in ingress.backend.serviceName" -}}
{{- end -}}
{{- $pool := eq (toString (.Values.router | default dict).mode) "inferencePool" -}}
{{- if and $ing.enabled (.Values.router | default dict).enabled (ne $pool (eq (toString ($ing.backend | default dict).kind) "InferencePool")) -}}
{{- $p = print $p (printf "\ningress.backend.kind: %q, but router.mode is %q; the entry must target %s" (toString (($ing.backend | default dict).kind | default "Service")) (toString .Values.router.mode) ($pool | ternary "the InferencePool (backend.kind: InferencePool)" "the router Service (backend.kind: Service)")) -}}
{{- end -}}
{{- if and $ing.enabled (eq (toString .Values.global.environment) "production") (ne (toString ($ing.clientAuth | default "none")) "gateway") -}}
{{- $p = print $p "\ningress.clientAuth: production exposes the router publicly, and the router forwards API keys without checking them; configure key checks on your Gateway/Ingress implementation and set clientAuth: gateway" -}}
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
{{- $p = print $p (include "llmops-stack.validateRouter" .) -}}
{{- include "common.validate.oneOf" (dict "path" "global.environment" "value" .Values.global.environment "allowed" (list "local" "staging" "production")) | print $p | include "llmops-stack.failIfAny" -}}
{{- end -}}

{{/*
Usage: {{ include "llmops-stack.failIfAny" $messages }}
*/}}
{{- define "llmops-stack.failIfAny" -}}
{{- include "common.validate.fail" (dict "chart" "llmops-stack" "messages" .) -}}
{{- end -}}

{{/*
Usage: {{ include "llmops-stack.validateRouter" . }}
Rules between the router and the engines it fronts: its discovery selector
must match engine pods of this release, kv_aware needs engines that publish
KV-cache events, and engines with an API key cannot be discovered.
*/}}
{{- define "llmops-stack.validateRouter" -}}
{{- $r := .Values.router | default dict -}}
{{- $v := .Values.vllm | default dict -}}
{{- if and $r.enabled $v.enabled -}}
{{- $selector := ($r.discovery | default dict).selector | default dict -}}
{{- if not $selector -}}
{{- $selector = dict "app.kubernetes.io/name" "vllm" "app.kubernetes.io/instance" .Release.Name "app.kubernetes.io/component" "engine" -}}
{{- end -}}
{{- $matched := list -}}
{{- $carried := list -}}
{{- range $m := ($v.models | default list) -}}
{{- $labels := dict
  "app.kubernetes.io/name" (default "vllm" $v.nameOverride)
  "app.kubernetes.io/instance" $.Release.Name
  "app.kubernetes.io/component" "engine"
  "app.kubernetes.io/part-of" "llmops-stack"
  "app.kubernetes.io/managed-by" $.Release.Service
  "llmops.io/model" (toString $m.name)
-}}
{{- $labels = merge $labels (deepCopy ($v.podLabels | default dict)) -}}
{{- $ok := true -}}
{{- range $k, $want := $selector -}}
{{- if ne (toString (get $labels $k)) (toString $want) -}}{{- $ok = false -}}{{- end -}}
{{- end -}}
{{- if $ok -}}{{- $matched = append $matched (toString $m.name) -}}{{- end -}}
{{- if not $carried -}}
{{- range $k, $val := $labels -}}{{- if ne $k "llmops.io/model" -}}{{- $carried = append $carried (printf "%s=%s" $k (toString $val)) -}}{{- end -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- if and ($v.models) (not $matched) -}}
{{- $want := list -}}
{{- range $k, $val := $selector -}}{{- $want = append $want (printf "%s=%s" $k (toString $val)) -}}{{- end }}
router.discovery.selector: {{ join "," $want }} matches no engine pod of this release, so the router would never find a replica (engine pods carry {{ join "," (sortAlpha $carried) }} and llmops.io/model=<model name>)
{{- end -}}
{{- if eq (toString $r.policy) "kv_aware" -}}
{{- if ne (toString $v.engine) "vllm" }}
router.policy: kv_aware routes on KV-cache events that only vLLM engines publish (vllm.engine is {{ $v.engine | quote }}); use cache_aware
{{- else -}}
{{- range $i, $m := ($v.models | default list) -}}
{{- $args := concat (($v.modelDefaults | default dict).extraArgs | default list) ($m.extraArgs | default list) -}}
{{- $has := false -}}
{{- range $args -}}{{- if hasPrefix "--kv-events-config" (toString .) -}}{{- $has = true -}}{{- end -}}{{- end -}}
{{- if not $has }}
router.policy: kv_aware needs every engine to publish KV-cache events; vllm.models[{{ $i }}] ({{ $m.name }}) has no --kv-events-config in extraArgs
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $np := .Values.networkPolicies | default dict -}}
{{- $npOn := kindIs "invalid" $np.enabled | ternary .Values.global.networkPolicy.enabled $np.enabled -}}
{{- $npr := $np.router | default dict -}}
{{- $nprOn := hasKey $npr "enabled" | ternary $npr.enabled true -}}
{{- if and $npOn (ne (toString $nprOn) (toString (eq (toString $r.enabled) "true"))) }}
networkPolicies.router.enabled: must follow router.enabled ({{ $r.enabled }}), or the engines and the router get the wrong network policies
{{- end -}}
{{- if and $r.enabled $v.enabled -}}
{{- if ($v.apiKey | default dict).enabled }}
vllm.apiKey.enabled: the router discovers each engine's model through GET /v1/models without a key, so engines with an API key cannot join it; check keys at the gateway instead, or set router.enabled: false
{{- end -}}
{{- end -}}
{{- end -}}
