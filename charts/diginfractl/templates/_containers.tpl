{{/*
The diginfractl containers. Each template takes (dict "root" $ "container" "install"|"follow"|"validate"):
the shared values (extraEnv, securityContext, extraVolumeMounts) apply to all of them, and the block
artifacts.install / artifacts.follow adds to them for its own container.
*/}}

{{/* The per-container block of values (empty for the config check, which takes the shared ones). */}}
{{- define "diginfractl.containerValues" -}}
{{- $own := dict }}
{{- if eq .container "install" }}{{ $own = .root.Values.artifacts.install }}{{ end }}
{{- if eq .container "follow" }}{{ $own = .root.Values.artifacts.follow }}{{ end }}
{{- toJson $own }}
{{- end }}

{{/*
Registry credentials from Secrets, as the variables the CLI reads (docs/configuration.md):
DIGINFRACTL_REGISTRY_AUTH_BASIC is `registry,user,password;...` and DIGINFRACTL_REGISTRY_AUTH_OAUTH
`registry,clientID,clientSecret,tokenURL;...`. The kubelet fills each secret into a variable of its own
and expands the $(NAME) references of the composed one, so no secret is written into the pod spec.
*/}}
{{- define "diginfractl.authEnv" -}}
{{- $auth := .Values.registry.auth }}
{{- $env := list }}
{{- $entries := list }}
{{- range $i, $e := $auth.basic }}
{{- $user := printf "REGISTRY_AUTH_BASIC_%d_USER" $i }}
{{- $password := printf "REGISTRY_AUTH_BASIC_%d_PASSWORD" $i }}
{{- $env = append $env (dict "name" $user "valueFrom" (dict "secretKeyRef" (dict "name" $e.secretName "key" ($e.userKey | default "username")))) }}
{{- $env = append $env (dict "name" $password "valueFrom" (dict "secretKeyRef" (dict "name" $e.secretName "key" ($e.passwordKey | default "password")))) }}
{{- $entries = append $entries (printf "%s,$(%s),$(%s)" $e.registry $user $password) }}
{{- end }}
{{- with $entries }}
{{- $env = append $env (dict "name" "DIGINFRACTL_REGISTRY_AUTH_BASIC" "value" (join ";" .)) }}
{{- end }}
{{- $entries = list }}
{{- range $i, $e := $auth.oauth }}
{{- $secret := printf "REGISTRY_AUTH_OAUTH_%d_CLIENT_SECRET" $i }}
{{- $clientID := $e.clientID }}
{{- if $e.clientIDKey }}
{{- $idVar := printf "REGISTRY_AUTH_OAUTH_%d_CLIENT_ID" $i }}
{{- $env = append $env (dict "name" $idVar "valueFrom" (dict "secretKeyRef" (dict "name" $e.secretName "key" $e.clientIDKey))) }}
{{- $clientID = printf "$(%s)" $idVar }}
{{- end }}
{{- $env = append $env (dict "name" $secret "valueFrom" (dict "secretKeyRef" (dict "name" $e.secretName "key" ($e.clientSecretKey | default "clientSecret")))) }}
{{- $entries = append $entries (printf "%s,%s,$(%s),%s" $e.registry $clientID $secret $e.tokenURL) }}
{{- end }}
{{- with $entries }}
{{- $env = append $env (dict "name" "DIGINFRACTL_REGISTRY_AUTH_OAUTH" "value" (join ";" .)) }}
{{- end }}
{{- toJson $env }}
{{- end }}

{{/* Environment of one container: the chart's own, the credentials, extraEnv, then the container's env (same name: its entry wins). */}}
{{- define "diginfractl.env" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $own := include "diginfractl.containerValues" . | fromJson }}
{{- $env := list
  (dict "name" "DIGINFRACTL_CONFIG" "value" (include "diginfractl.configFile" $root))
  (dict "name" "XDG_CACHE_HOME" "value" (printf "%s/cache" $v.hostPaths.stateDir))
  (dict "name" "XDG_CONFIG_HOME" "value" (printf "%s/config" $v.hostPaths.stateDir))
  (dict "name" "NODE_NAME" "valueFrom" (dict "fieldRef" (dict "fieldPath" "spec.nodeName"))) }}
{{- $env = concat $env (include "diginfractl.authEnv" $root | fromJsonArray) }}
{{- $replaced := dict }}
{{- range ($own.env | default list) }}{{ $_ := set $replaced .name true }}{{ end }}
{{- range ($v.extraEnv | default list) }}
{{- if not (hasKey $replaced .name) }}{{ $env = append $env . }}{{ end }}
{{- end }}
{{- $env = concat $env ($own.env | default list) }}
{{- toYaml $env }}
{{- end }}

{{/* Volume mounts of one container: the same paths as in the config file. */}}
{{- define "diginfractl.volumeMounts" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $p := include "diginfractl.prefix" $root }}
{{- $own := include "diginfractl.containerValues" . | fromJson }}
- name: {{ $p }}config
  mountPath: {{ include "diginfractl.configDir" $root }}
  readOnly: true
- name: {{ $p }}rulesfiles
  mountPath: {{ $v.hostPaths.rulesfilesDir }}
- name: {{ $p }}plugins
  mountPath: {{ $v.hostPaths.pluginsDir }}
