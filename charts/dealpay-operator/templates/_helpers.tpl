{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "dealpay-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name when it already contains the chart name
(`helm install dealpay-operator ...` gives `dealpay-operator`), else RELEASE-CHART.
*/}}
{{- define "dealpay-operator.fullname" -}}
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

{{- define "dealpay-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object of the release carries. */}}
{{- define "dealpay-operator.labels" -}}
helm.sh/chart: {{ include "dealpay-operator.chart" . }}
{{ include "dealpay-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: dealpay
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The labels the Deployment selects its pods by: never change them in an upgrade. */}}
{{- define "dealpay-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dealpay-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dealpay-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dealpay-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* image: REPOSITORY:TAG or REPOSITORY@DIGEST. */}}
{{- define "dealpay-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "dealpay-operator.leaseName" -}}
{{- default (include "dealpay-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* The namespace of the default-credentials Secret (release namespace unless set). */}}
{{- define "dealpay-operator.defaultCredentialsNamespace" -}}
{{- default .Release.Namespace .Values.defaultCredentials.secretNamespace }}
{{- end }}

{{/* Name of the ConfigMap/Secret holding the extra CA bundle, or "" when no CA is set. */}}
{{- define "dealpay-operator.caSource" -}}
{{- if .Values.ca.pem }}configMap{{ else if .Values.ca.existingConfigMap }}configMap{{ else if .Values.ca.existingSecret }}secret{{ end }}
{{- end }}

{{- define "dealpay-operator.caName" -}}
{{- if .Values.ca.pem }}{{ include "dealpay-operator.fullname" . }}-ca{{ else if .Values.ca.existingConfigMap }}{{ .Values.ca.existingConfigMap }}{{ else if .Values.ca.existingSecret }}{{ .Values.ca.existingSecret }}{{ end }}
{{- end }}

{{/*
The namespaces the operator reads DealPayments, Secrets and writes Events in when
watchNamespaces is set (sorted, unique). Empty means the whole cluster.
*/}}
{{- define "dealpay-operator.watchNamespaces" -}}
{{- .Values.watchNamespaces | uniq | sortAlpha | join "," }}
{{- end }}

{{/* The operator's rules on DealPayments, Events and Secrets (ClusterRole or per-namespace Role). */}}
{{- define "dealpay-operator.operatorRules" -}}
- apiGroups: ["billing.dealpay.dev"]
  resources: ["dealpayments"]
  # patch: only metadata.finalizers (the billing.dealpay.dev/payment-record finalizer)
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["billing.dealpay.dev"]
  resources: ["dealpayments/status"]
  verbs: ["get", "patch", "update"]
# The payment journal: created before each PayDeals, settled once (JSON Patch guarded by a test).
# No delete: receipts outlive their DealPayments (retention is a later step, see the README).
- apiGroups: ["billing.dealpay.dev"]
  resources: ["paymentreceipts"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/* Labels and annotations added to the CRD's metadata (at the indentation of `name:`). */}}
{{- define "dealpay-operator.crdMetadata" -}}
labels:
{{ include "dealpay-operator.labels" . | indent 2 }}
{{- if .Values.crds.keep }}
annotations:
  helm.sh/resource-policy: keep
  argocd.argoproj.io/sync-options: Prune=false,Delete=false
  kustomize.toolkit.fluxcd.io/prune: disabled
{{- end }}
{{- end }}
