{{/*
Usage: {{ include "llmops-stack.migrations.check" . }}
Fails once, listing every values path set by the user that migrations.yaml
says was renamed or removed, with its replacement and the version.
*/}}
{{- define "llmops-stack.migrations.check" -}}
{{- $table := (.Files.Get "migrations.yaml" | fromYaml).migrations | default list -}}
{{- $p := "" -}}
{{- range $m := $table -}}
{{- $node := $.Values -}}
{{- $found := true -}}
{{- range $part := splitList "." (toString $m.old) -}}
{{- if and $found (kindIs "map" $node) (hasKey $node $part) -}}
{{- $node = index $node $part -}}
{{- else -}}
{{- $found = false -}}
{{- end -}}
{{- end -}}
{{- if $found -}}
{{- if $m.new -}}
{{- $p = print $p (printf "\n%s: renamed to %s in %s; move the value (docs/upgrading.md)" $m.old $m.new (toString $m.version)) -}}
{{- else -}}
{{- $p = print $p (printf "\n%s: removed in %s%s (docs/upgrading.md)" $m.old (toString $m.version) (ternary (printf "; %s" $m.note) "" (not (empty $m.note)))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $p -}}
{{- fail (printf "values set keys that no longer exist:%s" $p) -}}
{{- end -}}
{{- end -}}
