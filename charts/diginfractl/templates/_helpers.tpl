{{/* Chart name, cut to 63 characters (a DNS label). */}}
{{- define "diginfractl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, plus the chart name unless the release name already contains it. */}}
{{- define "diginfractl.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "diginfractl.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "diginfractl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "diginfractl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "diginfractl.labels" -}}
helm.sh/chart: {{ include "diginfractl.chart" . }}
{{ include "diginfractl.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: artifact-agent
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "diginfractl.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "diginfractl.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "diginfractl.image" -}}
{{- $repo := printf "%s/%s" .Values.image.registry .Values.image.repository | trimPrefix "/" }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Where things live inside the containers. */}}
{{- define "diginfractl.configDir" -}}/etc/diginfractl{{- end }}
{{- define "diginfractl.configFile" -}}/etc/diginfractl/diginfractl.yaml{{- end }}
{{- define "diginfractl.authDir" -}}/var/run/secrets/diginfractl/registry-auth{{- end }}
{{- define "diginfractl.caDir" -}}/var/run/secrets/diginfractl/registry-ca{{- end }}
{{- define "diginfractl.trustedRootDir" -}}/etc/diginfractl-sigstore{{- end }}
{{- define "diginfractl.metricsAddr" -}}
{{- if contains ":" .Values.metrics.address }}
{{- printf "[%s]:%d" .Values.metrics.address (int .Values.metrics.port) }}
{{- else }}
{{- printf "%s:%d" .Values.metrics.address (int .Values.metrics.port) }}
{{- end }}
{{- end }}

{{/*
The diginfractl config file (src/config/types.ts), rendered from values. The rules, plugins and state
directories are the hostPaths, mounted at the same paths in the containers.
*/}}
{{- define "diginfractl.config" -}}
{{- $v := .Values }}
{{- $registry := dict "plainHttp" $v.registry.plainHttp "insecureSkipTlsVerify" $v.registry.insecureSkipTlsVerify "mirrors" $v.registry.mirrors "caFiles" (dict) }}
{{- $cosignKeys := list }}
{{- range $i, $_ := ($v.registry.cosignPublicKeys | default list) }}
{{- $cosignKeys = append $cosignKeys (printf "%s/cosign-%d.pub" (include "diginfractl.configDir" $) $i) }}
{{- end }}
{{- if $cosignKeys }}
{{- $_ := set $registry "cosignKeys" $cosignKeys }}
{{- end }}
{{- if $v.registry.caSecret.name }}
{{- $caFiles := dict }}
{{- range $v.registry.caSecret.hosts }}
{{- $_ := set $caFiles . (printf "%s/%s" (include "diginfractl.caDir" $) $v.registry.caSecret.key) }}
{{- end }}
{{- $_ := set $registry "caFiles" $caFiles }}
{{- end }}
{{- with $v.registry.allowed }}
{{- $_ := set $registry "allowed" . }}
{{- end }}
{{- if $v.registry.trustedRoot.configMap }}
{{- $_ := set $registry "trustedRoot" (printf "%s/%s" (include "diginfractl.trustedRootDir" .) $v.registry.trustedRoot.key) }}
{{- end }}
{{- if $v.registry.auth.existingSecret }}
{{- $_ := set $registry "authFile" (printf "%s/config.json" (include "diginfractl.authDir" .)) }}
{{- end }}
{{- with $v.registry.auth.gcp }}
{{- $gcp := list }}
{{- range . }}
{{- $gcp = append $gcp (dict "registry" .) }}
{{- end }}
{{- $_ := set $registry "auth" (dict "gcp" $gcp) }}
{{- end }}
{{- $install := dict "refs" $v.artifacts.install.refs "rulesfilesDir" $v.hostPaths.rulesfilesDir "pluginsDir" $v.hostPaths.pluginsDir "resolveDeps" $v.artifacts.install.resolveDeps "allowedTypes" $v.allowedTypes "lockfile" (printf "%s/diginfractl.lock" $v.hostPaths.stateDir) }}
{{- $follow := dict "refs" $v.artifacts.follow.refs "every" $v.artifacts.follow.every "jitter" $v.artifacts.follow.jitter "rulesfilesDir" $v.hostPaths.rulesfilesDir "pluginsDir" $v.hostPaths.pluginsDir "stateDir" $v.hostPaths.stateDir "allowedTypes" $v.allowedTypes "metricsAddr" (include "diginfractl.metricsAddr" .) }}
{{- with $v.artifacts.follow.cron }}
{{- $_ := set $follow "cron" . }}
{{- end }}
{{- with $v.hostPaths.dirs }}
{{- $_ := set $install "dirs" . }}
{{- $_ := set $follow "dirs" . }}
{{- end }}
{{- with $v.engine.version }}
{{- $_ := set $install "engineVersion" . }}
{{- $_ := set $follow "engineVersion" . }}
{{- end }}
{{- with $v.engine.versionsUrl }}
{{- $_ := set $follow "engineVersionsUrl" . }}
{{- end }}
{{- $config := dict "indexes" $v.indexes "registry" $registry "install" $install "follow" $follow "cacheDir" (printf "%s/cache" $v.hostPaths.stateDir) }}
{{- toYaml $config }}
{{- end }}

{{/* Environment shared by both diginfractl containers. */}}
{{- define "diginfractl.env" -}}
- name: DIGINFRACTL_CONFIG
  value: {{ include "diginfractl.configFile" . }}
- name: XDG_CACHE_HOME
  value: {{ printf "%s/cache" .Values.hostPaths.stateDir }}
- name: XDG_CONFIG_HOME
  value: {{ printf "%s/config" .Values.hostPaths.stateDir }}
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volume mounts shared by both diginfractl containers: the same paths as in the config file. */}}
{{- define "diginfractl.volumeMounts" -}}
- name: config
  mountPath: {{ include "diginfractl.configDir" . }}
  readOnly: true
