{{/*
Security-context helpers. The baselines meet Pod Security "restricted";
values given by the user are merged on top (user keys win), so a chart can
still loosen a field on purpose, and the policy checks will see it.
*/}}

{{/*
Usage: {{ include "common.security.podSecurityContext" (dict "override" .Values.podSecurityContext) | nindent 8 }}
Restricted pod securityContext: non-root UID/GID 10001 (checkov wants
>= 10000), fsGroup so mounted volumes are writable, seccomp RuntimeDefault.
*/}}
{{- define "common.security.podSecurityContext" -}}
{{- $base := dict
  "runAsNonRoot" true
  "runAsUser" 10001
  "runAsGroup" 10001
  "fsGroup" 10001
  "fsGroupChangePolicy" "OnRootMismatch"
  "seccompProfile" (dict "type" "RuntimeDefault")
-}}
{{- toYaml (mergeOverwrite $base (deepCopy (.override | default dict))) -}}
{{- end -}}

{{/*
Usage: {{ include "common.security.containerSecurityContext" (dict "override" .Values.containerSecurityContext) | nindent 12 }}
Restricted container securityContext: no privilege escalation, read-only
root filesystem, all capabilities dropped, seccomp RuntimeDefault.
*/}}
{{- define "common.security.containerSecurityContext" -}}
{{- $base := dict
  "allowPrivilegeEscalation" false
  "readOnlyRootFilesystem" true
  "runAsNonRoot" true
  "privileged" false
  "capabilities" (dict "drop" (list "ALL"))
  "seccompProfile" (dict "type" "RuntimeDefault")
-}}
{{- toYaml (mergeOverwrite $base (deepCopy (.override | default dict))) -}}
{{- end -}}

{{/*
Usage: {{ include "common.security.restrictedViolations" (dict "path" "vllm.containerSecurityContext" "pod" $podSc "container" $containerSc) }}
One "path: message" line per way the merged contexts break Pod Security
"restricted" (empty when they meet it); feed it to common.validate.fail.
*/}}
{{- define "common.security.restrictedViolations" -}}
{{- $pod := .pod | default dict -}}
{{- $c := .container | default dict -}}
{{- if and (ne (toString $c.runAsNonRoot) "true") (ne (toString $pod.runAsNonRoot) "true") }}
{{ .path }}.runAsNonRoot: must be true (Pod Security restricted)
{{- end }}
{{- if or (eq (toString $c.runAsUser) "0") (eq (toString $pod.runAsUser) "0") }}
{{ .path }}.runAsUser: must not be 0 (Pod Security restricted)
{{- end }}
{{- if ne (toString $c.allowPrivilegeEscalation) "false" }}
{{ .path }}.allowPrivilegeEscalation: must be false (Pod Security restricted)
{{- end }}
{{- if eq (toString $c.privileged) "true" }}
{{ .path }}.privileged: must be false (Pod Security restricted)
{{- end }}
{{- $drop := (($c.capabilities | default dict).drop | default list) -}}
{{- if not (has "ALL" $drop) }}
{{ .path }}.capabilities.drop: must contain ALL (Pod Security restricted)
{{- end }}
{{- $add := (($c.capabilities | default dict).add | default list) -}}
{{- range $add }}{{- if ne . "NET_BIND_SERVICE" }}
{{ $.path }}.capabilities.add: {{ . }} is not allowed (Pod Security restricted allows only NET_BIND_SERVICE)
{{- end }}{{- end }}
{{- $seccomp := (($c.seccompProfile | default $pod.seccompProfile) | default dict).type | default "" -}}
{{- if not (has $seccomp (list "RuntimeDefault" "Localhost")) }}
{{ .path }}.seccompProfile.type: must be RuntimeDefault or Localhost (Pod Security restricted)
{{- end }}
{{- end -}}
