{{/*
Image helpers. An image block has: registry, repository, tag, digest,
pullPolicy. global.imageRegistry replaces the registry (air-gapped mirrors);
a digest always wins over the tag.
*/}}

{{/*
Usage: {{ include "common.images.image" (dict "image" .Values.image "global" .Values.global "defaultTag" .Chart.AppVersion) }}
Renders [registry/]repository(@digest|:tag).
*/}}
{{- define "common.images.image" -}}
{{- $img := .image | default dict -}}
{{- $global := .global | default dict -}}
{{- if not $img.repository -}}
{{- fail "common.images.image: image.repository is empty" -}}
{{- end -}}
{{- $registry := default $img.registry $global.imageRegistry -}}
{{- $ref := $img.repository -}}
{{- if $registry -}}
{{- $ref = printf "%s/%s" (trimSuffix "/" $registry) $img.repository -}}
{{- end -}}
{{- if $img.digest -}}
{{- if not (regexMatch "^sha256:[a-f0-9]{64}$" (toString $img.digest)) -}}
{{- fail (printf "common.images.image: digest %q of %s is not sha256:<64 hex>" (toString $img.digest) $img.repository) -}}
{{- end -}}
{{- printf "%s@%s" $ref $img.digest -}}
{{- else -}}
{{- $tag := default .defaultTag $img.tag | toString -}}
{{- if not $tag -}}
{{- fail (printf "common.images.image: %s has neither tag nor digest" $img.repository) -}}
{{- end -}}
{{- printf "%s:%s" $ref $tag -}}
{{- end -}}
{{- end -}}

{{/*
Usage: {{- with include "common.images.pullSecrets" (dict "pullSecrets" .Values.image.pullSecrets "global" .Values.global) }}{{ . | nindent 6 }}{{ end }}
An imagePullSecrets block (global first, no duplicates), or "" when empty.
Entries may be names or {name: ...} maps.
*/}}
{{- define "common.images.pullSecrets" -}}
{{- $names := list -}}
{{- $global := .global | default dict -}}
{{- range (concat ($global.imagePullSecrets | default list) (.pullSecrets | default list)) -}}
{{- $n := kindIs "map" . | ternary (get (kindIs "map" . | ternary . dict) "name") . -}}
{{- if and $n (not (has $n $names)) -}}{{- $names = append $names $n -}}{{- end -}}
{{- end -}}
{{- if $names -}}
imagePullSecrets:
{{- range $names }}
  - name: {{ . | quote }}
{{- end }}
{{- end -}}
{{- end -}}

{{/*
Usage: {{ include "common.images.placeholderDigest" "sha256:000..." }}
"true" for a digest that names no image: 64 times the same hex digit (the
all-zero placeholders of values/ files). Such a file claims to be pinned
while nothing could ever be pulled; every chart with a production digest
rule refuses it.
*/}}
{{- define "common.images.placeholderDigest" -}}
{{- $d := toString . -}}
{{- range $c := splitList "" "0123456789abcdef" -}}
{{- if eq $d (printf "sha256:%s" (repeat 64 $c)) -}}true{{- end -}}
{{- end -}}
{{- end -}}
