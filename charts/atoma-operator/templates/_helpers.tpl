{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "atoma-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name used for every object of this chart. */}}
{{- define "atoma-operator.fullname" -}}
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

{{- define "atoma-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "atoma-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "atoma-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "atoma-operator.labels" -}}
helm.sh/chart: {{ include "atoma-operator.chart" . }}
{{ include "atoma-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: atoma
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "atoma-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "atoma-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "atoma-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding the signing key (existing, or the dev-only one). */}}
{{- define "atoma-operator.signingKeySecret" -}}
{{- if .Values.signingKey.create }}
{{- printf "%s-signing-key" (include "atoma-operator.fullname" .) }}
{{- else }}
{{- .Values.signingKey.existingSecret }}
{{- end }}
{{- end }}

{{- define "atoma-operator.keyMountDir" -}}/var/run/secrets/atoma-operator/signing-key{{- end }}
{{- define "atoma-operator.configMountDir" -}}/etc/atoma-operator{{- end }}

{{/*
The operator's Settings as YAML: keys are the Settings field names
(atoma_operator.settings.Settings), so ATOMA_CONFIG_FILE can point at this file.
Nulls are left out so the operator's own defaults apply. The key file path is not here:
the Deployment sets ATOMA_KEY_FILE next to the volume that provides it.
*/}}
{{- define "atoma-operator.settingsYaml" -}}
{{- $v := .Values }}
{{- $badges := list }}
{{- range $v.atoma.badges }}
{{- $badges = append $badges (dict "object_id" .objectId "node_small_id" (int64 .nodeSmallId)) }}
{{- end }}
{{- $cfg := dict
  "sui_rpc_url" $v.sui.rpcUrl
  "sui_request_timeout_seconds" $v.sui.requestTimeoutSeconds
  "badges" $badges
  "gas_budget" (int64 $v.gas.budget)
  "gas_coins" (default (list) $v.gas.coins)
  "concurrency" (int64 $v.concurrency)
  "namespaces" (default (list) $v.watchNamespaces)
  "state_configmap" $v.stateConfigMap
  "leader_lease" $v.rbac.leaseName
  "follower_interval_seconds" $v.follower.intervalSeconds
  "follower_page_size" (int64 $v.follower.pageSize)
  "retry_base_seconds" $v.retry.baseSeconds
  "retry_max_seconds" $v.retry.maxSeconds
  "metrics_port" (int64 $v.metrics.port)
  "health_port" (int64 $v.health.port)
  "log_format" $v.logFormat
}}
{{- with $v.atoma.packageId }}{{ $_ := set $cfg "package_id" . }}{{ end }}
{{- if and $v.retention.enabled (not (kindIs "invalid" $v.retention.ttlSecondsAfterFinished)) }}{{ $_ := set $cfg "ttl_seconds_after_finished" $v.retention.ttlSecondsAfterFinished }}{{ end }}
{{- if $v.sui.caBundle }}{{ $_ := set $cfg "sui_ca_file" (printf "%s/sui-ca.crt" (include "atoma-operator.configMountDir" $)) }}{{ end }}
{{- with $v.sui.executeTimeoutSeconds }}{{ $_ := set $cfg "sui_execute_timeout_seconds" . }}{{ end }}
{{- with $v.sui.streamTimeoutSeconds }}{{ $_ := set $cfg "sui_stream_timeout_seconds" . }}{{ end }}
{{- if not (kindIs "invalid" $v.follower.startCheckpoint) }}{{ $_ := set $cfg "follower_start_checkpoint" (int64 $v.follower.startCheckpoint) }}{{ end }}
{{- with $v.atoma.typeOriginPackageId }}{{ $_ := set $cfg "type_origin_package_id" . }}{{ end }}
{{- with $v.atoma.dbId }}{{ $_ := set $cfg "atoma_db_id" . }}{{ end }}
{{- if not (kindIs "invalid" $v.gas.price) }}{{ $_ := set $cfg "gas_price" (int64 $v.gas.price) }}{{ end }}
{{- with $v.signingKey.derivationPath }}{{ $_ := set $cfg "key_derivation_path" . }}{{ end }}
{{- /* JSON (a subset of YAML) so that strings stay strings: toYaml leaves 0x… ids unquoted,
and YAML 1.1 readers such as PyYAML then load them as hexadecimal integers. */}}
{{- toPrettyJson $cfg }}
{{- end }}

{{/* The chart's SettlementPolicy: name, namespaces (JSON list) and badges (JSON list). */}}
{{- define "atoma-operator.policyName" -}}
{{- default (printf "%s-%s" (include "atoma-operator.fullname" .) .Release.Namespace) .Values.policy.name | trunc 253 | trimSuffix "-" }}
{{- end }}

{{- define "atoma-operator.policyNamespaces" -}}
{{- if .Values.policy.namespaces }}{{ toJson .Values.policy.namespaces }}{{ else }}{{ toJson (list .Release.Namespace) }}{{ end }}
{{- end }}

{{- define "atoma-operator.policyBadges" -}}
{{- $ids := list }}
{{- if .Values.policy.nodeSmallIds }}
{{- range .Values.policy.nodeSmallIds }}{{ $ids = append $ids (int64 .) }}{{ end }}
{{- else }}
{{- range .Values.atoma.badges }}{{ $ids = append $ids (int64 .nodeSmallId) }}{{ end }}
{{- end }}
{{- toJson (uniq $ids) }}
{{- end }}

{{/* Namespaces where the operator may `get` proof Secrets (rbac.readProofSecrets). */}}
{{- define "atoma-operator.proofSecretNamespaces" -}}
{{- if .Values.rbac.proofSecretNamespaces }}{{ toJson .Values.rbac.proofSecretNamespaces }}{{ else }}{{ include "atoma-operator.policyNamespaces" . }}{{ end }}
{{- end }}
