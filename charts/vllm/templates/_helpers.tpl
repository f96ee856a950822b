{{/*
vllm chart helpers. Every template works from "vllm.models": the model
entries merged over modelDefaults, with the parsed source, so each rule
(args, volumes, GPU scheduling, validation) reads one resolved shape.
*/}}

{{/*
Usage: {{ $models := (include "vllm.models" . | fromYaml).models }}
Resolved models: modelDefaults + entry, plus servedModelName, engineName,
sourceScheme (hf|s3|pvc|unknown), hfRepo, hfRevision, s3Uri, pvcClaim,
pvcPath, modelPath (where the engine reads weights), download (bool).
*/}}
{{- define "vllm.models" -}}
{{- $ctx := . -}}
{{- $out := list -}}
{{- $offline := or .Values.modelCache.offline .Values.global.airGapped -}}
{{- range $i, $entry := .Values.models -}}
{{- /* own merge: sprig's mergeOverwrite ignores false/0/"" in the entry */ -}}
{{- $m := deepCopy $ctx.Values.modelDefaults -}}
{{- range $k, $val := (deepCopy $entry) -}}
{{- if and (kindIs "map" $val) (kindIs "map" (get $m $k)) -}}
{{- range $k2, $v2 := $val -}}{{- $_ := set (get $m $k) $k2 $v2 -}}{{- end -}}
{{- else -}}
{{- $_ := set $m $k $val -}}
{{- end -}}
{{- end -}}
{{- $_ := set $m "index" $i -}}
{{- $_ := set $m "servedModelName" (default $m.name $m.servedModelName) -}}
{{- $_ := set $m "engineName" (include "common.names.engine" (dict "context" $ctx "model" (toString $m.name))) -}}
{{- $src := toString $m.source -}}
{{- $_ := set $m "modelPath" (printf "/cache/models/%s" $m.name) -}}
{{- if hasPrefix "hf://" $src -}}
{{- $ref := trimPrefix "hf://" $src -}}
{{- $parts := splitn "@" 2 $ref -}}
{{- $_ := set $m "sourceScheme" "hf" -}}
{{- $_ := set $m "hfRepo" $parts._0 -}}
{{- $_ := set $m "hfRevision" (default "" $parts._1) -}}
{{- else if hasPrefix "s3://" $src -}}
{{- $_ := set $m "sourceScheme" "s3" -}}
{{- $_ := set $m "s3Uri" $src -}}
{{- else if hasPrefix "pvc://" $src -}}
{{- $ref := trimPrefix "pvc://" $src -}}
{{- $parts := splitn "/" 2 $ref -}}
{{- $_ := set $m "sourceScheme" "pvc" -}}
{{- $_ := set $m "pvcClaim" $parts._0 -}}
{{- $_ := set $m "pvcPath" (default "" $parts._1) -}}
{{- $_ := set $m "modelPath" (printf "/models/%s" $m.name) -}}
{{- else -}}
{{- $_ := set $m "sourceScheme" "unknown" -}}
{{- end -}}
{{- $_ := set $m "download" (and (eq $ctx.Values.engine "vllm") (has $m.sourceScheme (list "hf" "s3")) (not $offline)) -}}
{{- $loras := list -}}
{{- range $j, $a := ($m.loraAdapters | default list) -}}
{{- $l := deepCopy $a -}}
{{- $asrc := toString $a.source -}}
{{- if hasPrefix "pvc://" $asrc -}}
{{- $parts := splitn "/" 2 (trimPrefix "pvc://" $asrc) -}}
{{- $_ := set $l "scheme" "pvc" -}}
{{- $_ := set $l "pvcClaim" $parts._0 -}}
{{- $_ := set $l "pvcPath" (default "" $parts._1) -}}
{{- $_ := set $l "path" (printf "/models/%s-lora-%s" $m.name $a.name) -}}
{{- else if hasPrefix "hf://" $asrc -}}
{{- $parts := splitn "@" 2 (trimPrefix "hf://" $asrc) -}}
{{- $_ := set $l "scheme" "hf" -}}
{{- $_ := set $l "hfRepo" $parts._0 -}}
{{- $_ := set $l "hfRevision" (default "" $parts._1) -}}
{{- $_ := set $l "path" (printf "/cache/lora/%s/%s" $m.name $a.name) -}}
{{- else -}}
{{- $_ := set $l "scheme" "unknown" -}}
{{- $_ := set $l "path" "" -}}
{{- end -}}
{{- $loras = append $loras $l -}}
{{- end -}}
{{- $_ := set $m "loraAdapters" $loras -}}
{{- $out = append $out $m -}}
{{- end -}}
{{- toYaml (dict "models" $out) -}}
{{- end -}}

