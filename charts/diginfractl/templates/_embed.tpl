{{/*
Embedding in the engine's chart: the public named templates. The engine's chart lists this chart as a
dependency (with embedding.enabled=true in its values for it) and includes each template with the
dependency's own scope, `.Subcharts.diginfractl`, so names, values and the image tag are ours:

  initContainers:
    {{- include "diginfractl.embed.initContainers" .Subcharts.diginfractl | nindent 4 }}
  containers:
    - name: engine ...    (mounts diginfractl-rulesfiles and diginfractl-plugins)
    {{- include "diginfractl.embed.containers" .Subcharts.diginfractl | nindent 4 }}
  volumes:
    {{- include "diginfractl.embed.volumes" .Subcharts.diginfractl | nindent 4 }}

test/k8s/engine-chart/ is a worked example, rendered and validated by the test suite.
*/}}

{{/* Init containers: the config check (with `config`), install, and follow as a native sidecar. */}}
{{- define "diginfractl.embed.initContainers" -}}
{{- include "diginfractl.checks" . }}
{{- include "diginfractl.initContainers" . }}
{{- end }}

{{/* Regular containers: follow, unless it is a native sidecar (then this renders nothing). */}}
{{- define "diginfractl.embed.containers" -}}
{{- include "diginfractl.containers" . }}
{{- end }}

{{/* The volumes our containers mount, named with embedding.namePrefix. */}}
{{- define "diginfractl.embed.volumes" -}}
{{- include "diginfractl.volumes" . }}
{{- end }}

{{/* The config file (the ConfigMap this chart renders holds it); its checksum suits a pod annotation. */}}
{{- define "diginfractl.embed.config" -}}
{{- include "diginfractl.config" . }}
{{- end }}

{{/* A checksum of the config and keys, for a pod annotation that rolls the pods when they change. */}}
{{- define "diginfractl.embed.configChecksum" -}}
{{- include "diginfractl.configChecksum" . }}
{{- end }}
