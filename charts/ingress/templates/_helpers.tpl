{{/*
Usage: {{ include "ingress.tlsSecret" . }}
Name of the TLS Secret.
*/}}
{{- define "ingress.tlsSecret" -}}
{{- default (printf "%s-tls" (include "common.names.fullname" .)) .Values.tls.secretName -}}
{{- end -}}

{{/*
Usage: {{ include "ingress.backendService" . }}
The Service every request goes to: backend.serviceName, else the router's
fullname as the router chart names it (<release>-router, or the release
name when it already contains "router").
*/}}
{{- define "ingress.backendService" -}}
{{- if .Values.backend.serviceName -}}
{{- .Values.backend.serviceName -}}
{{- else if contains "router" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-router" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
Usage: {{ include "ingress.issuerRef" . | nindent 4 }}
issuerRef of the Certificate for the configured issuer.
*/}}
{{- define "ingress.issuerRef" -}}
{{- $cm := .Values.tls.certManager -}}
{{- if eq $cm.issuer "selfSigned" -}}
name: {{ include "common.names.fullname" . }}-selfsigned
kind: Issuer
{{- else if eq $cm.issuer "acme" -}}
name: {{ include "common.names.fullname" . }}-acme
kind: ClusterIssuer
{{- else -}}
name: {{ $cm.existingIssuer.name }}
kind: {{ $cm.existingIssuer.kind }}
{{- end }}
group: cert-manager.io
{{- end -}}

{{/*
Usage: {{ include "ingress.nginxAnnotations" . }}
ingress-nginx annotations for streamed responses and optional rate limits.
*/}}
{{- define "ingress.nginxAnnotations" -}}
{{- $s := .Values.streaming -}}
{{- $a := dict
  "nginx.ingress.kubernetes.io/proxy-read-timeout" (toString (int $s.readTimeoutSeconds))
  "nginx.ingress.kubernetes.io/proxy-send-timeout" (toString (int $s.sendTimeoutSeconds))
  "nginx.ingress.kubernetes.io/proxy-body-size" (toString $s.maxBodySize)
-}}
{{- if $s.disableBuffering -}}
{{- $_ := set $a "nginx.ingress.kubernetes.io/proxy-buffering" "off" -}}
{{- $_ := set $a "nginx.ingress.kubernetes.io/proxy-request-buffering" "off" -}}
{{- end -}}
{{- if .Values.rateLimit.enabled -}}
{{- $r := .Values.rateLimit -}}
{{- $_ := set $a "nginx.ingress.kubernetes.io/limit-rps" (toString (int $r.requestsPerSecond)) -}}
{{- $_ := set $a "nginx.ingress.kubernetes.io/limit-burst-multiplier" (toString (int $r.burstMultiplier)) -}}
{{- $_ := set $a "nginx.ingress.kubernetes.io/limit-connections" (toString (int $r.connections)) -}}
{{- end -}}
{{- toYaml $a -}}
{{- end -}}

{{/*
Usage: {{ include "ingress.validateValues" . }}
Every cross-field problem of this chart, one "values.path: problem" per line.
*/}}
{{- define "ingress.validateValues" -}}
{{- $ := . -}}
{{- include "common.validate.oneOf" (dict "path" "ingress.mode" "value" .Values.mode "allowed" (list "ingress" "gateway")) -}}
{{- include "common.validate.oneOf" (dict "path" "ingress.clientAuth" "value" .Values.clientAuth "allowed" (list "none" "gateway")) -}}
{{- if hasKey .Values "routes" }}
ingress.routes: removed; per-model path routes are gone. Every path now goes to the router (router.*), which sends each request to the model named in its body: delete ingress.routes (clients keep one base URL and choose with the OpenAI "model" field)
{{- end }}
{{- if hasKey .Values "servicePort" }}
ingress.servicePort: removed; the public entry targets the router Service: use ingress.backend.port (router.service.port)
{{- end }}
{{- $t := .Values.tls -}}
{{- if $t.enabled }}
{{- if not .Values.hosts }}
ingress.tls.enabled: TLS needs at least one entry in ingress.hosts (the certificate's names)
{{- end }}
{{- if and (eq $t.source "existingSecret") (not $t.secretName) }}
ingress.tls.secretName: required when tls.source is existingSecret
{{- end }}
{{- if eq $t.source "certManager" }}
{{- $cm := $t.certManager -}}
{{- if and (eq $cm.issuer "acme") (not $cm.acme.email) }}
ingress.tls.certManager.acme.email: required for ACME (expiry and account notices)
{{- end }}
{{- if and (eq $cm.issuer "acme") (eq $cm.acme.solver "dns01") (not $cm.acme.dns01) }}
ingress.tls.certManager.acme.dns01: the dns01 solver needs a provider block
{{- end }}
{{- if and (eq $cm.issuer "existing") (not $cm.existingIssuer.name) }}
ingress.tls.certManager.existingIssuer.name: required when certManager.issuer is existing
{{- end }}
{{- if and (eq $cm.issuer "acme") (eq $cm.acme.solver "http01") (eq .Values.mode "gateway") }}
ingress.tls.certManager.acme.solver: http01 here solves through an Ingress class; in gateway mode use dns01 or an existing issuer
{{- end }}
{{- end }}
{{- end }}
{{- if and (eq .Values.backend.kind "InferencePool") (ne .Values.mode "gateway") }}
ingress.backend.kind: an InferencePool backend needs mode gateway (an Ingress can only target Services)
{{- end }}
{{- if eq .Values.mode "gateway" }}
{{- if and (not .Values.gateway.create) (not .Values.gateway.parentRefs) }}
ingress.gateway.parentRefs: with gateway.create false the HTTPRoute needs the Gateway(s) to attach to
{{- end }}
{{- if and .Values.gateway.create (not .Values.gateway.className) }}
ingress.gateway.className: the rendered Gateway needs the GatewayClass of your Gateway API implementation
{{- end }}
{{- if .Values.rateLimit.enabled }}
ingress.rateLimit.enabled: Gateway API has no standard rate limit, so it would be silently dropped; set router.limits.rateLimitPerSecond (enforced by the router) instead
{{- end }}
{{- end }}
{{- if and .Values.rateLimit.enabled (eq .Values.mode "ingress") (ne .Values.ingress.controller "nginx") }}
ingress.rateLimit.enabled: rendered as ingress-nginx annotations only, and ingress.controller is {{ .Values.ingress.controller | quote }}, so it would be silently dropped; set router.limits.rateLimitPerSecond instead
{{- end }}
{{- end -}}
