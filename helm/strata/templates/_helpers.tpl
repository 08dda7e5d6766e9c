{{/* Names, labels and the pod pieces the three workloads share. */}}

{{- define "strata.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "strata.fullname" -}}
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

{{- define "strata.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "strata.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one role: (dict "root" $ "role" "dataplane") */}}
{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strata.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{- define "strata.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "strata.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "strata.secretName" -}}
{{- default (printf "%s-secrets" (include "strata.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{- define "strata.controlPlaneHeadless" -}}
{{- printf "%s-controlplane-headless" (include "strata.fullname" .) }}
{{- end }}

{{/*
Every control-plane pod's own URL (StatefulSet DNS names under the headless Service), comma-separated,
for control_plane.url: data planes follow whichever leads. With an HPA, up to its maxReplicas.
*/}}
{{- define "strata.controlPlaneUrls" -}}
{{- $n := int .Values.controlplane.replicas }}
{{- if .Values.controlplane.autoscaling.enabled }}
{{- $n = max $n (int .Values.controlplane.autoscaling.maxReplicas) }}
{{- end }}
{{- $urls := list }}
{{- range $i := until (int $n) }}
{{- $urls = append $urls (printf "http://%s-controlplane-%d.%s.%s.svc:%d" (include "strata.fullname" $) $i (include "strata.controlPlaneHeadless" $) $.Release.Namespace (int $.Values.config.grpcPort)) }}
{{- end }}
{{- join "," $urls }}
{{- end }}

{{/* control_plane.advertise_url of a control-plane pod: Kubernetes expands $(POD_IP) / $(POD_NAME). */}}
{{- define "strata.advertiseUrl" -}}
{{- if eq .Values.controlplane.advertise "podDNS" }}
{{- printf "http://$(POD_NAME).%s.%s.svc:%d" (include "strata.controlPlaneHeadless" .) .Release.Namespace (int .Values.config.grpcPort) }}
{{- else }}
{{- printf "http://$(POD_IP):%d" (int .Values.config.grpcPort) }}
{{- end }}
{{- end }}

{{/* Stops the render with a message that says what to set. */}}
{{- define "strata.checks" -}}
{{- if not .Values.config.sections.backends }}
{{- fail "config.sections.backends is empty: list the S3-compatible backends (a local disk per pod cannot be shared by the roles); see values.yaml" }}
{{- end }}
{{- if and (not .Values.secrets.existingSecret) (not .Values.secrets.databaseUrl) (not .Values.database.host) }}
{{- fail "no PostgreSQL configured: set secrets.databaseUrl (postgres://USER:PASSWORD@HOST:5432/DBNAME) or database.host plus secrets.databasePassword, or secrets.existingSecret" }}
{{- end }}
{{- if not .Values.worker.statusPort }}
{{- fail "worker.statusPort must be set: the worker serves /health, /ready and /metrics there (worker.listen)" }}
{{- end }}
{{- if not (has .Values.controlplane.advertise (list "podIP" "podDNS")) }}
{{- fail "controlplane.advertise must be podIP or podDNS" }}
{{- end }}
{{- if and .Values.secrets.databaseUrl .Values.database.host }}
{{- fail "set either secrets.databaseUrl or database.host, not both" }}
{{- end }}
{{- end }}

{{/*
Environment of every Strata container (the ${VAR}s of files/strata.yaml that do not come from
the Secret). tests/e2e/test_deploy_configs.py mirrors this list: keep them in step.
*/}}
{{- define "strata.env" -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: STRATA_DATA_DIR
  value: {{ .Values.dataDir.path | quote }}
- name: STRATA_S3_LISTEN
  value: {{ printf "0.0.0.0:%d" (int .Values.config.s3Port) | quote }}
- name: STRATA_GRPC_LISTEN
  value: {{ printf "0.0.0.0:%d" (int .Values.config.grpcPort) | quote }}
- name: STRATA_CONTROL_PLANE_URL
  value: {{ include "strata.controlPlaneUrls" . | quote }}
- name: STRATA_ADVERTISE_URL
  value: {{ include "strata.advertiseUrl" . | quote }}
- name: STRATA_LEASE_SECS
  value: {{ .Values.controlplane.leaseSecs | quote }}
- name: STRATA_WORKER_LISTEN
  value: {{ printf "0.0.0.0:%d" (int .Values.worker.statusPort) | quote }}
- name: STRATA_REGION
  value: {{ .Values.config.region | quote }}
- name: STRATA_DOMAIN
  value: {{ .Values.config.domain | quote }}
- name: STRATA_SHUTDOWN_GRACE_SECS
  value: {{ .Values.config.shutdownGraceSecs | quote }}
- name: STRATA_LOG_FORMAT
  value: {{ .Values.config.logFormat | quote }}
- name: STRATA_LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
{{- if .Values.database.host }}
- name: STRATA_DATABASE_HOST
  value: {{ .Values.database.host | quote }}
- name: STRATA_DATABASE_PORT
  value: {{ .Values.database.port | quote }}
- name: STRATA_DATABASE_USER
  value: {{ .Values.database.user | quote }}
- name: STRATA_DATABASE_NAME
  value: {{ .Values.database.dbname | quote }}
{{- end }}
- name: STRATA_DATABASE_MAX_CONNECTIONS
  value: {{ .Values.database.maxConnections | quote }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod template annotations: a config or secret change rolls the pods. */}}
{{- define "strata.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod-level fields shared by the roles (indent 6 under a pod template's spec). */}}
{{- define "strata.podSpec" -}}
serviceAccountName: {{ include "strata.serviceAccountName" . }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ add .Values.config.shutdownGraceSecs .Values.preStopSleepSeconds 5 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: config
    configMap:
      name: {{ include "strata.fullname" . }}-config
  - name: data
    emptyDir:
      sizeLimit: {{ .Values.dataDir.sizeLimit }}
      {{- with .Values.dataDir.medium }}
      medium: {{ . }}
      {{- end }}
  - name: tmp
    emptyDir: {}
{{- end }}

{{/* Container fields shared by the roles: (dict "root" $ "role" "worker"), indent 10. */}}
{{- define "strata.container" -}}
{{- $tag := (index .root.Values .role).imageTag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
image: "{{ .root.Values.image.repository }}:{{ $tag }}"
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
command: [{{ .root.Values.image.binary | quote }}]
args: ["serve", "--role", {{ .role | quote }}, "--config", "/etc/strata/strata.yaml"]
env:
  {{- include "strata.env" .root | nindent 2 }}
envFrom:
  - secretRef:
      name: {{ include "strata.secretName" .root }}
securityContext:
  {{- toYaml .root.Values.securityContext | nindent 2 }}
volumeMounts:
  - name: config
    mountPath: /etc/strata
    readOnly: true
  - name: data
    mountPath: {{ .root.Values.dataDir.path }}
  - name: tmp
    mountPath: /tmp
{{- if .root.Values.preStopSleepSeconds }}
lifecycle:
  preStop:
    sleep:
      seconds: {{ .root.Values.preStopSleepSeconds }}
{{- end }}
{{- end }}
