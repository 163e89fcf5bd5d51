{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "atoma-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Release-scoped name used for every object of this chart. fullnameOverride wins; otherwise
the release name alone when it already names the chart (it contains the chart name, or is
a prefix of it: `helm install atoma` gives atoma-operator, not atoma-atoma-operator), else
<release>-<chart name>.
*/}}
{{- define "atoma-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else if hasPrefix .Release.Name $name }}
{{- $name | trunc 63 | trimSuffix "-" }}
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

{{/* The API Deployment's selector: its own, so the operator's selectors never match it. */}}
{{- define "atoma-operator.apiSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-api" (include "atoma-operator.name" .) }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The chart's labels plus commonLabels (which cannot replace the chart's own). */}}
{{- define "atoma-operator.labels" -}}
{{- $labels := dict
  "helm.sh/chart" (include "atoma-operator.chart" .)
  "app.kubernetes.io/name" (include "atoma-operator.name" .)
  "app.kubernetes.io/instance" .Release.Name
  "app.kubernetes.io/version" .Chart.AppVersion
  "app.kubernetes.io/component" "operator"
  "app.kubernetes.io/part-of" "atoma"
  "app.kubernetes.io/managed-by" .Release.Service
}}
{{- toYaml (merge $labels (default (dict) .Values.commonLabels)) }}
{{- end }}

{{- define "atoma-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "atoma-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* [registry/]repository, then @digest (wins) or :tag (default: the appVersion). */}}
{{- define "atoma-operator.image" -}}
{{- $repo := .Values.image.repository }}
{{- with .Values.image.registry }}{{ $repo = printf "%s/%s" (trimSuffix "/" .) $repo }}{{ end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The port of sui.rpcUrl: explicit, else 443 for https:// and 80 for http://. */}}
{{- define "atoma-operator.suiPort" -}}
{{- $u := urlParse .Values.sui.rpcUrl }}
{{- $port := regexFind ":[0-9]+$" $u.host | trimPrefix ":" }}
{{- if $port }}{{ $port }}{{ else if eq $u.scheme "http" }}80{{ else }}443{{ end }}
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
  "reconcile_workers" (int64 $v.reconcileWorkers)
  "events" $v.events
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
  "log_level" $v.logLevel
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