{{/*
Usage: {{ include "vllm.engine.args" (dict "context" $ "model" $m) }}
The engine container args as a YAML list, for `engine: vllm` (vLLM's own
argument parser) or `engine: simulator` (llm-d-inference-sim's flags).
Every flag is one list item and its value the next item ("--flag", "value"),
so multi-value flags (--lora-modules) read the same way.
*/}}
{{- define "vllm.engine.args" -}}
{{- $ctx := .context -}}
{{- $v := $ctx.Values -}}
{{- $m := .model -}}
{{- $args := list -}}
{{- if eq $v.engine "simulator" -}}
{{- $simModel := default $m.servedModelName $m.hfRepo -}}
{{- $args = concat $args (list "--model" $simModel "--served-model-name" $m.servedModelName "--port" (toString $v.service.port)) -}}
{{- $args = concat $args (list "--mode" $v.simulator.mode "--time-to-first-token" $v.simulator.timeToFirstToken "--inter-token-latency" $v.simulator.interTokenLatency "--startup-duration" $v.simulator.startupDuration) -}}
{{- with $m.maxNumSeqs }}{{- $args = concat $args (list "--max-num-seqs" (toString .)) -}}{{- end -}}
{{- with $m.maxModelLen }}{{- $args = concat $args (list "--max-model-len" (toString .)) -}}{{- end -}}
{{- $args = append $args "--force-dummy-tokenizer" -}}
{{- if $m.loraAdapters -}}
{{- $args = concat $args (list "--max-loras" (toString (len $m.loraAdapters))) -}}
{{- $args = append $args "--lora-modules" -}}
{{- range $m.loraAdapters -}}
{{- /* the simulator matches base_model_name against --model, not the served name (it exits "unknown base model" otherwise) */ -}}
{{- $args = append $args (dict "name" .name "path" .path "base_model_name" $simModel | toJson) -}}
{{- end -}}
{{- end -}}
{{- $args = concat $args ($v.simulator.extraArgs | default list) -}}
{{- else -}}
{{- $args = concat $args (list "--model" $m.modelPath "--served-model-name" $m.servedModelName "--port" (toString $v.service.port)) -}}
{{- $args = concat $args (list "--dtype" (toString $m.dtype) "--load-format" (toString $m.loadFormat) "--kv-cache-dtype" (toString $m.kvCacheDtype)) -}}
{{- $args = concat $args (list "--tensor-parallel-size" (toString (int $m.tensorParallelSize))) -}}
{{- if gt (int $m.gpu.count) 0 -}}
{{- $args = concat $args (list "--gpu-memory-utilization" (toString $m.gpuMemoryUtilization)) -}}
{{- end -}}
{{- with $m.maxModelLen }}{{- $args = concat $args (list "--max-model-len" (toString (int .))) -}}{{- end -}}
{{- with $m.maxNumSeqs }}{{- $args = concat $args (list "--max-num-seqs" (toString (int .))) -}}{{- end -}}
{{- with $m.maxNumBatchedTokens }}{{- $args = concat $args (list "--max-num-batched-tokens" (toString (int .))) -}}{{- end -}}
{{- with $m.quantization }}{{- $args = concat $args (list "--quantization" (toString .)) -}}{{- end -}}
{{- if kindIs "bool" $m.enablePrefixCaching -}}
{{- $args = append $args ($m.enablePrefixCaching | ternary "--enable-prefix-caching" "--no-enable-prefix-caching") -}}
{{- end -}}
{{- if kindIs "bool" $m.enableChunkedPrefill -}}
{{- $args = append $args ($m.enableChunkedPrefill | ternary "--enable-chunked-prefill" "--no-enable-chunked-prefill") -}}
{{- end -}}
{{- $args = concat $args (list "--shutdown-timeout" (toString (int $v.shutdown.drainSeconds))) -}}
{{- with $v.tracing.otlpEndpoint }}{{- $args = concat $args (list "--otlp-traces-endpoint" .) -}}{{- end -}}
{{- if $m.loraAdapters -}}
{{- $args = concat $args (list "--enable-lora" "--max-loras" (toString (len $m.loraAdapters)) "--max-lora-rank" (toString (int $m.maxLoraRank))) -}}
{{- $args = append $args "--lora-modules" -}}
{{- range $m.loraAdapters -}}
{{- $args = append $args (printf "%s=%s" .name .path) -}}
{{- end -}}
{{- end -}}
{{- $args = concat $args ($m.extraArgs | default list) -}}
{{- end -}}
{{- toYaml $args -}}
{{- end -}}

