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
{{- $p = print $p (include "llmops-stack.validateWiring" .) -}}
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
Usage: {{ include "llmops-stack.validateWiring" . }}
What one subchart assumes of another, and environment rules over every
subchart: one "values.path: problem" line each, naming both sides.
*/}}
{{- define "llmops-stack.validateWiring" -}}
{{- $v := .Values -}}
{{- $g := $v.global -}}
{{- $prod := eq (toString $g.environment) "production" -}}
{{- $as := $v.autoscaling | default dict -}}
{{- $asOn := eq (toString $as.enabled) "true" -}}
{{- $obs := $v.observability | default dict -}}
{{- $obsOn := ternary (eq (toString $obs.enabled) "true") (eq (toString ($g.monitoring | default dict).enabled) "true") (hasKey $obs "enabled") -}}
{{- $ing := $v.ingress | default dict -}}
{{- $gpu := $v.gpu | default dict -}}
{{- $vl := $v.vllm | default dict -}}
{{- if $vl.enabled -}}
{{- $ctx := dict "Values" $vl "Release" .Release "Chart" (dict "Name" "vllm") -}}
{{- $hard := include "vllm.hardSpread" $ctx -}}
{{- range $m := (include "vllm.models" $ctx | fromYaml).models -}}
{{- if and $asOn (kindIs "map" $as.models) (hasKey $as.models (toString $m.name)) -}}
{{- $a := include "autoscaling.model" (dict "context" (dict "Values" $as) "name" (toString $m.name)) | fromYaml -}}
{{- $max := int $a.maxReplicas -}}
{{- $maxPath := ternary (printf "autoscaling.models.%s.maxReplicas" $m.name) "autoscaling.defaults.maxReplicas" (hasKey (get $as.models (toString $m.name) | default dict) "maxReplicas") -}}
{{- if and (eq $vl.modelCache.type "pvc") (eq $vl.modelCache.accessMode "ReadWriteOnce") (gt $max 1) }}
vllm.modelCache.accessMode: ReadWriteOnce, but {{ $maxPath }} lets the autoscaler run {{ $max }} replicas of vllm.models[{{ $m.index }}] on one claim; replicas on other nodes hang on Multi-Attach. Use ReadWriteMany (a RWX StorageClass), an emptyDir cache, or maxReplicas 1
{{- end }}
{{- if and $prod (gt $max 1) (not $hard) }}
vllm.topologySpreadConstraints: production lets {{ $maxPath }} run {{ $max }} replicas of vllm.models[{{ $m.index }}], but nothing keeps them off one node; add a kubernetes.io/hostname spread with whenUnsatisfiable DoNotSchedule (or a required podAntiAffinity): ScheduleAnyway is only a preference
{{- end }}
{{- end -}}
{{- end -}}
{{- /* The PriorityClass the gpu chart creates is only worth creating if the engines use it. */ -}}
{{- if and $gpu.enabled (($gpu.priorityClass | default dict).create) -}}
{{- $pc := default (printf "%s-inference" $.Release.Name) $gpu.priorityClass.name | trunc 63 | trimSuffix "-" -}}
{{- if ne (toString $vl.priorityClassName) $pc }}
vllm.priorityClassName: {{ $vl.priorityClassName | default "" | quote }}, but gpu.priorityClass.create renders PriorityClass {{ $pc | quote }} for the inference pods; set vllm.priorityClassName to {{ $pc | quote }} (or gpu.priorityClass.create false), or the GPU pods run at priority 0 and are preempted first
{{- end }}
{{- end -}}
{{- /* the public entry sends every request to the router Service by port number */ -}}
{{- $rt := $v.router | default dict -}}
{{- $be := $ing.backend | default dict -}}
{{- if and $ing.enabled $rt.enabled (ne (toString $be.kind) "InferencePool") (not $be.serviceName) (ne (int $be.port) (int (($rt.service | default dict).port))) }}
ingress.backend.port: {{ $be.port }}, but router.service.port is {{ ($rt.service | default dict).port }}; the public route would send traffic to a port the router Service does not have
{{- end }}
{{- /* the router dials the engine pods on their container port */ -}}
{{- $rd := $rt.discovery | default dict -}}
{{- if and $rt.enabled (hasKey $rd "port") (ne (int $rd.port) (int $vl.service.port)) }}
router.discovery.port: {{ $rd.port }}, but the engines listen on vllm.service.port {{ $vl.service.port }}; the router would dial a port nothing listens on
{{- end }}
{{- /* the engine container port is named "http" and serves /metrics */ -}}
{{- if $obsOn -}}
{{- $mon := $obs.monitor | default dict -}}
{{- if and (ne (toString $mon.enabled) "false") (ne (toString (default "http" $mon.port)) "http") }}
observability.monitor.port: {{ $mon.port | quote }}, but the engine pods and Services of vllm name their only port "http" (vllm.service.port {{ $vl.service.port }}); nothing would be scraped
{{- end }}
{{- end -}}
{{- $np := $v.networkPolicies | default dict -}}
{{- if hasKey $np "enginePort" -}}
{{- $ep := toString $np.enginePort -}}
{{- if and (ne $ep "http") (ne $ep (toString (int $vl.service.port))) }}
networkPolicies.enginePort: {{ $ep | quote }} is neither the engine port name "http" nor vllm.service.port {{ $vl.service.port }}; the policies would open a port nothing listens on
{{- end }}
{{- end -}}
{{- end -}}
{{- /* autoscaling reads the series the observability monitor writes */ -}}
{{- if and $asOn $vl.enabled -}}
{{- $prom := $as.prometheus | default dict -}}
{{- if $obsOn -}}
{{- if ne (toString (($obs.monitor | default dict).enabled)) "false" -}}
{{- if ne (toString (default "llmops_model" $prom.modelLabel)) "llmops_model" }}
autoscaling.prometheus.modelLabel: {{ $prom.modelLabel | quote }}, but the observability monitor writes the model into label "llmops_model"; the triggers would select no series and never scale
{{- end }}
{{- if not (has (toString (ternary $prom.releaseLabel "llmops_release" (hasKey $prom "releaseLabel"))) (list "" "llmops_release")) }}
autoscaling.prometheus.releaseLabel: {{ $prom.releaseLabel | quote }}, but the observability monitor writes the release into label "llmops_release" (or leave it empty)
{{- end }}
{{- end -}}
{{- else }}
autoscaling.enabled: the triggers query vLLM series in Prometheus, but nothing in this release scrapes the engines (global.monitoring.enabled and observability.enabled are off); enable global.monitoring (or observability with monitor.enabled), or the autoscaler only ever sees its fallback
{{- end -}}
{{- if and $prod (eq (toString $prom.unsafeSsl) "true") }}
autoscaling.prometheus.unsafeSsl: true in production skips TLS verification of the metrics the autoscaler acts on; give it the CA (auth.caKey) instead
{{- end }}
{{- end -}}
{{- /* GPU alerts read DCGM series with the pod labels only our DCGM ServiceMonitor keeps (honorLabels) */ -}}
{{- if $obsOn -}}
{{- $rules := $obs.rules | default dict -}}
{{- if ne (toString $rules.enabled) "false" -}}
{{- $dcgm := and $gpu.enabled (ne (toString (($gpu.dcgmServiceMonitor | default dict).enabled)) "false") -}}
{{- range $k := list "gpuXid" "gpuEcc" -}}
{{- if and (ne (toString ((get $rules $k) | default dict).enabled) "false") (not $dcgm) }}
observability.rules.{{ $k }}.enabled: alerts on DCGM series of this release's pods, but gpu.enabled / gpu.dcgmServiceMonitor.enabled is off, so nothing scrapes them with pod labels and the alert can never fire; enable gpu (with dcgmServiceMonitor) or set observability.rules.{{ $k }}.enabled false
{{- end }}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* Public endpoint: environment rules */ -}}
{{- if $ing.enabled -}}
{{- $tls := $ing.tls | default dict -}}
{{- $cm := $tls.certManager | default dict -}}
{{- $acme := and (ne (toString $tls.enabled) "false") (ne (toString $tls.source) "existingSecret") (eq (toString $cm.issuer) "acme") -}}
{{- if and $prod (eq (toString $tls.enabled) "false") }}
ingress.tls.enabled: false in production publishes the API (and its API keys) over plain HTTP
{{- end }}
{{- if and $prod (ne (toString $tls.enabled) "false") (ne (toString $tls.source) "existingSecret") (eq (toString (default "selfSigned" $cm.issuer)) "selfSigned") }}
ingress.tls.certManager.issuer: selfSigned in production gives clients a certificate nothing trusts; use acme, an existing issuer or an existingSecret
{{- end }}
{{- $server := toString (($cm.acme | default dict).server) -}}
{{- if and $prod $acme (contains "staging" $server) }}
ingress.tls.certManager.acme.server: {{ $server }} is a staging ACME directory; its certificates are untrusted, use the production directory in production
{{- end }}
{{- if and $g.airGapped $acme }}
ingress.tls.certManager.issuer: acme needs the cluster to reach {{ default "the ACME server" $server }}, but global.airGapped is true; use an existing (internal CA) issuer or tls.source existingSecret
{{- end }}
{{- end -}}
{{- if and $prod $vl.enabled (eq (toString $vl.engine) "simulator") -}}
{{- /* reported by the vllm chart */ -}}
{{- end -}}
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
{{- $a := .Values.autoscaling | default dict -}}
{{- if and $a.enabled $v.enabled -}}
{{- $held := include "autoscaling.heldModels" (dict "Values" $a "Release" .Release) | fromYamlArray -}}
{{- range $name := $held -}}
{{- if not (and $r.enabled (eq (toString ($r.mode | default "router")) "router") ($r.holdWorkers | default dict).enabled) }}
autoscaling.models.{{ $name }}.scaleToZero.holder: httpAddOn holds the model's requests behind the router, which needs router.enabled, router.mode router and router.holdWorkers.enabled; set them, or use holder none with an activationQuery
{{- end -}}
{{- end -}}
{{- $np := .Values.networkPolicies | default dict -}}
{{- $npOn := kindIs "invalid" $np.enabled | ternary .Values.global.networkPolicy.enabled $np.enabled -}}
{{- if and $held $npOn (not ($np.httpAddOn | default dict).enabled) }}
networkPolicies.httpAddOn.enabled: must be true while a model scales to zero behind the KEDA HTTP add-on ({{ join ", " $held }}), or the policies drop the router -> interceptor -> engine path
{{- end -}}
{{- end -}}
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
{{- /* vllm-router 0.1.17 registers a discovered pod under the first model of its
  /v1/models only; a request naming an adapter matches no registered model and
  goes to any pod of any model, which answers 404 unless it is the base model's */ -}}
{{- $models := $v.models | default list -}}
{{- if and (ne (toString ($r.mode | default "router")) "inferencePool") (gt (len $models) 1) -}}
{{- range $i, $m := $models -}}
{{- $adapters := hasKey $m "loraAdapters" | ternary $m.loraAdapters (($v.modelDefaults | default dict).loraAdapters) -}}
{{- if $adapters }}
vllm.models[{{ $i }}].loraAdapters: the router (vllm-router 0.1.17) learns one model per engine pod (the first of its /v1/models), so with {{ len $models }} models a request naming an adapter of {{ $m.name }} can reach another model's pods and get 404; serve adapters in a release with one base model (the router then sends them to its pods), or set router.enabled: false
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
