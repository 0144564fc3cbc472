#!/usr/bin/env bash
# Validates the deployment files: docker/k8s against the Kubernetes API
# schemas, with no unknown fields, its kustomization and the TLS variant
# (docker/k8s-tls) rendered by `kubectl kustomize` (validate.mjs says what
# else it checks), and docker/compose.yaml against the Compose
# Specification (dclint, with the rules that fit a locally built image). Needs node, npm and kubectl (`./dev manifests`
# installs them); the npm packages are pinned by package-lock.json.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
rendered=$(mktemp) tls=$(mktemp)
trap 'rm -f "$rendered" "$tls"' EXIT
kubectl kustomize ../k8s >"$rendered"
kubectl kustomize ../k8s-tls >"$tls"
node validate.mjs ../k8s "$rendered" "k8s-tls=$tls"
npx --no-install dclint ../compose.yaml
echo "compose: ../compose.yaml valid (Compose Specification, dclint $(npx --no-install dclint --version))"