{{/*
Usage: {{ include "vllm.engine.image" . }}
The image reference of the selected engine.
*/}}
{{- define "vllm.engine.image" -}}
{{- if eq .Values.engine "simulator" -}}
{{- include "common.images.image" (dict "image" .Values.simulator.image "global" .Values.global) -}}
{{- else -}}
{{- include "common.images.image" (dict "image" .Values.image "global" .Values.global) -}}
{{- end -}}
{{- end -}}

{{/*
Usage: {{ include "vllm.engine.pullPolicy" . }}
*/}}
{{- define "vllm.engine.pullPolicy" -}}
{{- if eq .Values.engine "simulator" -}}{{ .Values.simulator.image.pullPolicy }}{{- else -}}{{ .Values.image.pullPolicy }}{{- end -}}
{{- end -}}

{{/*
Usage: {{ include "vllm.selectorLabels" (dict "context" $ "model" $m) }}
Selector of one model's engine pods (also used by PDB and Service).
*/}}
{{- define "vllm.selectorLabels" -}}
{{- include "common.labels.selector" (dict "context" .context "component" "engine" "extra" (dict "llmops.io/model" (toString .model.name))) -}}
{{- end -}}

{{/*
Usage: {{ include "vllm.labels" (dict "context" $ "model" $m) }}
Standard labels of one model's objects.
*/}}
{{- define "vllm.labels" -}}
{{- include "common.labels.standard" (dict "context" .context "component" "engine" "extra" (dict "llmops.io/model" (toString .model.name))) -}}
{{- end -}}

{{/*
Usage: {{ include "vllm.rollout" (dict "context" $ "model" $m) }}
The Deployment strategy. With GPUs the default is maxSurge 0 /
maxUnavailable 1: a surge pod would wait forever for a GPU that no node has
spare, and the rollout would stall.
*/}}
{{- define "vllm.rollout" -}}
{{- $r := .context.Values.rollout -}}
{{- if eq $r.type "Recreate" -}}
type: Recreate
{{- else -}}
{{- $gpu := gt (int .model.gpu.count) 0 -}}
{{- $surge := kindIs "invalid" $r.maxSurge | ternary ($gpu | ternary 0 1) $r.maxSurge -}}
{{- $unavail := kindIs "invalid" $r.maxUnavailable | ternary ($gpu | ternary 1 0) $r.maxUnavailable -}}
type: RollingUpdate
rollingUpdate:
  maxSurge: {{ $surge }}
  maxUnavailable: {{ $unavail }}
{{- end -}}
{{- end -}}

