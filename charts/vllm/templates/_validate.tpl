{{/*
Usage: {{ include "vllm.validateValues" . }}
Cross-field rules the schema cannot express. Every problem is collected
with its values path and rendering fails once, listing all of them.
*/}}
{{- define "vllm.validateValues" -}}
{{- $v := .Values -}}
{{- $p := "" -}}
{{- $p = print $p (include "common.validate.oneOf" (dict "path" "vllm.engine" "value" $v.engine "allowed" (list "vllm" "simulator"))) -}}
{{- if not $v.models }}
{{- $p = print $p "\nvllm.models: at least one model is required" -}}
{{- end }}
{{- $p = print $p (include "common.validate.uniqueNames" (dict "path" "vllm.models" "items" $v.models)) -}}
{{- $models := (include "vllm.models" . | fromYaml).models -}}
{{- $served := dict -}}
{{- range $m := $models -}}
{{- $path := printf "vllm.models[%d]" (int $m.index) -}}
{{- $p = print $p (include "common.validate.dnsLabel" (dict "path" (printf "%s.name" $path) "value" $m.name)) -}}
{{- if gt (len (printf "%s-%s" $.Release.Name (toString $m.name))) 63 }}
{{- $p = print $p (printf "\n%s.name: object name %s-%s is longer than 63 characters; shorten the model name or the release name" $path $.Release.Name (toString $m.name)) -}}
{{- end }}
{{- if hasKey $served (toString $m.servedModelName) }}
{{- $p = print $p (printf "\n%s.servedModelName: %q is already served by vllm.models[%v]" $path (toString $m.servedModelName) (get $served (toString $m.servedModelName))) -}}
{{- else }}{{- $_ := set $served (toString $m.servedModelName) $m.index -}}{{- end }}
{{- if eq $m.sourceScheme "unknown" }}
{{- $p = print $p (printf "\n%s.source: %q must start with hf://, s3:// or pvc://" $path (toString $m.source)) -}}
{{- end }}
{{- if and (eq $m.sourceScheme "hf") (not $m.hfRepo) }}
{{- $p = print $p (printf "\n%s.source: hf:// needs org/model, e.g. hf://org/model@revision" $path) -}}
{{- end }}
{{- if and (eq $m.sourceScheme "pvc") (or (not $m.pvcClaim) (not $m.pvcPath)) }}
{{- $p = print $p (printf "\n%s.source: pvc:// needs a claim and a path, e.g. pvc://models/llama-3-8b" $path) -}}
{{- end }}
{{- if and $v.global.airGapped (has $m.sourceScheme (list "hf" "s3")) }}
{{- $p = print $p (printf "\n%s.source: global.airGapped is true but %q needs egress; pre-cache the model on a volume and use pvc://claim/path" $path (toString $m.source)) -}}
{{- end }}
{{- if and (eq $v.global.environment "production") (eq $m.sourceScheme "hf") (or (not $m.hfRevision) (eq $m.hfRevision "main")) }}
{{- $p = print $p (printf "\n%s.source: production models must pin a revision (hf://%s@<commit sha>), not %q" $path (toString $m.hfRepo) (default "main" $m.hfRevision)) -}}
{{- end }}
{{- $gpus := int $m.gpu.count -}}
{{- $tp := int $m.tensorParallelSize -}}
{{- if and (eq $v.engine "vllm") (gt $tp 1) (gt $tp $gpus) }}
{{- $p = print $p (printf "\n%s.tensorParallelSize: %d is larger than %s.gpu.count %d; each tensor-parallel rank needs its own GPU" $path $tp $path $gpus) -}}
{{- end }}
{{- if and $m.gpu.product (eq $gpus 0) }}
{{- $p = print $p (printf "\n%s.gpu.product: %q is set but gpu.count is 0; request GPUs or drop the product" $path (toString $m.gpu.product)) -}}
{{- end }}
{{- /* vLLM's scheduler config refuses these at startup (vllm/config/scheduler.py verify_max_model_len) */ -}}
{{- $mbt := $m.maxNumBatchedTokens -}}
{{- if not (kindIs "invalid" $mbt) }}
{{- if and (not (kindIs "invalid" $m.maxNumSeqs)) (lt (int $mbt) (int $m.maxNumSeqs)) }}
{{- $p = print $p (printf "\n%s.maxNumBatchedTokens: %d is smaller than %s.maxNumSeqs %d; vLLM refuses to start (every running sequence needs a token per step)" $path (int $mbt) $path (int $m.maxNumSeqs)) -}}
{{- end }}
{{- if and (eq (toString $m.enableChunkedPrefill) "false") (not (kindIs "invalid" $m.maxModelLen)) (lt (int $mbt) (int $m.maxModelLen)) }}
{{- $p = print $p (printf "\n%s.maxNumBatchedTokens: %d is smaller than %s.maxModelLen %d with enableChunkedPrefill false; vLLM refuses to start: raise it, lower maxModelLen or leave chunked prefill on" $path (int $mbt) $path (int $m.maxModelLen)) -}}
{{- end }}
{{- end }}
{{- if and (eq $v.modelCache.type "pvc") (eq $v.modelCache.accessMode "ReadWriteOnce") (gt (int $m.replicas) 1) }}
{{- $p = print $p (printf "\n%s.replicas: %d replicas share one ReadWriteOnce cache claim, which pins them to one node; set vllm.modelCache.accessMode ReadWriteMany or use emptyDir" $path (int $m.replicas)) -}}
{{- end }}
{{- $lnames := dict -}}
{{- range $j, $a := $m.loraAdapters -}}
{{- $lpath := printf "%s.loraAdapters[%d]" $path $j -}}
{{- $p = print $p (include "common.validate.dnsLabel" (dict "path" (printf "%s.name" $lpath) "value" $a.name)) -}}
{{- if hasKey $lnames (toString $a.name) }}
{{- $p = print $p (printf "\n%s.name: %q is used twice" $lpath (toString $a.name)) -}}
{{- end }}{{- $_ := set $lnames (toString $a.name) true -}}
{{- if eq $a.scheme "unknown" }}
{{- $p = print $p (printf "\n%s.source: %q must start with hf:// or pvc://" $lpath (toString $a.source)) -}}
{{- end }}
{{- if and (eq $a.scheme "hf") (or $v.global.airGapped $v.modelCache.offline) (eq $v.engine "vllm") }}
{{- $p = print $p (printf "\n%s.source: hf:// adapters need a download, but the cache is offline or air-gapped; use pvc://" $lpath) -}}
{{- end }}
{{- end -}}
{{- end -}}
{{- $s := $v.shutdown -}}
{{- $needed := add (int $s.preStopSleepSeconds) (int $s.drainSeconds) -}}
{{- if le (int $s.terminationGracePeriodSeconds) $needed }}
{{- $p = print $p (printf "\nvllm.shutdown.terminationGracePeriodSeconds: %d must be larger than preStopSleepSeconds + drainSeconds = %d, or the kubelet kills requests still draining" (int $s.terminationGracePeriodSeconds) $needed) -}}
{{- end }}
{{- if and (eq $v.rollout.type "RollingUpdate") (not (kindIs "invalid" $v.rollout.maxSurge)) (not (kindIs "invalid" $v.rollout.maxUnavailable)) (eq (toString $v.rollout.maxSurge) "0") (eq (toString $v.rollout.maxUnavailable) "0") }}
{{- $p = print $p "\nvllm.rollout: maxSurge and maxUnavailable cannot both be 0; a rollout could never progress" -}}
{{- end }}
{{- if eq $v.global.environment "production" }}
{{- $engineImage := (eq $v.engine "vllm") | ternary $v.image $v.simulator.image -}}
{{- $imgs := dict (ternary "vllm.image" "vllm.simulator.image" (eq $v.engine "vllm")) $engineImage -}}
{{- if $v.tests.enabled }}{{- $_ := set $imgs "vllm.tests.image" $v.tests.image -}}{{- end }}
{{- range $path, $img := $imgs }}
{{- if not $img.digest }}
{{- $p = print $p (printf "\n%s.digest: production pins images by digest (sha256:...), so a re-pushed tag cannot change what runs" $path) -}}
{{- end }}
{{- end }}
{{- end }}
{{- if and $v.apiKey.enabled (not $v.apiKey.secretName) }}
{{- $p = print $p "\nvllm.apiKey.secretName: required when apiKey.enabled is true (the key is only read from an existing Secret)" -}}
{{- end }}
{{- if and (eq $v.modelCache.type "existingClaim") (not $v.modelCache.existingClaim) }}
{{- $p = print $p "\nvllm.modelCache.existingClaim: required when modelCache.type is existingClaim" -}}
{{- end }}
{{- $podSc := include "common.security.podSecurityContext" (dict "override" $v.podSecurityContext) | fromYaml -}}
{{- $cSc := include "common.security.containerSecurityContext" (dict "override" $v.containerSecurityContext) | fromYaml -}}
{{- $p = print $p (include "common.security.restrictedViolations" (dict "path" "vllm.containerSecurityContext" "pod" $podSc "container" $cSc)) -}}
{{- if lt (int (default 10001 $podSc.runAsUser)) 10000 }}
{{- $p = print $p (printf "\nvllm.podSecurityContext.runAsUser: %v must be >= 10000 so it never matches a host user" $podSc.runAsUser) -}}
{{- end }}
{{- include "common.validate.fail" (dict "chart" "vllm" "messages" $p) -}}
{{- end -}}
