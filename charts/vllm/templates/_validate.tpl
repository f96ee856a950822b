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
{{- $entry := index $v.models (int $m.index) | default dict -}}
{{- $from := dict -}}
{{- range $k := list "resources" -}}
{{- $_ := set $from $k (ternary (printf "%s.%s" $path $k) (printf "vllm.modelDefaults.%s" $k) (and (kindIs "map" $entry) (hasKey $entry $k))) -}}
{{- end -}}
{{- $p = print $p (include "common.resources.compare" (dict "path" (get $from "resources") "resources" $m.resources)) -}}
{{- $scratch := include "vllm.scratchBytes" (dict "context" $ "model" $m) | float64 -}}
{{- $ownLimit := (($m.resources | default dict).limits | default dict) -}}
{{- if hasKey $ownLimit "ephemeral-storage" }}
{{- $l := include "common.quantity.float" (get $ownLimit "ephemeral-storage") -}}
{{- if and $l (lt (float64 $l) $scratch) }}
{{- $p = print $p (printf "\n%s.limits.ephemeral-storage: %v is below the %dMi the pod's disk emptyDirs may hold (home 1Gi, tmp 4Gi, plus an emptyDir model cache of vllm.modelCache.size); the kubelet would evict it as the cache fills" (get $from "resources") (get $ownLimit "ephemeral-storage") (int64 (ceil (divf $scratch 1048576.0)))) -}}
{{- end }}
{{- end }}
{{- if and $m.download (eq $m.sourceScheme "hf") }}
{{- $hf := $v.modelLoader.hf -}}
{{- $weights := get (dict "safetensors" "model-00001-of-00002.safetensors" "auto" "model-00001-of-00002.safetensors" "pt" "pytorch_model-00001-of-00002.bin" "npcache" "pytorch_model-00001-of-00002.bin" "gguf" "model-Q4_K_M.gguf") (toString $m.loadFormat) -}}
{{- range $file := compact (list "config.json" $weights) }}
{{- if and $hf.allowPatterns (not (include "vllm.globMatches" (dict "patterns" $hf.allowPatterns "file" $file))) }}
{{- $p = print $p (printf "\nvllm.modelLoader.hf.allowPatterns: no pattern matches %s, which vLLM needs for %s (loadFormat %s); nothing would load (have: %s)" $file $path (toString $m.loadFormat) (join ", " $hf.allowPatterns)) -}}
{{- end }}
{{- if include "vllm.globMatches" (dict "patterns" $hf.ignorePatterns "file" $file) }}
{{- $p = print $p (printf "\nvllm.modelLoader.hf.ignorePatterns: skips %s, which vLLM needs for %s (loadFormat %s)" $file $path (toString $m.loadFormat)) -}}
{{- end }}
{{- end }}
{{- end }}
{{- if and (eq $v.engine "vllm") (has $m.sourceScheme (list "hf" "s3")) $v.modelCache.offline (not $v.global.airGapped) (eq $v.modelCache.type "emptyDir") }}
{{- $p = print $p (printf "\nvllm.modelCache.offline: true with an emptyDir cache, so nothing ever fills it: %s (%s) would start with no weights; use a pvc/existingClaim cache filled beforehand, a pvc:// source, or offline false" $path (toString $m.source)) -}}
{{- end }}
{{- if and $m.download (eq $v.modelCache.accessMode "ReadOnlyMany") (eq $v.modelCache.type "pvc") }}
{{- $p = print $p (printf "\nvllm.modelCache.accessMode: ReadOnlyMany, but %s downloads into the cache; the loader cannot write a read-only claim (use ReadWriteMany)" $path) -}}
{{- end }}
{{- if and (eq $v.global.environment "production") (not (kindIs "invalid" $m.replicas)) (gt (int $m.replicas) 1) (not (include "vllm.hardSpread" $)) }}
{{- $p = print $p (printf "\nvllm.topologySpreadConstraints: production runs %d replicas of %s but nothing keeps them off one node; add a kubernetes.io/hostname spread with whenUnsatisfiable DoNotSchedule (or a required podAntiAffinity on kubernetes.io/hostname): ScheduleAnyway is only a preference" (int $m.replicas) $path) -}}
{{- end }}
{{- range $j, $a := $m.loraAdapters }}
{{- if and (eq $a.scheme "pvc") (not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" (toString $a.pvcClaim))) }}
{{- $p = print $p (printf "\n%s.loraAdapters[%d].source: %q is not a PersistentVolumeClaim name (lower-case DNS subdomain), e.g. pvc://loras/sql" $path $j (toString $a.pvcClaim)) -}}
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
{{- /* Every image this release can pull, by values path. */ -}}
{{- $all := dict "vllm.image" $v.image "vllm.simulator.image" $v.simulator.image "vllm.tests.image" $v.tests.image "vllm.modelLoader.hf.image" $v.modelLoader.hf.image "vllm.modelLoader.s3.image" $v.modelLoader.s3.image -}}
{{- $used := dict (ternary "vllm.image" "vllm.simulator.image" (eq $v.engine "vllm")) true -}}
{{- if $v.tests.enabled }}{{- $_ := set $used "vllm.tests.image" true -}}{{- end }}
{{- range $m := $models }}
{{- if and $m.download (eq $m.sourceScheme "hf") $v.modelLoader.hf.image.repository }}{{- $_ := set $used "vllm.modelLoader.hf.image" true -}}{{- end }}
{{- if and $m.download (eq $m.sourceScheme "s3") }}{{- $_ := set $used "vllm.modelLoader.s3.image" true -}}{{- end }}
{{- range $m.loraAdapters }}{{- if and $m.download (eq .scheme "hf") $v.modelLoader.hf.image.repository }}{{- $_ := set $used "vllm.modelLoader.hf.image" true -}}{{- end }}{{- end }}
{{- end }}
{{- $placeholders := list -}}
{{- range $ipath, $img := $all }}
{{- if include "common.images.placeholderDigest" $img.digest }}
{{- $placeholders = append $placeholders (printf "%s.digest (%s/%s:%s)" $ipath (default "docker.io" (default $img.registry $v.global.imageRegistry)) $img.repository (toString $img.tag)) -}}
{{- end }}
{{- end }}
{{- if $placeholders }}
{{- $p = print $p (printf "\n%s: placeholder digests name no image, so these values claim a pin that cannot be pulled: %s. Replace each with the digest of the image you reviewed and mirrored: `crane digest IMAGE:TAG`, `skopeo inspect --format '{{.Digest}}' docker://IMAGE:TAG`, or the registry UI" (regexFind "^[^ ]+" (first $placeholders)) (join "; " $placeholders)) -}}
{{- end }}
{{- if eq $v.global.environment "production" }}
{{- range $ipath, $_ := $used }}
{{- if not (get $all $ipath).digest }}
{{- $p = print $p (printf "\n%s.digest: production pins every image by digest (sha256:...), so a re-pushed tag cannot change what runs" $ipath) -}}
{{- end }}
{{- end }}
{{- if eq $v.engine "simulator" }}
{{- $p = print $p "\nvllm.engine: simulator in production serves random text, not the model; use vllm" -}}
{{- end }}
{{- end }}
{{- if and $v.global.airGapped (not $v.global.imageRegistry) }}
{{- $public := list "" "docker.io" "index.docker.io" "ghcr.io" "quay.io" "public.ecr.aws" "registry.k8s.io" "nvcr.io" "gcr.io" -}}
{{- range $ipath, $_ := $used }}
{{- $reg := toString (get $all $ipath).registry -}}
{{- if has $reg $public }}
{{- $p = print $p (printf "\nglobal.imageRegistry: global.airGapped is true but %s pulls from %s, which an air-gapped cluster cannot reach; set global.imageRegistry to your mirror (or %s.registry)" $ipath (default "docker.io" $reg) $ipath) -}}
{{- end }}
{{- end }}
{{- end }}
{{- if and $v.apiKey.enabled (eq $v.engine "simulator") }}
{{- $p = print $p "\nvllm.apiKey.enabled: the simulator does not check API keys, so every request would be served without one; use engine vllm, or leave apiKey off locally" -}}
{{- end }}
{{- $p = print $p (include "common.resources.compare" (dict "path" "vllm.modelLoader.resources" "resources" $v.modelLoader.resources)) -}}
{{- $budget := mul (int $v.probes.startup.periodSeconds) (int $v.probes.startup.failureThreshold) -}}
{{- if and (eq $v.engine "vllm") (lt $budget 300) }}
{{- $p = print $p (printf "\nvllm.probes.startup.failureThreshold: periodSeconds x failureThreshold = %ds, but vLLM needs minutes to load weights, profile memory and capture CUDA graphs; give it at least 300s or the kubelet restarts it mid-load forever" $budget) -}}
{{- end }}
{{- if and (eq $v.modelCache.type "pvc") (eq $v.modelCache.accessMode "ReadWriteOnce") (eq $v.rollout.type "RollingUpdate") }}
{{- $anyGpu := false -}}{{- range $models }}{{- if gt (int .gpu.count) 0 }}{{- $anyGpu = true -}}{{- end }}{{- end }}
{{- $surge := kindIs "invalid" $v.rollout.maxSurge | ternary ($anyGpu | ternary 0 1) $v.rollout.maxSurge -}}
{{- if not (has (toString $surge) (list "0" "0%")) }}
{{- $p = print $p (printf "\nvllm.rollout.maxSurge: %v with a ReadWriteOnce cache claim: the surge pod can land on another node and hang on Multi-Attach while the old pod holds the claim, so the rollout never finishes; set maxSurge 0 (maxUnavailable >= 1), rollout.type Recreate, or accessMode ReadWriteMany" $surge) -}}
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
