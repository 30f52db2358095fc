{{/* The chart name (nameOverride wins). */}}
{{- define "restore-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release-scoped name of every object, namespaced or cluster-wide: two releases never
collide. The release name alone when it already contains the chart name. */}}
{{- define "restore-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "restore-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "restore-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The pods of one shard's Deployment: the main Deployment keeps the plain selector labels;
a shard's name them apart (a different name), so no two Deployments select each other's pods. */}}
{{- define "restore-operator.shardSelectorLabels" -}}
{{- if .shard -}}
app.kubernetes.io/name: {{ include "restore-operator.name" .root }}-shard
app.kubernetes.io/instance: {{ .root.Release.Name }}
tenantatlas.io/shard: {{ .shard }}
{{- else -}}
{{ include "restore-operator.selectorLabels" .root }}
{{- end -}}
{{- end -}}

{{- define "restore-operator.labels" -}}
{{ include "restore-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Cluster-wide names (ClusterRoles, bindings, the admission policy) carry the full name. */}}
{{- define "restore-operator.clusterName" -}}
{{- printf "%s-%s" (include "restore-operator.fullname" .root) .suffix | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "restore-operator.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The namespaces whose Secrets the operator reads: [] means cluster-wide. */}}
{{- define "restore-operator.secretNamespaces" -}}
{{- if .Values.secretNamespaces -}}
{{- toJson .Values.secretNamespaces -}}
{{- else if .Values.watchReleaseNamespaceOnly -}}
{{- toJson (list .Release.Namespace) -}}
{{- else -}}
[]
{{- end -}}
{{- end -}}

{{/* A Go-style duration ("90s", "30m", "24h", "1h30m") as whole seconds, for PromQL. */}}
{{- define "restore-operator.seconds" -}}
{{- $total := 0 -}}
{{- range regexFindAll "[0-9]+[hms]" (toString .) -1 -}}
{{- $n := trimSuffix "h" (trimSuffix "m" (trimSuffix "s" .)) | int -}}
{{- if hasSuffix "h" . }}{{ $total = add $total (mul $n 3600) }}{{ else if hasSuffix "m" . }}{{ $total = add $total (mul $n 60) }}{{ else }}{{ $total = add $total $n }}{{ end -}}
{{- end -}}
{{- $total -}}
{{- end -}}