- name: rulesfiles
  mountPath: {{ .Values.hostPaths.rulesfilesDir }}
- name: plugins
  mountPath: {{ .Values.hostPaths.pluginsDir }}
- name: state
  mountPath: {{ .Values.hostPaths.stateDir }}
{{- range $type, $path := .Values.hostPaths.dirs }}
- name: dir-{{ $type }}
  mountPath: {{ $path }}
{{- end }}
- name: tmp
  mountPath: /tmp
{{- if .Values.registry.auth.existingSecret }}
- name: registry-auth
  mountPath: {{ include "diginfractl.authDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.registry.caSecret.name }}
- name: registry-ca
  mountPath: {{ include "diginfractl.caDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.registry.trustedRoot.configMap }}
- name: sigstore-trusted-root
  mountPath: {{ include "diginfractl.trustedRootDir" . }}
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "diginfractl.httpGet" -}}
httpGet:
  path: {{ .path }}
  port: metrics
  scheme: HTTP
{{- end }}

{{/* The `artifact follow` container; `sidecar` true renders it as a native sidecar (init container). */}}
{{- define "diginfractl.followContainer" -}}
{{- $root := .root }}
{{- $v := $root.Values -}}
- name: follow
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
  env:
    {{- include "diginfractl.env" $root | nindent 4 }}
  ports:
    - name: metrics
      containerPort: {{ $v.metrics.port }}
      protocol: TCP
  {{- if or .sidecar $v.probes.startup.enabled }}
  startupProbe:
    {{- include "diginfractl.httpGet" (dict "path" "/readyz") | nindent 4 }}
    periodSeconds: {{ $v.probes.startup.periodSeconds }}
    timeoutSeconds: {{ $v.probes.startup.timeoutSeconds }}
    failureThreshold: {{ $v.probes.startup.failureThreshold }}
  {{- end }}
  {{- with $v.probes.liveness }}
  {{- if .enabled }}
  livenessProbe:
    {{- include "diginfractl.httpGet" (dict "path" "/healthz") | nindent 4 }}
    initialDelaySeconds: {{ .initialDelaySeconds }}
    periodSeconds: {{ .periodSeconds }}
    timeoutSeconds: {{ .timeoutSeconds }}
    failureThreshold: {{ .failureThreshold }}
  {{- end }}
  {{- end }}
  {{- with $v.probes.readiness }}
  {{- if .enabled }}
  readinessProbe:
    {{- include "diginfractl.httpGet" (dict "path" "/readyz") | nindent 4 }}
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
  {{- with $v.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    {{- include "diginfractl.volumeMounts" $root | nindent 4 }}
{{- end }}
