{{/*
The diginfractl config file (src/config/types.ts), rendered from values, with the free-form `config`
value merged over it. The rules, plugins and state directories are the hostPaths, mounted at the same
paths in the containers.
*/}}
{{- define "diginfractl.config" -}}
{{- $generated := include "diginfractl.generatedConfig" . | fromYaml }}
{{- toYaml (mustMergeOverwrite $generated (deepCopy (.Values.config | default dict))) }}
{{- end }}

{{/* The mirror host of the pull-through cache: its Service's cluster DNS name and port. */}}
{{- define "diginfractl.cacheHost" -}}
{{- printf "%s.%s.svc.%s:%d" (include "diginfractl.cacheName" .) .Release.Namespace .Values.pullThroughCache.clusterDomain (int .Values.pullThroughCache.port) }}
{{- end }}

{{/* The registry host the cache stands in for: registryHost, or the host of remoteURL. */}}
{{- define "diginfractl.cacheRegistryHost" -}}
{{- .Values.pullThroughCache.registryHost | default (urlParse .Values.pullThroughCache.remoteURL).host }}
{{- end }}

{{/* The cache's pods are not the agents: a name label of their own keeps the DaemonSet's selector off them. */}}
{{- define "diginfractl.cacheSelectorLabels" -}}
app.kubernetes.io/name: {{ include "diginfractl.name" . | trunc 57 | trimSuffix "-" }}-cache
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "diginfractl.cacheLabels" -}}
helm.sh/chart: {{ include "diginfractl.chart" . }}
{{ include "diginfractl.cacheSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: pull-through-cache
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "diginfractl.cacheName" -}}
{{- printf "%s-cache" (include "diginfractl.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{- define "diginfractl.generatedConfig" -}}
{{- $v := .Values }}
{{- $mirrors := deepCopy $v.registry.mirrors }}
{{- $plainHttp := $v.registry.plainHttp }}
{{- if $v.pullThroughCache.enabled }}
{{- $_ := set $mirrors (include "diginfractl.cacheRegistryHost" .) (include "diginfractl.cacheHost" .) }}
{{- $plainHttp = append (deepCopy $plainHttp) (include "diginfractl.cacheHost" .) }}
{{- end }}
{{- $registry := dict "plainHttp" $plainHttp "insecureSkipTlsVerify" $v.registry.insecureSkipTlsVerify "mirrors" $mirrors "caFiles" (dict) }}
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

{{/*
A Go-style duration (6h, 1h30m, 90s) as a PromQL arithmetic expression in seconds: "6 * 3600",
"1 * 3600 + 30 * 60", so a reader of the rule sees the interval it came from.
*/}}
{{- define "diginfractl.durationExpr" -}}
{{- $units := dict "h" "3600" "m" "60" "s" "1" "ms" "0.001" }}
{{- $terms := list }}
{{- range regexFindAll "[0-9]+(ms|h|m|s)" . -1 }}
{{- $n := regexFind "^[0-9]+" . }}
{{- $terms = append $terms (printf "%s * %s" $n (get $units (trimPrefix $n .))) }}
{{- end }}
{{- join " + " $terms }}
{{- end }}

{{/* The same duration in whole seconds (for PromQL range selectors: "21600s"). */}}
{{- define "diginfractl.durationSeconds" -}}
{{- $units := dict "h" 3600000 "m" 60000 "s" 1000 "ms" 1 }}
{{- $ms := 0 }}
{{- range regexFindAll "[0-9]+(ms|h|m|s)" . -1 }}
{{- $n := regexFind "^[0-9]+" . }}
{{- $ms = add $ms (mul (atoi $n) (get $units (trimPrefix $n .))) }}
{{- end }}
{{- div (add $ms 999) 1000 }}
{{- end }}
