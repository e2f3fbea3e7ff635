{{/* The pod volumes our containers mount (plus extraVolumes), named with the pod's prefix. */}}
{{- define "diginfractl.volumes" -}}
{{- $v := .Values }}
{{- $p := include "diginfractl.prefix" . -}}
- name: {{ $p }}config
  configMap:
    name: {{ include "diginfractl.fullname" . }}
{{- $dirs := dict "rulesfiles" $v.hostPaths.rulesfilesDir "plugins" $v.hostPaths.pluginsDir "state" $v.hostPaths.stateDir }}
{{- range $type, $path := $v.hostPaths.dirs }}
{{- $_ := set $dirs (printf "dir-%s" $type) $path }}
{{- end }}
{{- range $name := list "rulesfiles" "plugins" "state" }}
{{- include "diginfractl.dirVolume" (dict "root" $ "name" $name "path" (get $dirs $name)) }}
{{- end }}
{{- range $type, $path := $v.hostPaths.dirs }}
{{- include "diginfractl.dirVolume" (dict "root" $ "name" (printf "dir-%s" $type) "path" $path) }}
{{- end }}
- name: {{ $p }}tmp
  emptyDir:
    sizeLimit: 64Mi
{{- with $v.registry.auth.existingSecret }}
- name: {{ $p }}registry-auth
  secret:
    secretName: {{ . }}
    items:
      - key: .dockerconfigjson
        path: config.json
{{- end }}
{{- if $v.registry.caSecret.name }}
- name: {{ $p }}registry-ca
  secret:
    secretName: {{ $v.registry.caSecret.name }}
    items:
      - key: {{ $v.registry.caSecret.key }}
        path: {{ $v.registry.caSecret.key }}
{{- end }}
{{- if $v.registry.trustedRoot.configMap }}
- name: {{ $p }}sigstore-trusted-root
  configMap:
    name: {{ $v.registry.trustedRoot.configMap }}
    items:
      - key: {{ $v.registry.trustedRoot.key }}
        path: {{ $v.registry.trustedRoot.key }}
{{- end }}
{{- with $v.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* One directory volume: the host's directory at the same path, or an emptyDir (hostPaths.enabled=false). */}}
{{- define "diginfractl.dirVolume" }}
- name: {{ include "diginfractl.prefix" .root }}{{ .name }}
{{- if .root.Values.hostPaths.enabled }}
  hostPath:
    path: {{ .path }}
    type: {{ .root.Values.hostPaths.type }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end }}

{{/* Our init containers: the config check (with `config`), install, and follow when it is a native sidecar. */}}
{{- define "diginfractl.initContainers" -}}
{{- $v := .Values }}
{{- if $v.config }}
{{ include "diginfractl.validateContainer" . }}
{{- end }}
{{- if $v.artifacts.install.enabled }}
{{ include "diginfractl.installContainer" . }}
{{- end }}
{{- if and $v.artifacts.follow.enabled $v.artifacts.follow.nativeSidecar }}
{{ include "diginfractl.followContainer" (dict "root" . "sidecar" true) }}
{{- end }}
{{- end }}

{{/* Our regular containers: follow, unless it runs as a native sidecar. */}}
{{- define "diginfractl.containers" -}}
{{- if and .Values.artifacts.follow.enabled (not .Values.artifacts.follow.nativeSidecar) }}
{{ include "diginfractl.followContainer" (dict "root" . "sidecar" false) }}
{{- end }}
{{- end }}

{{/* Pod annotation value that changes with the config file and the verification keys beside it. */}}
{{- define "diginfractl.configChecksum" -}}
{{- print (include "diginfractl.config" .) (.Values.registry.cosignPublicKeys | default list | toJson) | sha256sum }}
{{- end }}

{{/*
Refuses values that cannot make a working pod, at template time. Used by the DaemonSet and by the
embedding templates (so the engine's chart gets the same messages).
*/}}
{{- define "diginfractl.checks" -}}
{{- $v := .Values }}
{{- $sidecar := and $v.artifacts.follow.enabled $v.artifacts.follow.nativeSidecar }}
{{- if and (not $v.artifacts.install.enabled) (not $v.artifacts.follow.enabled) }}
{{- fail "artifacts.install.enabled and artifacts.follow.enabled are both false: nothing to run" }}
{{- end }}
{{- if and $sidecar (semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "artifacts.follow.nativeSidecar=true needs Kubernetes 1.29 or later (native sidecar containers), and this cluster is %s: set artifacts.follow.nativeSidecar=false, and follow runs as a regular container" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and $v.engine.version $v.engine.versionsUrl }}
{{- fail "set engine.version or engine.versionsUrl, not both" }}
{{- end }}
{{- $mounted := dict $v.hostPaths.rulesfilesDir "rulesfilesDir" $v.hostPaths.pluginsDir "pluginsDir" $v.hostPaths.stateDir "stateDir" }}
{{- range $type, $path := $v.hostPaths.dirs }}
{{- with get $mounted $path }}
{{- fail (printf "hostPaths.dirs.%s is %s, which hostPaths.%s already mounts: give the type a directory of its own" $type $path .) }}
{{- end }}
{{- $_ := set $mounted $path (printf "dirs.%s" $type) }}
{{- end }}
{{- $fromFile := dig "registry" "auth" (dict) ($v.config | default dict) }}
{{- range $kind := list "basic" "oauth" }}
{{- if and (get $v.registry.auth $kind) (hasKey $fromFile $kind) }}
{{- fail (printf "registry.auth.%s and config.registry.auth.%s are both set: the Secret references replace the whole list, so keep the entries in one place" $kind $kind) }}
{{- end }}
{{- end }}
{{- if $v.pullThroughCache.enabled }}
{{- $host := include "diginfractl.cacheRegistryHost" . }}
{{- with get $v.registry.mirrors $host }}
{{- fail (printf "registry.mirrors already sends %s to %s: pullThroughCache.enabled would replace that mirror; remove one of them" $host .) }}
{{- end }}
{{- end }}
{{- if and $v.prometheusRule.enabled $v.artifacts.follow.cron (not $v.prometheusRule.staleAfter) }}
{{- fail "artifacts.follow.cron has no fixed interval: set prometheusRule.staleAfter (e.g. 48h) for the staleness alert" }}
{{- end }}
{{- end }}
