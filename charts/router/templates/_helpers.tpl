{{/*
router chart helpers.
*/}}

{{/*
Usage: {{ include "router.selectorLabels" . }}
Selector of the router pods.
*/}}
{{- define "router.selectorLabels" -}}
{{- include "common.labels.selector" (dict "context" . "component" "router") -}}
{{- end -}}

{{/*
Usage: {{ include "router.labels" . }}
Standard labels of the router's objects.
*/}}
{{- define "router.labels" -}}
{{- include "common.labels.standard" (dict "context" . "component" "router") -}}
{{- end -}}

{{/*
Usage: {{ $sel := include "router.discoverySelector" . | fromYaml }}
Pod labels of the engines the router discovers: discovery.selector, or the
release's engine pods as the vllm chart labels them.
*/}}
{{- define "router.discoverySelector" -}}
{{- if .Values.discovery.selector -}}
{{- toYaml .Values.discovery.selector -}}
{{- else -}}
{{- toYaml (dict "app.kubernetes.io/name" "vllm" "app.kubernetes.io/instance" .Release.Name "app.kubernetes.io/component" "engine") -}}
{{- end -}}
{{- end -}}

{{/*
Usage: {{ include "router.production" . }}
"true" when global.environment is production.
*/}}
{{- define "router.production" -}}
{{- eq (toString ((.Values.global | default dict).environment)) "production" -}}
{{- end -}}

{{/*
Usage: {{ include "router.args" . | fromYamlArray }}
The vllm-router arguments. IGW mode (--enable-igw) is what keys workers by
model id, so requests reach only their model's pods and an unknown model
gets 404; discovery is scoped to the release namespace (a Role suffices).
*/}}
{{- define "router.args" -}}
{{- $v := .Values -}}
{{- $args := list
  "--host" "0.0.0.0"
  "--port" "8000"
  "--enable-igw"
  "--policy" (toString $v.policy)
  "--service-discovery"
  "--service-discovery-namespace" (include "common.names.namespace" .)
  "--service-discovery-port" (toString (int $v.discovery.port))
-}}
{{- $args = append $args "--selector" -}}
{{- range $k, $val := (include "router.discoverySelector" . | fromYaml) -}}
{{- $args = append $args (printf "%s=%s" $k (toString $val)) -}}
{{- end -}}
{{- $args = concat $args (list
  "--prometheus-host" "0.0.0.0"
  "--prometheus-port" (toString (int $v.metrics.port))
  "--request-timeout-secs" (toString (int $v.requestTimeoutSeconds))
  "--max-payload-size" (toString (int64 $v.limits.maxPayloadBytes))
  "--max-concurrent-requests" (toString (int $v.limits.maxConcurrentRequests))
  "--queue-size" (toString (int $v.limits.queueSize))
  "--queue-timeout-secs" (toString (int $v.limits.queueTimeoutSeconds))
  "--retry-max-retries" (toString (int $v.retries.maxRetries))
  "--retry-initial-backoff-ms" (toString (int $v.retries.initialBackoffMs))
  "--retry-max-backoff-ms" (toString (int $v.retries.maxBackoffMs))
  "--retry-backoff-multiplier" (toString $v.retries.backoffMultiplier)
  "--retry-jitter-factor" (toString $v.retries.jitterFactor)
  "--health-check-interval-secs" (toString (int $v.healthCheck.intervalSeconds))
  "--health-check-timeout-secs" (toString (int $v.healthCheck.timeoutSeconds))
  "--health-failure-threshold" (toString (int $v.healthCheck.failureThreshold))
  "--health-success-threshold" (toString (int $v.healthCheck.successThreshold))
  "--health-check-endpoint" (toString $v.healthCheck.endpoint)
  "--log-level" (toString $v.logLevel)
) -}}
{{- if $v.circuitBreaker.enabled -}}
{{- $args = concat $args (list
  "--cb-failure-threshold" (toString (int $v.circuitBreaker.failureThreshold))
  "--cb-success-threshold" (toString (int $v.circuitBreaker.successThreshold))
  "--cb-timeout-duration-secs" (toString (int $v.circuitBreaker.timeoutSeconds))
  "--cb-window-duration-secs" (toString (int $v.circuitBreaker.windowSeconds))
) -}}
{{- else -}}
{{- $args = append $args "--disable-circuit-breaker" -}}
{{- end -}}
{{- if eq (toString $v.policy) "cache_aware" -}}
{{- $args = concat $args (list
  "--cache-threshold" (toString $v.cacheAware.cacheThreshold)
  "--balance-abs-threshold" (toString (int $v.cacheAware.balanceAbsThreshold))
  "--balance-rel-threshold" (toString $v.cacheAware.balanceRelThreshold)
  "--eviction-interval-secs" (toString (int $v.cacheAware.evictionIntervalSeconds))
  "--max-tree-size" (toString (int64 $v.cacheAware.maxTreeSize))
) -}}
{{- end -}}
{{- if not (kindIs "invalid" $v.limits.rateLimitPerSecond) -}}
{{- $args = concat $args (list "--rate-limit-tokens-per-second" (toString (int $v.limits.rateLimitPerSecond))) -}}
{{- end -}}
{{- $args = concat $args ($v.extraArgs | default list) -}}
{{- toYaml $args -}}
{{- end -}}

