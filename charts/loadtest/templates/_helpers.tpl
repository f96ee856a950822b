{{/*
Usage: {{ include "loadtest.validateValues" . }}
Cross-field rules the schema cannot express; every problem is named with its
values path and rendering fails once.
*/}}
{{- define "loadtest.validateValues" -}}
{{- $v := .Values -}}
{{- $p := "" -}}
{{- if not (regexMatch "^https?://[^/]+" (toString $v.target.url)) }}
{{- $p = print $p (printf "\nloadtest.target.url: %q must be the base URL of an OpenAI-compatible Service, e.g. http://<release>-<model>.<namespace>.svc:8000" (toString $v.target.url)) -}}
{{- end }}
{{- $load := ((include "loadtest.profile" . | fromYaml).load | default dict) -}}
{{- $shape := default "concurrency" $load.shape -}}
{{- $p = print $p (include "common.validate.oneOf" (dict "path" "loadtest.profile.load.shape" "value" $shape "allowed" (list "concurrency" "constant" "poisson" "step" "spike"))) -}}
{{- if and (eq $shape "concurrency") (lt (int (default 0 $load.users)) (int $v.worker.replicas)) }}
{{- $p = print $p (printf "\nloadtest.profile.load.users: %v clients leave some of the %d workers idle; use at least worker.replicas clients" (default 0 $load.users) (int $v.worker.replicas)) -}}
{{- end }}
{{- $pod := include "common.security.podSecurityContext" (dict "override" $v.podSecurityContext) | fromYaml -}}
{{- $c := include "common.security.containerSecurityContext" (dict "override" $v.containerSecurityContext) | fromYaml -}}
{{- $p = print $p (include "common.security.restrictedViolations" (dict "path" "loadtest.containerSecurityContext" "pod" $pod "container" $c)) -}}
{{- include "common.validate.fail" (dict "chart" "loadtest" "messages" $p) -}}
{{- end -}}

{{/*
Usage: {{ include "loadtest.profile" . | fromYaml }}
The profile from values, or the built-in default when values give none.
*/}}
{{- define "loadtest.profile" -}}
{{- if .Values.profile -}}
{{- toYaml .Values.profile -}}
{{- else -}}
name: in-cluster-default
api: chat
stream: true
prompt_tokens: {dist: normal, mean: 64, std: 16, min: 8, max: 256}
output_tokens: {dist: uniform, min: 16, max: 48}
load: {shape: concurrency, users: 16, duration: 2m}
{{- end -}}
{{- end -}}

{{/*
Usage: {{ include "loadtest.config" . }}
The locustfile's JSON config: target, profile (its `load:` block is the shape), seed.
*/}}
{{- define "loadtest.config" -}}
{{- $cfg := dict
  "url" .Values.target.url
  "profile" (include "loadtest.profile" . | fromYaml)
  "seed" .Values.seed
  "request_timeout" .Values.target.requestTimeout
  "progress_interval" 10
-}}
{{- toPrettyJson $cfg -}}
{{- end -}}

{{/*
Usage: {{ include "loadtest.codeFiles" . }}
ConfigMap key -> path under /opt/llmops of the locustfile and the harness
modules it imports (keys cannot hold "/"): every .py file under files/.
files/ is generated from the repository (`llmops chart-files`), not tracked.
*/}}
{{- define "loadtest.codeFiles" -}}
{{- if not (.Files.Get "files/locustfile.py") }}
{{- fail "\nloadtest: charts/loadtest/files/ is missing: it is generated from the repository's locustfile and harness modules. Run `llmops chart-files` (or `make loadtest-files`) in the repository, then render again; rendering through llmops does it for you." -}}
{{- end }}
{{- range $path, $_ := .Files.Glob "files/**.py" }}
{{ trimPrefix "files/" $path | replace "/" "." }}: {{ trimPrefix "files/" $path }}
{{- end }}
{{- end -}}

{{/*
Usage: {{ include "loadtest.podSpec" (dict "context" $ "component" "worker" "args" $args) }}
The pod spec shared by master and workers: restricted security, the code and
config ConfigMaps, a writable /tmp, no ServiceAccount token.
*/}}
{{- define "loadtest.podSpec" -}}
{{- $ctx := .context -}}
{{- $v := $ctx.Values -}}
{{- $c := get $v .component -}}
{{- $fullname := include "common.names.fullname" $ctx -}}
serviceAccountName: {{ include "common.names.serviceAccount" (dict "context" $ctx "serviceAccount" $v.serviceAccount) }}
automountServiceAccountToken: false
restartPolicy: Never
enableServiceLinks: false
{{- with (include "common.images.pullSecrets" (dict "global" $v.global)) }}
{{ . }}
{{- end }}
securityContext:
  {{- include "common.security.podSecurityContext" (dict "override" $v.podSecurityContext) | nindent 2 }}
{{- with $c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: locust
    image: {{ include "common.images.image" (dict "image" $v.image "global" $v.global) }}
    imagePullPolicy: {{ $v.image.pullPolicy }}
    command: ["locust"]
    args:
      {{- toYaml .args | nindent 6 }}
    env:
      - name: LLMOPS_LOADTEST_CONFIG
        value: /etc/llmops/config.json
      - name: PYTHONPATH
        value: /opt/llmops
      - name: HOME
        value: /tmp
      - name: PYTHONDONTWRITEBYTECODE
        value: "1"
      - name: LLMOPS_RATE_DIVISOR
        value: {{ $v.worker.replicas | quote }}
      {{- if $v.target.apiKeySecret.name }}
      - name: OPENAI_API_KEY_FILE
        value: /var/run/llmops/api-key/key
      {{- end }}
      {{- with $c.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- if eq .component "master" }}
    ports:
      - name: master
        containerPort: 5557
        protocol: TCP
    {{- end }}
    securityContext:
      {{- include "common.security.containerSecurityContext" (dict "override" $v.containerSecurityContext) | nindent 6 }}
    resources:
      {{- include "common.resources.render" (dict "resources" $c.resources "preset" $c.resourcesPreset) | nindent 6 }}
    volumeMounts:
      - name: code
        mountPath: /opt/llmops
        readOnly: true
      - name: config
        mountPath: /etc/llmops
        readOnly: true
      {{- if $v.target.apiKeySecret.name }}
      - name: api-key
        mountPath: /var/run/llmops/api-key
        readOnly: true
      {{- end }}
      - name: tmp
        mountPath: /tmp
volumes:
  - name: code
    configMap:
      name: {{ $fullname }}-code
      items:
        {{- range $key, $path := (include "loadtest.codeFiles" $ctx | fromYaml) }}
        - key: {{ $key }}
          path: {{ $path }}
        {{- end }}
  - name: config
    configMap:
      name: {{ $fullname }}-config
  {{- if $v.target.apiKeySecret.name }}
  - name: api-key
    secret:
      secretName: {{ $v.target.apiKeySecret.name }}
      items:
        - key: {{ $v.target.apiKeySecret.key }}
          path: key
  {{- end }}
  - name: tmp
    emptyDir:
      sizeLimit: 256Mi
{{- end -}}
