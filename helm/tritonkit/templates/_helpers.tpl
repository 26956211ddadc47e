{{/*
Named templates for the tritonkit chart. Each starts with a usage line.
*/}}

{{/* Usage: include "tritonkit.name" . -- chart name, overridable by nameOverride. */}}
{{- define "tritonkit.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Usage: include "tritonkit.fullname" . -- release-qualified name, at most 50 characters so
suffixes ("-gateway", "-locust-worker") stay within 63. */}}
{{- define "tritonkit.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Usage: include "tritonkit.chart" . */}}
{{- define "tritonkit.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Usage: include "tritonkit.selectorLabels" (dict "root" . "component" "triton") */}}
{{- define "tritonkit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tritonkit.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Usage: include "tritonkit.labels" (dict "root" . "component" "triton") */}}
{{- define "tritonkit.labels" -}}
helm.sh/chart: {{ include "tritonkit.chart" .root }}
{{ include "tritonkit.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
tritonkit.dev/model: {{ include "tritonkit.servedName" .root }}
{{- end }}

{{/* Usage: include "tritonkit.serviceAccountName" . */}}
{{- define "tritonkit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tritonkit.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Usage: include "tritonkit.image" (dict "root" . "image" .Values.gateway.image)
-- repository@digest or repository:tag, each falling back to .Values.image. */}}
{{- define "tritonkit.image" -}}
{{- $img := .image | default dict }}
{{- $repo := default .root.Values.image.repository $img.repository }}
{{- $digest := ternary ($img.digest | default "") (.root.Values.image.digest | default "") (hasKey $img "repository") }}
{{- if $digest }}
{{- printf "%s@%s" $repo $digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .root.Values.image.tag $img.tag) }}
{{- end }}
{{- end }}

{{/* Usage: include "tritonkit.servedName" . -- the ensemble's served name (deployment.name or model). */}}
{{- define "tritonkit.servedName" -}}
{{- $d := required "deployment.model is required (a tritonkit catalog model)" .Values.deployment.model }}
{{- default $d .Values.deployment.name }}
{{- end }}

{{/* Usage: include "tritonkit.gpusPerPod" . -- GPUs one Triton pod requests. */}}
{{- define "tritonkit.gpusPerPod" -}}
{{- $n := int .Values.gpu.count }}
{{- if gt $n (int .Values.gpu.perNode) }}{{ int .Values.gpu.perNode }}{{ else }}{{ $n }}{{ end }}
{{- end }}

{{/* Usage: include "tritonkit.nodesPerInstance" . -- pods per instance (LeaderWorkerSet size). */}}
{{- define "tritonkit.nodesPerInstance" -}}
{{- $n := int .Values.gpu.count }}
{{- $per := int .Values.gpu.perNode }}
{{- if gt $n $per }}
{{- if mod $n $per }}
{{- fail (printf "gpu.count (%d = TP x PP) must be a multiple of gpu.perNode (%d) for a multi-node instance" $n $per) }}
{{- end }}
{{- div $n $per }}
{{- else }}1{{ end }}
{{- end }}

{{/* Usage: if eq (include "tritonkit.multiNode" .) "true" */}}
{{- define "tritonkit.multiNode" -}}
{{- gt (int (include "tritonkit.nodesPerInstance" .)) 1 }}
{{- end }}

{{/* Usage: include "tritonkit.engineKey" . -- engine cache key: model-gpu-tpN-ppN-precision. */}}
{{- define "tritonkit.engineKey" -}}
{{- $d := .Values.deployment }}
{{- $gpu := (($d.gpu | default dict).kind | default "h100") }}
{{- $par := $d.parallelism | default dict }}
{{- printf "%s-%s-tp%d-pp%d-%s" $d.model $gpu (int ($par.tp | default 1)) (int ($par.pp | default 1)) ($d.precision | default "auto") }}
{{- end }}

{{/* Usage: include "tritonkit.buildDir" . -- `tritonkit build run --out` folder for this key
(checkpoint/, engine/, logs/). */}}
{{- define "tritonkit.buildDir" -}}
{{- printf "%s/%s" .Values.persistence.mountPath (include "tritonkit.engineKey" .) }}
{{- end }}

{{/* Usage: include "tritonkit.engineDir" . -- where the engines and their manifest.json live. */}}
{{- define "tritonkit.engineDir" -}}
{{- printf "%s/engine" (include "tritonkit.buildDir" .) }}
{{- end }}

{{/* Usage: include "tritonkit.isTensorrtLLM" . -- "true" for engine: tensorrtllm. */}}
{{- define "tritonkit.isTensorrtLLM" -}}
{{- eq (.Values.deployment.engine | default "reference") "tensorrtllm" }}
{{- end }}

{{/* Usage: include "tritonkit.deploymentYaml" . -- the deployment file, with
tensorrtllm.engine_dir pointed at the engine cache when the engines volume is on. */}}
{{- define "tritonkit.deploymentYaml" -}}
{{- $d := deepCopy .Values.deployment }}
{{- if and (eq (include "tritonkit.isTensorrtLLM" .) "true") .Values.persistence.enabled }}
{{- $t := get $d "tensorrtllm" | default dict }}
{{- $_ := set $t "engine_dir" (include "tritonkit.engineDir" .) }}
{{- $_ := set $d "tensorrtllm" $t }}
{{- end }}
{{- toYaml $d }}
{{- end }}

{{/* Usage: include "tritonkit.pvcName" . */}}
{{- define "tritonkit.pvcName" -}}
{{- default (printf "%s-engines" (include "tritonkit.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/* Usage: include "tritonkit.tritonUrl" . -- in-cluster gRPC address of Triton. */}}
{{- define "tritonkit.tritonUrl" -}}
{{- printf "%s:%d" (include "tritonkit.fullname" .) (int .Values.ports.grpc) }}
{{- end }}

{{/* Usage: include "tritonkit.podSecurity" . -- pod-level settings shared by every pod. */}}
{{- define "tritonkit.podSecurity" -}}
serviceAccountName: {{ include "tritonkit.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Usage: include "tritonkit.containerSecurity" . -- a container's securityContext body. */}}
{{- define "tritonkit.containerSecurity" -}}
{{- toYaml .Values.securityContext }}
{{- end }}

{{/* Usage: include "tritonkit.scheduling" . -- GPU node selection, tolerations, runtime class. */}}
{{- define "tritonkit.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if or .Values.gpu.products .Values.affinity }}
affinity:
  {{- if .Values.gpu.products }}
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - key: nvidia.com/gpu.product
              operator: In
              values:
                {{- toYaml .Values.gpu.products | nindent 16 }}
  {{- end }}
  {{- with .Values.affinity }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.runtimeClassName }}
runtimeClassName: {{ . }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/* Usage: include "tritonkit.installEnv" . -- PATH/PYTHONPATH for a pip-installed tritonkit. */}}
{{- define "tritonkit.installEnv" -}}
{{- if .Values.tritonkitInstall.enabled }}
- name: PYTHONPATH
  value: /opt/tritonkit
- name: PATH
  value: /opt/tritonkit/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
{{- end }}
{{- end }}

{{/* Usage: include "tritonkit.installInit" . -- init container installing tritonkit (optional). */}}
{{- define "tritonkit.installInit" -}}
{{- if .Values.tritonkitInstall.enabled }}
- name: install-tritonkit
  image: {{ include "tritonkit.image" (dict "root" .) }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: [python3, -m, pip, install, --no-cache-dir, --target, /opt/tritonkit]
  args:
    {{- toYaml (concat .Values.tritonkitInstall.pipArgs (list .Values.tritonkitInstall.pipSpec)) | nindent 4 }}
  env:
    - {name: HOME, value: /tmp/home}
  securityContext:
    {{- include "tritonkit.containerSecurity" . | nindent 4 }}
  resources:
    requests: {cpu: 500m, memory: 1Gi}
    limits: {memory: 2Gi}
  volumeMounts:
    - {name: tritonkit, mountPath: /opt/tritonkit}
    - {name: tmp, mountPath: /tmp}
{{- end }}
{{- end }}

{{/* Usage: include "tritonkit.commonEnv" . -- environment every tritonkit container gets. */}}
{{- define "tritonkit.commonEnv" -}}
- {name: HOME, value: /tmp/home}
- {name: TMPDIR, value: /tmp}
- {name: HF_HOME, value: /tmp/hf}
- {name: TRITONKIT_DEPLOYMENT, value: /config/deployment.yaml}
- {name: TRITONKIT_ADMIN_KEY_FILE, value: /etc/tritonkit/admin/admin-key}
{{- include "tritonkit.installEnv" . }}
{{- end }}

{{/* Usage: include "tritonkit.adminKeySecret" . -- the Secret holding Triton's admin-API key. */}}
{{- define "tritonkit.adminKeySecret" -}}
{{- .Values.adminKey.existingSecret | default (printf "%s-admin" (include "tritonkit.fullname" .)) -}}
{{- end }}

{{/* Usage: include "tritonkit.adminKeyVolume" . -- the key as a file (not an env variable). */}}
{{- define "tritonkit.adminKeyVolume" -}}
- name: admin-key
  secret:
    secretName: {{ include "tritonkit.adminKeySecret" . }}
    defaultMode: 0440
    items:
      - {key: {{ .Values.adminKey.secretKey }}, path: admin-key}
{{- end }}

{{/* Usage: include "tritonkit.engineWaitInit" . -- waits until the build Job wrote manifest.json. */}}
{{- define "tritonkit.engineWaitInit" -}}
{{- if and .Values.persistence.enabled .Values.engineBuild.waitForEngines (eq (include "tritonkit.isTensorrtLLM" .) "true") }}
- name: wait-for-engines
  image: {{ include "tritonkit.image" (dict "root" .) }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: [sh, -c]
  args:
    - |
      until [ -f "{{ include "tritonkit.engineDir" . }}/manifest.json" ]; do
        echo "waiting for engines in {{ include "tritonkit.engineDir" . }} (build Job)"; sleep 30
      done
  securityContext:
    {{- include "tritonkit.containerSecurity" . | nindent 4 }}
  resources:
    requests: {cpu: 10m, memory: 16Mi}
    limits: {memory: 64Mi}
  volumeMounts:
    - {name: engines, mountPath: {{ .Values.persistence.mountPath }}, readOnly: true}
{{- end }}
{{- end }}

{{/* Usage: include "tritonkit.tritonVolumes" . -- the Triton pod's volumes. */}}
{{- define "tritonkit.tritonVolumes" -}}
- name: config
  configMap:
    name: {{ include "tritonkit.fullname" . }}-deployment
{{ include "tritonkit.adminKeyVolume" . }}
- name: tmp
  emptyDir: {}
- name: work
  emptyDir: {}
{{- if or .Values.shm.enabled (gt (int .Values.gpu.count) 1) }}
- name: dshm
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.shm.sizeLimit }}
{{- end }}
{{- if .Values.persistence.enabled }}
- name: engines
  persistentVolumeClaim:
    claimName: {{ include "tritonkit.pvcName" . }}
{{- end }}
{{- if eq .Values.modelRepository.source "configMap" }}
- name: model-repository
  configMap:
    name: {{ required "modelRepository.configMap.name is required when modelRepository.source is configMap" .Values.modelRepository.configMap.name }}
    {{- with .Values.modelRepository.configMap.items }}
    items:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- else if eq .Values.modelRepository.source "volume" }}
- name: model-repository
  {{- if not .Values.modelRepository.volume }}
  {{- fail "modelRepository.volume (a volume source, e.g. persistentVolumeClaim: {claimName: repo}) is required when modelRepository.source is volume" }}
  {{- end }}
  {{- toYaml .Values.modelRepository.volume | nindent 2 }}
{{- end }}
{{- if .Values.tritonkitInstall.enabled }}
- name: tritonkit
  emptyDir: {}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Usage: include "tritonkit.tritonMounts" . -- the Triton container's volume mounts. */}}
{{- define "tritonkit.tritonMounts" -}}
- {name: config, mountPath: /config, readOnly: true}
- {name: admin-key, mountPath: /etc/tritonkit/admin, readOnly: true}
- {name: tmp, mountPath: /tmp}
- {name: work, mountPath: /work}
{{- if or .Values.shm.enabled (gt (int .Values.gpu.count) 1) }}
- {name: dshm, mountPath: /dev/shm}
{{- end }}
{{- if .Values.persistence.enabled }}
- {name: engines, mountPath: {{ .Values.persistence.mountPath }}, readOnly: true}
{{- end }}
{{- if ne .Values.modelRepository.source "render" }}
- {name: model-repository, mountPath: {{ .Values.modelRepository.mountPath }}, readOnly: true}
{{- end }}
{{- if .Values.tritonkitInstall.enabled }}
- {name: tritonkit, mountPath: /opt/tritonkit, readOnly: true}
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Usage: include "tritonkit.gpuResources" (dict "root" . "resources" .Values.resources)
-- the given resources with this instance's per-pod GPU request and limit added. */}}
{{- define "tritonkit.gpuResources" -}}
{{- $r := deepCopy (.resources | default dict) }}
{{- $gpus := int (include "tritonkit.gpusPerPod" .root) }}
{{- if gt $gpus 0 }}
{{- $lim := get $r "limits" | default dict }}
{{- $_ := set $lim .root.Values.gpu.resourceName $gpus }}
{{- $_ := set $r "limits" $lim }}
{{- $req := get $r "requests" | default dict }}
{{- $_ := set $req .root.Values.gpu.resourceName $gpus }}
{{- $_ := set $r "requests" $req }}
{{- end }}
{{- toYaml $r }}
{{- end }}

{{/* Usage: include "tritonkit.ports" . -- container ports of a Triton server. */}}
{{- define "tritonkit.ports" -}}
- {name: http, containerPort: {{ .Values.ports.http }}, protocol: TCP}
- {name: grpc, containerPort: {{ .Values.ports.grpc }}, protocol: TCP}
- {name: metrics, containerPort: {{ .Values.ports.metrics }}, protocol: TCP}
{{- end }}

{{/* Usage: include "tritonkit.probes" . -- startup, liveness and readiness probes. */}}
{{- define "tritonkit.probes" -}}
startupProbe:
  {{- toYaml .Values.startupProbe | nindent 2 }}
livenessProbe:
  {{- toYaml .Values.livenessProbe | nindent 2 }}
readinessProbe:
  {{- toYaml .Values.readinessProbe | nindent 2 }}
{{- end }}

{{/* Usage: include "tritonkit.serveArgs" . -- arguments after `tritonkit serve` (it renders the
repository from the deployment into the /work emptyDir, then starts tritonserver, under mpirun
in leader mode when TP x PP > 1). */}}
{{- define "tritonkit.serveArgs" -}}
- --deployment
- /config/deployment.yaml
- --http-port
- {{ .Values.ports.http | quote }}
- --grpc-port
- {{ .Values.ports.grpc | quote }}
- --metrics-port
- {{ .Values.ports.metrics | quote }}
- --repo
- /work/model_repository
{{- with .Values.serve.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Usage: include "tritonkit.smallResources" . -- requests/limits for helper pods. */}}
{{- define "tritonkit.smallResources" -}}
requests: {cpu: 50m, memory: 64Mi}
limits: {memory: 256Mi}
{{- end }}

{{/* Usage: include "tritonkit.tritonCommand" . -- the Triton container's command and args:
`tritonkit serve`, or plain tritonserver on a pre-rendered repository (modelRepository.source
configMap/volume; single rank only). */}}
{{- define "tritonkit.tritonCommand" -}}
{{- if eq .Values.modelRepository.source "render" }}
command: [tritonkit, serve]
args:
  {{- include "tritonkit.serveArgs" . | nindent 2 }}
{{- else }}
{{- if gt (int .Values.gpu.count) 1 }}
{{- fail (printf "modelRepository.source %s serves a pre-rendered repository with one tritonserver; TP x PP = %d needs source: render (tritonkit serve launches the ranks)" .Values.modelRepository.source (int .Values.gpu.count)) }}
{{- end }}
command: [tritonserver]
args:
  - --model-repository={{ .Values.modelRepository.mountPath }}
  - --http-port={{ .Values.ports.http }}
  - --grpc-port={{ .Values.ports.grpc }}
  - --metrics-port={{ .Values.ports.metrics }}
  - --disable-auto-complete-config
  {{- with .Values.serve.extraArgs }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- end }}
