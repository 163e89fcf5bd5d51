{{/* Rules needed in every namespace whose resources the operator serves. */}}
{{- define "atoma-operator.watchRules" -}}
- apiGroups: ["atoma.network"]
  resources: ["stacksettlements", "attestations"]
  # patch: kopf's finalizers and progress/diff-base annotations. No create/update/delete.
  verbs: ["get", "list", "watch", "patch"{{ if .Values.retention.enabled }}, "delete"{{ end }}]
- apiGroups: ["atoma.network"]
  resources: ["stacksettlements/status", "attestations/status"]
  # update: optimistic-concurrency writes of submission intent (resourceVersion checked).
  verbs: ["get", "patch", "update"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# Proof inputs referenced by a resource (configMapKeyRef): read by name only, never
# list/watch. Secrets (secretKeyRef) are a separate Role per allowed namespace (rbac.yaml).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
{{- end }}

{{/* Cluster-scoped reads and the spend ledger of SettlementPolicy enforcement. */}}
{{- define "atoma-operator.policyRules" -}}
- apiGroups: ["atoma.network"]
  resources: ["settlementpolicies"]
  verbs: ["get", "list"]
# The spend ledger (status.period), written with resourceVersion preconditions.
- apiGroups: ["atoma.network"]
  resources: ["settlementpolicies/status"]
  verbs: ["get", "update"]
# Label selectors of policies match namespace labels.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get"]
{{- end }}

{{/* Cluster-scoped reads kopf uses to notice CRDs being installed or changed. */}}
{{- define "atoma-operator.crdRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- end }}