- name: {{ $p }}state
  mountPath: {{ $v.hostPaths.stateDir }}
{{- range $type, $path := $v.hostPaths.dirs }}
- name: {{ $p }}dir-{{ $type }}
  mountPath: {{ $path }}
{{- end }}
- name: {{ $p }}tmp
  mountPath: /tmp
{{- if $v.registry.auth.existingSecret }}
- name: {{ $p }}registry-auth
  mountPath: {{ include "diginfractl.authDir" $root }}
  readOnly: true
{{- end }}
{{- if $v.registry.caSecret.name }}
- name: {{ $p }}registry-ca
  mountPath: {{ include "diginfractl.caDir" $root }}
  readOnly: true
{{- end }}
{{- if $v.registry.trustedRoot.configMap }}
- name: {{ $p }}sigstore-trusted-root
  mountPath: {{ include "diginfractl.trustedRootDir" $root }}
  readOnly: true
{{- end }}
{{- with concat ($v.extraVolumeMounts | default list) ($own.extraVolumeMounts | default list) }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Security context of one container: securityContext, with the container's own keys merged over it. */}}
{{- define "diginfractl.securityContext" -}}
{{- $own := include "diginfractl.containerValues" . | fromJson }}
{{- toYaml (mustMergeOverwrite (deepCopy (.root.Values.securityContext | default dict)) ($own.securityContext | default dict)) }}
{{- end }}

{{/* What every diginfractl container has: image, env, envFrom, security context and mounts. */}}
{{- define "diginfractl.containerCommon" -}}
{{- $root := .root }}
{{- $own := include "diginfractl.containerValues" . | fromJson }}
env:
  {{- include "diginfractl.env" . | trim | nindent 2 }}
{{- with $own.envFrom }}
envFrom:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with include "diginfractl.securityContext" . | fromYaml }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumeMounts:
  {{- include "diginfractl.volumeMounts" . | trim | nindent 2 }}
{{- end }}

{{- define "diginfractl.httpGet" -}}
httpGet:
  path: {{ .path }}
  port: {{ .port }}
  scheme: HTTP
{{- end }}

{{/* Checks the merged config file with `diginfractl config validate` before anything uses it (only when `config` is set). */}}
{{- define "diginfractl.validateContainer" -}}
{{- $v := .Values -}}
- name: {{ include "diginfractl.prefix" . }}config-check
  image: {{ include "diginfractl.image" . }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  args:
    - config
    - validate
    - {{ include "diginfractl.configFile" . }}
    - --log-level
    - {{ $v.logLevel }}
  {{- with $v.resources.install }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- include "diginfractl.containerCommon" (dict "root" . "container" "validate") | trim | nindent 2 }}
{{- end }}

{{/* The `artifact install` init container: every ref for this node's own os/arch, before the rest of the pod. */}}
{{- define "diginfractl.installContainer" -}}
{{- $v := .Values -}}
- name: {{ include "diginfractl.prefix" . }}install
  image: {{ include "diginfractl.image" . }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  args:
    - artifact
    - install
    - --config
    - {{ include "diginfractl.configFile" . }}
    - --log-level
    - {{ $v.logLevel }}
    {{- range $v.artifacts.install.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  {{- with $v.resources.install }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- include "diginfractl.containerCommon" (dict "root" . "container" "install") | trim | nindent 2 }}
{{- end }}

{{/* The `artifact follow` container; `sidecar` true renders it as a native sidecar (init container). */}}
{{- define "diginfractl.followContainer" -}}
{{- $root := .root }}
{{- $v := $root.Values -}}
{{- $port := include "diginfractl.portName" $root -}}
- name: {{ include "diginfractl.prefix" $root }}follow
  image: {{ include "diginfractl.image" $root }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if .sidecar }}
  restartPolicy: Always
  {{- end }}
  args:
    - artifact
    - follow
    - --config
    - {{ include "diginfractl.configFile" $root }}
    - --log-level
    - {{ $v.logLevel }}
    - --metrics-addr
    - {{ include "diginfractl.metricsAddr" $root | quote }}
    {{- range $v.artifacts.follow.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  ports:
    - name: {{ $port }}
      containerPort: {{ $v.metrics.port }}
      protocol: TCP
  {{- if or .sidecar $v.probes.startup.enabled }}
  startupProbe:
    {{- include "diginfractl.httpGet" (dict "path" "/readyz" "port" $port) | nindent 4 }}
    periodSeconds: {{ $v.probes.startup.periodSeconds }}
    timeoutSeconds: {{ $v.probes.startup.timeoutSeconds }}
    failureThreshold: {{ $v.probes.startup.failureThreshold }}
  {{- end }}
  {{- with $v.probes.liveness }}
  {{- if .enabled }}
  livenessProbe:
    {{- include "diginfractl.httpGet" (dict "path" "/healthz" "port" $port) | nindent 4 }}
    initialDelaySeconds: {{ .initialDelaySeconds }}
    periodSeconds: {{ .periodSeconds }}
    timeoutSeconds: {{ .timeoutSeconds }}
    failureThreshold: {{ .failureThreshold }}
  {{- end }}
  {{- end }}
  {{- with $v.probes.readiness }}
  {{- if .enabled }}
  readinessProbe:
    {{- include "diginfractl.httpGet" (dict "path" "/readyz" "port" $port) | nindent 4 }}
    initialDelaySeconds: {{ .initialDelaySeconds }}
    periodSeconds: {{ .periodSeconds }}
    timeoutSeconds: {{ .timeoutSeconds }}
    failureThreshold: {{ .failureThreshold }}
  {{- end }}
  {{- end }}
  {{- with $v.resources.follow }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- include "diginfractl.containerCommon" (dict "root" $root "container" "follow") | trim | nindent 2 }}
{{- end }}
