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
Names inside the pod. In the engine's pod (embedding.enabled) our containers and volumes carry a prefix,
so they cannot clash with the engine's own, and the metrics port a name of its own.
*/}}
{{- define "diginfractl.prefix" -}}
{{- if .Values.embedding.enabled }}{{ .Values.embedding.namePrefix }}{{ end }}
{{- end }}
{{- define "diginfractl.portName" -}}
{{- if .Values.embedding.enabled }}{{ .Values.embedding.portName }}{{ else }}metrics{{ end }}
{{- end }}