{{/*
Usage: {{ include "router.validateValues" . }}
Every cross-field rule of the chart; fails once, naming each values path.
*/}}
{{- define "router.validateValues" -}}
{{- $v := .Values -}}
{{- $p := "" -}}
{{- $p = print $p (include "common.validate.oneOf" (dict "path" "router.mode" "value" (toString $v.mode) "allowed" (list "router" "inferencePool"))) -}}
{{- if and (eq (toString $v.mode) "inferencePool") (not $v.inferencePool.endpointPicker.serviceName) -}}
{{- $p = print $p "\nrouter.inferencePool.endpointPicker.serviceName: inferencePool mode needs the Service of the endpoint picker that chooses replicas (the gateway asks it per request)" -}}
{{- end -}}
{{- $p = print $p (include "common.validate.oneOf" (dict "path" "router.policy" "value" (toString $v.policy) "allowed" (list "cache_aware" "power_of_two" "consistent_hash" "round_robin" "random" "kv_aware"))) -}}
{{- if eq (toString $v.policy) "consistent_hash" -}}
{{- /* the router reads a fixed list of headers (policies/hash_key.rs), first match wins */ -}}
{{- $p = print $p (include "common.validate.oneOf" (dict "path" "router.sessionHeader" "value" (lower (toString $v.sessionHeader)) "allowed" (list "x-session-id" "x-user-id" "x-tenant-id" "x-correlation-id" "x-request-id" "x-trace-id"))) -}}
{{- end -}}
{{- if le (int $v.drain.terminationGracePeriodSeconds) (int $v.drain.preStopSleepSeconds) -}}
{{- $p = print $p (printf "\nrouter.drain.terminationGracePeriodSeconds: %v must exceed drain.preStopSleepSeconds (%v), or in-flight streams are killed" $v.drain.terminationGracePeriodSeconds $v.drain.preStopSleepSeconds) -}}
{{- end -}}
{{- if gt (int $v.healthCheck.timeoutSeconds) (int $v.healthCheck.intervalSeconds) -}}
{{- $p = print $p (printf "\nrouter.healthCheck.timeoutSeconds: %v exceeds healthCheck.intervalSeconds (%v)" $v.healthCheck.timeoutSeconds $v.healthCheck.intervalSeconds) -}}
{{- end -}}
{{- if eq (include "router.production" .) "true" -}}
{{- $replicas := $v.autoscaling.enabled | ternary $v.autoscaling.minReplicas $v.replicaCount -}}
{{- if lt (int $replicas) 2 -}}
{{- $p = print $p (printf "\nrouter.%s: %v; production needs at least 2 router replicas (one front door is a single point of failure)" ($v.autoscaling.enabled | ternary "autoscaling.minReplicas" "replicaCount") $replicas) -}}
{{- end -}}
{{- if not $v.image.digest -}}
{{- $p = print $p "\nrouter.image.digest: production pins images by digest (sha256:...)" -}}
{{- end -}}
{{- end -}}
{{- if include "common.images.placeholderDigest" $v.image.digest -}}
{{- $p = print $p (printf "\nrouter.image.digest: placeholder digests name no image, so these values claim a pin that cannot be pulled: router.image.digest (%s:%s). Replace it with the digest of the image you reviewed and mirrored: `crane digest IMAGE:TAG`, `skopeo inspect --format '{{.Digest}}' docker://IMAGE:TAG`, or the registry UI" $v.image.repository (toString $v.image.tag)) -}}
{{- end -}}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) -}}
{{- $p = print $p (printf "\nrouter.autoscaling.minReplicas: %v exceeds autoscaling.maxReplicas (%v)" $v.autoscaling.minReplicas $v.autoscaling.maxReplicas) -}}
{{- end -}}
{{- $c := include "common.security.containerSecurityContext" (dict "override" $v.containerSecurityContext) | fromYaml -}}
{{- $pod := include "common.security.podSecurityContext" (dict "override" $v.podSecurityContext) | fromYaml -}}
{{- $p = print $p (include "common.security.restrictedViolations" (dict "path" "router.containerSecurityContext" "pod" $pod "container" $c)) -}}
{{- include "common.validate.fail" (dict "chart" "router" "messages" $p) -}}
{{- end -}}