{{/*
Usage: {{ include "vllm.cacheClaimName" (dict "context" $ "model" $m) }}
Name of the cache PVC a model mounts (created or existing); empty for emptyDir.
*/}}
{{- define "vllm.cacheClaimName" -}}
{{- $c := .context.Values.modelCache -}}
{{- if eq $c.type "pvc" -}}
{{- printf "%s-cache" .model.engineName | trunc 63 | trimSuffix "-" -}}
{{- else if eq $c.type "existingClaim" -}}
{{- $c.existingClaim -}}
{{- end -}}
{{- end -}}

{{/*
Usage: {{ include "vllm.scratchBytes" (dict "context" $ "model" $m) | float64 }}
Bytes the engine pod may write to its disk-backed emptyDirs (home, tmp and,
for an emptyDir cache, the model cache): what it must request and be
allowed as ephemeral storage, or the kubelet evicts it first under disk
pressure. /dev/shm is memory, not disk.
*/}}
{{- define "vllm.scratchBytes" -}}
{{- $v := .context.Values -}}
{{- $total := addf (include "common.quantity.float" "1Gi") (include "common.quantity.float" "4Gi") -}}
{{- if not (include "vllm.cacheClaimName" .) -}}
{{- $total = addf $total (include "common.quantity.float" $v.modelCache.size | default "0") -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/*
Usage: {{ $res := include "vllm.withEphemeral" (dict "resources" $res "explicit" $m.resources "bytes" $bytes) | fromYaml }}
Resources with ephemeral-storage request = limit = the emptyDir total
(rounded up to Mi), unless the explicit resources set it themselves.
*/}}
{{- define "vllm.withEphemeral" -}}
{{- $res := deepCopy (.resources | default dict) -}}
{{- $explicit := .explicit | default dict -}}
{{- $q := printf "%dMi" (int64 (ceil (divf .bytes 1048576.0))) -}}
{{- range $kind := list "requests" "limits" -}}
{{- $own := get $explicit $kind | default dict -}}
{{- if not (hasKey $own "ephemeral-storage") -}}
{{- $block := get $res $kind | default dict -}}
{{- $_ := set $block "ephemeral-storage" $q -}}
{{- $_ := set $res $kind $block -}}
{{- end -}}
{{- end -}}
{{- toYaml $res -}}
{{- end -}}

{{/*
Usage: {{ if include "vllm.hardSpread" . }}...{{ end }}
"true" when the engine pods can never share a node: a DoNotSchedule
topology spread over kubernetes.io/hostname, or a required pod
anti-affinity on it. A ScheduleAnyway spread is only a preference.
*/}}
{{- define "vllm.hardSpread" -}}
{{- range (.Values.topologySpreadConstraints | default list) -}}
{{- if and (eq (toString .topologyKey) "kubernetes.io/hostname") (eq (toString .whenUnsatisfiable) "DoNotSchedule") -}}true{{- end -}}
{{- end -}}
{{- $anti := (.Values.affinity | default dict).podAntiAffinity | default dict -}}
{{- range ($anti.requiredDuringSchedulingIgnoredDuringExecution | default list) -}}
{{- if eq (toString .topologyKey) "kubernetes.io/hostname" -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Usage: {{ if include "vllm.globMatches" (dict "patterns" $list "file" "config.json") }}...{{ end }}
"true" when any glob pattern (as `hf download --include` reads it: * and ?
match any characters, "/" included) matches the repository path.
*/}}
{{- define "vllm.globMatches" -}}
{{- $file := .file -}}
{{- range (.patterns | default list) -}}
{{- $re := regexQuoteMeta (toString .) | replace "\\*" ".*" | replace "\\?" "." -}}
{{- if regexMatch (printf "^%s$" $re) $file -}}true{{- end -}}
{{- end -}}
{{- end -}}
