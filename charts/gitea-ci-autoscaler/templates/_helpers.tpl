{{- define "gca.name" -}}gitea-ci-autoscaler{{- end -}}
{{- define "gca.fullname" -}}{{ .Release.Name }}-gitea-ci-autoscaler{{- end -}}
{{- define "gca.labels" -}}
app.kubernetes.io/name: {{ include "gca.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "gca.selector" -}}
app.kubernetes.io/name: {{ include "gca.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "gca.serviceAccount" -}}{{ default (include "gca.fullname" .) .Values.serviceAccount.name }}{{- end -}}
{{- define "gca.secret" -}}{{ default (include "gca.fullname" .) .Values.existingSecret }}{{- end -}}
{{- define "gca.lease" -}}{{ default (include "gca.fullname" .) .Values.leaseName }}{{- end -}}
