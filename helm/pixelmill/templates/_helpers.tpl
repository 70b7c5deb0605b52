{{/*
Names. Every named template of the chart is prefixed "pixelmill." so none can clash with a
parent chart's.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "pixelmill.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: fullnameOverride, else the release name when it already
contains the chart name, else "<release>-<chart>". Trimmed so suffixes such as "-preview"
still fit the 63 characters of a DNS label.
*/}}
{{- define "pixelmill.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "pixelmill.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels of the service's pods. Selectors are immutable, so they hold only what
never changes over the life of a release: the name and the instance.
*/}}
{{- define "pixelmill.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pixelmill.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object the chart makes. */}}
{{- define "pixelmill.labels" -}}
helm.sh/chart: {{ include "pixelmill.chart" . }}
{{ include "pixelmill.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "pixelmill.name" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Pod labels of the chart's Jobs (migration, load test, helm test, preview load). Their
app.kubernetes.io/name differs from the service's so that no Service, PodDisruptionBudget
or ReplicaSet selector of the service ever matches a Job's pod.
Call with (dict "root" $ "component" "migrate").
*/}}
{{- define "pixelmill.jobPodLabels" -}}
app.kubernetes.io/name: {{ printf "%s-%s" (include "pixelmill.name" .root) .component | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: {{ include "pixelmill.name" .root }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Names of the Services. */}}
{{- define "pixelmill.previewServiceName" -}}
{{- printf "%s-preview" (include "pixelmill.fullname" .) }}
{{- end }}
{{- define "pixelmill.canaryServiceName" -}}
{{- printf "%s-canary" (include "pixelmill.fullname" .) }}
{{- end }}
{{- define "pixelmill.stableServiceName" -}}
{{- printf "%s-stable" (include "pixelmill.fullname" .) }}
{{- end }}
{{- define "pixelmill.metricsServiceName" -}}
{{- printf "%s-metrics" (include "pixelmill.fullname" .) }}
{{- end }}

{{/* In-cluster base URL of the main Service. */}}
{{- define "pixelmill.serviceUrl" -}}
{{- printf "http://%s.%s.svc:%v" (include "pixelmill.fullname" .) .Release.Namespace .Values.service.port }}
{{- end }}

{{/* "true" when the service runs as a blue-green Rollout. */}}
{{- define "pixelmill.blueGreen" -}}
{{- if and .Values.rollouts.enabled (eq .Values.rollouts.strategy "blueGreen") }}true{{ end }}
{{- end }}

{{/* "true" when the service runs as a canary Rollout. */}}
{{- define "pixelmill.canary" -}}
{{- if and .Values.rollouts.enabled (eq .Values.rollouts.strategy "canary") }}true{{ end }}
{{- end }}

{{/* "true" when the canary routes through the ALB. */}}
{{- define "pixelmill.albTrafficRouting" -}}
{{- if and (include "pixelmill.canary" .) .Values.rollouts.canary.trafficRouting.alb.enabled }}true{{ end }}
{{- end }}

{{/* "true" when the canary has its own stable and canary Services. */}}
{{- define "pixelmill.canaryServices" -}}
{{- if and (include "pixelmill.canary" .) (or .Values.rollouts.canary.services (include "pixelmill.albTrafficRouting" .)) }}true{{ end }}
{{- end }}

{{/* The workload's kind and API version; the HPA targets the same. */}}
{{- define "pixelmill.workloadKind" -}}
{{- if .Values.rollouts.enabled }}Rollout{{ else }}Deployment{{ end }}
{{- end }}
{{- define "pixelmill.workloadApiVersion" -}}
{{- if .Values.rollouts.enabled }}argoproj.io/v1alpha1{{ else }}apps/v1{{ end }}
{{- end }}

{{/* The image reference: by digest when one is given, else by tag. */}}
{{- define "pixelmill.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The ServiceAccount of the service's pods. */}}
{{- define "pixelmill.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pixelmill.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret with DATABASE_URL: made by the ExternalSecret, or an existing one. */}}
{{- define "pixelmill.secretName" -}}
{{- if .Values.secrets.externalSecret.enabled }}
{{- printf "%s-env" (include "pixelmill.fullname" .) }}
{{- else if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- fail "pixelmill: set secrets.existingSecret or enable secrets.externalSecret; the service needs DATABASE_URL" }}
{{- end }}
{{- end }}

{{/* Grace period: long enough for the preStop sleep, the drain and a margin. */}}
{{- define "pixelmill.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.lifecycle.terminationGracePeriodSeconds }}
{{- add .Values.lifecycle.preStopSleepSeconds .Values.config.shutdownDrainSeconds 10 }}
{{- else }}
{{- .Values.lifecycle.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
Renders the service runs at once (PIXELMILL_MAX_RENDERS_IN_FLIGHT); its render pool has
exactly that many threads. A non-zero config.maxRendersInFlight is used as is. 0 derives it
from the container's CPU limit rounded up to whole cores, at least 1 ("2" -> 2,
"1500m" -> 2, "500m" -> 1): more renders than cores only share the cores and hold more
memory. The schema requires resources.limits.cpu, so the derived value always exists.
*/}}
{{- define "pixelmill.rendersInFlight" -}}
{{- $explicit := int64 (default 0 .Values.config.maxRendersInFlight) }}
{{- if gt $explicit 0 }}
{{- $explicit }}
{{- else }}
{{- $limit := dig "limits" "cpu" "" (.Values.resources | default dict) }}
{{- $cpu := toString $limit }}
{{- $cores := 0.0 }}
{{- if regexMatch "^[0-9]+(\\.[0-9]+)?m$" $cpu }}
{{- $cores = divf (trimSuffix "m" $cpu | float64) 1000 }}
{{- else if regexMatch "^[0-9]+(\\.[0-9]+)?$" $cpu }}
{{- $cores = float64 $cpu }}
{{- else }}
{{- fail (printf "pixelmill: config.maxRendersInFlight 0 derives the renders in flight from resources.limits.cpu, which must then be cores or millicores (\"2\", \"1.5\", \"1500m\"), not %q" $cpu) }}
{{- end }}
{{- max 1 (ceil $cores) }}
{{- end }}
{{- end }}

{{/* Hardened security context of every pod the chart makes. */}}
{{- define "pixelmill.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end }}

{{/* Hardened security context of every container the chart makes. */}}
{{- define "pixelmill.containerSecurityContext" -}}
{{ toYaml .Values.securityContext }}
{{- end }}

{{/* Checksum of the ConfigMap, so a config change rolls the pods. */}}
{{- define "pixelmill.configChecksum" -}}
{{- include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}

{{/*
Settings the schema cannot express. Included by the workload template, so a bad
combination fails the render with a message instead of a broken release.
*/}}
{{- define "pixelmill.validate" -}}
{{- if not .Values.config.storage }}
{{- fail "pixelmill: config.storage is required (s3://bucket/prefix)" }}
{{- end }}
{{- if and .Values.rollouts.enabled (not .Values.metrics.serviceMonitor.enabled) }}
{{- fail "pixelmill: rollouts need metrics.serviceMonitor.enabled: the rollout analysis judges the metrics it scrapes, and would pass on none" }}
{{- end }}
{{- if and .Values.metrics.prometheusRule.enabled (not .Values.metrics.serviceMonitor.enabled) }}
{{- fail "pixelmill: metrics.prometheusRule needs metrics.serviceMonitor.enabled: the alerts select the series it scrapes" }}
{{- end }}
{{- if and (include "pixelmill.albTrafficRouting" .) (not .Values.ingress.enabled) }}
{{- fail "pixelmill: rollouts.canary.trafficRouting.alb needs ingress.enabled" }}
{{- end }}
{{- if and .Values.secrets.externalSecret.enabled (not .Values.secrets.externalSecret.database.remoteKey) }}
{{- fail "pixelmill: secrets.externalSecret.database.remoteKey is required" }}
{{- end }}
{{- if and .Values.secrets.externalSecret.enabled (not .Values.secrets.externalSecret.database.host) }}
{{- fail "pixelmill: secrets.externalSecret.database.host is required" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- fail "pixelmill: autoscaling.maxReplicas must be at least autoscaling.minReplicas" }}
{{- end }}
{{- end }}

{{/*
The pod template shared by the Rollout and the Deployment.
Call with (dict "root" $ "hashLabel" "pod-template-hash"): hashLabel is the label the
controller adds to each revision's pods, used to spread every revision on its own.
*/}}
{{- define "pixelmill.podTemplate" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "pixelmill.selectorLabels" $root | nindent 4 }}
    app.kubernetes.io/component: server
    app.kubernetes.io/part-of: {{ include "pixelmill.name" $root }}
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "pixelmill.configChecksum" $root }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "pixelmill.serviceAccountName" $root }}
  # The service reaches AWS through IRSA, whose web identity token is mounted by the EKS
  # pod identity webhook; it never calls the Kubernetes API.
  automountServiceAccountToken: false
  # No PIXELMILL_SERVICE_HOST, PIXELMILL_PORT_80_TCP, ... for the Services of the namespace:
  # the service finds nothing through them (it is reached, it does not reach), and they
  # once stopped every pod at start as unknown settings.
  enableServiceLinks: false
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  {{- with $root.Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- include "pixelmill.podSecurityContext" $root | nindent 4 }}
  terminationGracePeriodSeconds: {{ include "pixelmill.terminationGracePeriodSeconds" $root }}
  containers:
    - name: pixelmill
      image: {{ include "pixelmill.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args:
        {{- toYaml $root.Values.args | nindent 8 }}
      ports:
        - name: http
          containerPort: {{ $root.Values.service.targetPort }}
          protocol: TCP
      envFrom:
        - configMapRef:
            name: {{ include "pixelmill.fullname" $root }}
        - secretRef:
            name: {{ include "pixelmill.secretName" $root }}
      startupProbe:
        httpGet:
          path: /healthz
          port: http
        periodSeconds: {{ $root.Values.probes.startup.periodSeconds }}
        failureThreshold: {{ $root.Values.probes.startup.failureThreshold }}
        timeoutSeconds: {{ $root.Values.probes.startup.timeoutSeconds }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: http
        periodSeconds: {{ $root.Values.probes.liveness.periodSeconds }}
        failureThreshold: {{ $root.Values.probes.liveness.failureThreshold }}
        timeoutSeconds: {{ $root.Values.probes.liveness.timeoutSeconds }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
        periodSeconds: {{ $root.Values.probes.readiness.periodSeconds }}
        failureThreshold: {{ $root.Values.probes.readiness.failureThreshold }}
        timeoutSeconds: {{ $root.Values.probes.readiness.timeoutSeconds }}
      {{- if gt (int $root.Values.lifecycle.preStopSleepSeconds) 0 }}
      lifecycle:
        # Keep serving while the load balancer deregisters the pod; SIGTERM comes after.
        # The image has no shell, hence the kubelet's own sleep action.
        preStop:
          sleep:
            seconds: {{ $root.Values.lifecycle.preStopSleepSeconds }}
      {{- end }}
      resources:
        {{- toYaml $root.Values.resources | nindent 8 }}
      securityContext:
        {{- include "pixelmill.containerSecurityContext" $root | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ $root.Values.tmpSizeLimit }}
  {{- if $root.Values.topologySpread.zones }}
  topologySpreadConstraints:
    - maxSkew: {{ $root.Values.topologySpread.maxSkew }}
      topologyKey: topology.kubernetes.io/zone
      whenUnsatisfiable: {{ $root.Values.topologySpread.whenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- include "pixelmill.selectorLabels" $root | nindent 10 }}
      matchLabelKeys:
        - {{ .hashLabel }}
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "pixelmill.selectorLabels" $root | nindent 10 }}
      matchLabelKeys:
        - {{ .hashLabel }}
  {{- end }}
  {{- with $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* Egress rule to the cluster DNS (CoreDNS in kube-system on EKS). */}}
{{- define "pixelmill.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
      podSelector:
        matchLabels:
          k8s-app: kube-dns
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end }}
