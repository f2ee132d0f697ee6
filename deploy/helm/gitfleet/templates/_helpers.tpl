{{/* The chart's name. */}}
{{- define "gitfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, used for every object. */}}
{{- define "gitfleet.fullname" -}}
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

{{/* Labels on every object. */}}
{{- define "gitfleet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gitfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the pods. */}}
{{- define "gitfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gitfleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "gitfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gitfleet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The arguments of `gitfleet run`. */}}
{{- define "gitfleet.args" -}}
- run
- {{ printf "--repo=%v" (required "repo.url is required: the fleet repository's URL" .Values.repo.url) | quote }}
- {{ printf "--branch=%v" .Values.repo.branch | quote }}
{{- with .Values.repo.path }}
- {{ printf "--path=%v" . | quote }}
{{- end }}
- --state-dir=/var/lib/gitfleet
- {{ printf "--poll-interval=%v" .Values.repo.pollInterval | quote }}
- {{ printf "--listen=0.0.0.0:%v" .Values.service.port | quote }}
- {{ printf "--log-format=%v" .Values.logFormat | quote }}
- {{ printf "--author-name=%v" .Values.git.authorName | quote }}
- {{ printf "--author-email=%v" .Values.git.authorEmail | quote }}
- {{ printf "--git-username=%v" .Values.git.username | quote }}
- {{ printf "--git-timeout=%v" .Values.git.timeout | quote }}
{{- if .Values.git.sshKey.secretName }}
- {{ printf "--ssh-key=/etc/gitfleet/git/%s" .Values.git.sshKey.key | quote }}
{{- with .Values.git.sshKey.knownHostsKey }}
- {{ printf "--ssh-known-hosts=/etc/gitfleet/git/%s" . | quote }}
{{- end }}
{{- end }}
{{- if .Values.git.ca.configMapName }}
- {{ printf "--git-ca-file=/etc/gitfleet/git-ca/%s" .Values.git.ca.key | quote }}
{{- end }}
{{- if .Values.clusters.kubeconfig.secretName }}
- {{ printf "--kubeconfig=/etc/gitfleet/kubeconfig/%s" .Values.clusters.kubeconfig.key | quote }}
{{- end }}
{{- if .Values.signing.key.secretName }}
- {{ printf "--signing-key=/etc/gitfleet/signing/%s" .Values.signing.key.key | quote }}
{{- end }}
{{- if .Values.signing.allowedSigners.configMapName }}
- {{ printf "--allowed-signers=/etc/gitfleet/allowed-signers/%s" .Values.signing.allowedSigners.key | quote }}
{{- end }}
{{- if .Values.signing.gpgKeys.configMapName }}
- {{ printf "--gpg-keys=/etc/gitfleet/gpg-keys/%s" .Values.signing.gpgKeys.key | quote }}
{{- end }}
{{- if .Values.webhook.secretName }}
- {{ printf "--webhook-secret-file=/etc/gitfleet/webhook/%s" .Values.webhook.key | quote }}
{{- if gt (int .Values.replicaCount) 1 }}
- {{ printf "--webhook-peers=%s-peers.%s.svc:%v" (include "gitfleet.fullname" .) .Release.Namespace .Values.service.port | quote }}
{{- end }}
{{- end }}
{{- if .Values.notifications.secretName }}
- {{ printf "--notify=/etc/gitfleet/notify/%s" .Values.notifications.key | quote }}
{{- end }}
{{- with .Values.verification }}
{{- if .prometheusUrl }}
- {{ printf "--prometheus-url=%s" .prometheusUrl | quote }}
{{- if .headersSecretName }}
- {{ printf "--prometheus-headers-file=/etc/gitfleet/prometheus/%s" .headersKey | quote }}
{{- end }}
{{- end }}
- {{ printf "--measurement-timeout=%v" .measurementTimeout | quote }}
{{- end }}
{{- if .Values.leaderElection.enabled }}
- --leader-elect
- {{ printf "--leader-elect-resource-name=%v" .Values.leaderElection.leaseName | quote }}
- {{ printf "--leader-elect-lease-duration=%v" .Values.leaderElection.leaseDuration | quote }}
- {{ printf "--leader-elect-renew-deadline=%v" .Values.leaderElection.renewDeadline | quote }}
- {{ printf "--leader-elect-retry-period=%v" .Values.leaderElection.retryPeriod | quote }}
{{- if gt (int .Values.shards) 1 }}
- {{ printf "--shards=%d" (int .Values.shards) | quote }}
{{- end }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}
