{{/*
Usage: {{ include "ingress.tlsSecret" . }}
Name of the TLS Secret.
*/}}
{{- define "ingress.tlsSecret" -}}
{{- default (printf "%s-tls" (include "common.names.fullname" .)) .Values.tls.secretName -}}
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
{{- if not .Values.routes }}
ingress.routes: at least one route (path -> model) is needed
{{- end }}
{{- range $i, $r := .Values.routes }}
{{- if not $r.model }}
ingress.routes[{{ $i }}].model: name the vllm model this path serves
{{- else }}
{{- include "common.validate.dnsLabel" (dict "path" (printf "ingress.routes[%d].model" $i) "value" $r.model) -}}
{{- end }}
{{- if not (hasPrefix "/" (toString $r.path)) }}
ingress.routes[{{ $i }}].path: {{ $r.path | quote }} must start with /
{{- end }}
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
{{- if and (eq .Values.mode "gateway") (not .Values.gateway.parentRefs) }}
ingress.gateway.parentRefs: gateway mode needs the Gateway(s) the HTTPRoute attaches to
{{- end }}
{{- if and (eq .Values.mode "gateway") .Values.rateLimit.enabled }}
ingress.rateLimit.enabled: rate limiting is rendered for ingress-nginx only; in gateway mode configure it on the Gateway implementation
{{- end }}
{{- end -}}
