# shellcheck shell=bash
# Against scripts/local-cluster (kube-apiserver 1.20): kubectl apply --dry-run=server of everything
# rendered, the CRD applied for real (the e2e tests and scripts/gitops-check use it), and a real Helm
# lifecycle in a scratch release: install (adopting the CRD kubectl created), an upgrade that must
# upgrade the CRD, an uninstall that must keep it. The RBAC proofs are in rbac.sh. Sourced.

SERVER_TEMPLATES='!templates/(crd|receipt-crd|servicemonitor|prometheusrule)\.yaml$'  # CRDs applied apart; no ServiceMonitor CRD here
HT_RELEASE=dp-helmtest
HT_NS=dealpay-helmtest
CRD_NAME=dealpayments.billing.dealpay.dev

K() { "$KUBECTL" "$@"; }

ensure_ns() {
  local ns
  for ns in "$@"; do
    K create namespace "$ns" --dry-run=client -o yaml | K apply -f - || return 1
  done
}

dry_run_crd() {
  local crd="$OUT/crd-default.yaml"
  # Both CRDs: DealPayment and PaymentReceipt (the payment journal).
  select_to "$crd" 'templates/(receipt-)?crd\.yaml$' "$OUT/rendered-default.yaml" || return 1
  # kubectl 1.20's client-side validation does not know x-kubernetes-validations: --validate=false.
  if K apply --dry-run=server -f "$crd" >"$OUT/logs/crd-client-validation.log" 2>&1; then
    echo "note: kubectl accepted the CRD with client-side validation too"
  else
    echo "as documented, kubectl $(K version --client --short 2>/dev/null) refuses it without --validate=false:"
    head -n 3 "$OUT/logs/crd-client-validation.log"
  fi
  K apply --dry-run=server --validate=false -f "$crd"
}

apply_crd() { # for real, so that DealPayments can be dry-run (and the e2e tests find it)
  K apply --validate=false -f "$OUT/crd-default.yaml" || return 1
  K wait --for condition=established --timeout=60s "crd/$CRD_NAME" crd/paymentreceipts.billing.dealpay.dev
}

dry_run_rest() { # RENDERED
  local sel="${1%.yaml}.server.yaml"
  select_to "$sel" "$SERVER_TEMPLATES" "$1" || return 1
  K apply --dry-run=server -f "$sel"
}

dry_run_example() { K apply --dry-run=server -n default -f "$REPO/examples/dealpayment.yaml"; }

crd_field() { K get crd "$CRD_NAME" -o "jsonpath=$1"; }

expect_field() { # WHAT GOT WANT
  echo "$1: $2"
  [[ $2 == "$3" ]] || { echo "  want $3"; return 1; }
}

with_printer_column() { # CHART-COPY: its CRD gets an extra printer column, Suspended
  awk '/^    - jsonPath: \.metadata\.creationTimestamp$/ && !done {
         print "    - jsonPath: .spec.suspend"; print "      name: Suspended"; print "      type: boolean"; done = 1 }
       { print } END { exit (done ? 0 : 1) }' "$1/files/crd.yaml" >"$1/files/crd.yaml.new" \
    && mv "$1/files/crd.yaml.new" "$1/files/crd.yaml"
}

helm_lifecycle() {
  local tmp rc=0 v
  # 1.20: the CRD's x-kubernetes-validations is unknown to kubectl-style validation and to the API
  # server's apply schema, so: no OpenAPI validation, and client-side apply (Helm 4 defaults to
  # server-side apply). docs/install.md says so.
  local common=(--namespace "$HT_NS" --disable-openapi-validation --server-side=false --set image.tag=0.1.0)
  helm_q uninstall "$HT_RELEASE" --namespace "$HT_NS" >/dev/null 2>&1 || true
  helm_q install "$HT_RELEASE" "$CHART" --create-namespace --take-ownership "${common[@]}" || return 1
  expect_field "CRD owned by release" "$(crd_field '{.metadata.annotations.meta\.helm\.sh/release-name}')" "$HT_RELEASE" || rc=1
  expect_field "CRD resource-policy" "$(crd_field '{.metadata.annotations.helm\.sh/resource-policy}')" keep || rc=1
  expect_field "CRD argocd sync-options" "$(crd_field '{.metadata.annotations.argocd\.argoproj\.io/sync-options}')" \
    Prune=false,Delete=false || rc=1
  expect_field "CRD flux prune" "$(crd_field '{.metadata.annotations.kustomize\.toolkit\.fluxcd\.io/prune}')" disabled || rc=1
  K -n "$HT_NS" get deployment,serviceaccount,service,role,rolebinding -o name || rc=1
  K get clusterrole,clusterrolebinding "$HT_RELEASE-dealpay-operator" -o name || rc=1
  # upgrade with a changed CRD
  tmp=$(mktemp -d "$OUT/helmtest.XXXXXX")
  cp -rL "$CHART" "$tmp/chart"
  with_printer_column "$tmp/chart" || rc=1
  helm_q upgrade "$HT_RELEASE" "$tmp/chart" "${common[@]}" --set rateLimit=7 || rc=1
  v=$(crd_field '{.spec.versions[0].additionalPrinterColumns[*].name}')
  echo "after upgrade, printer columns: $v"; [[ $v == *Suspended* ]] || { echo "helm upgrade did not upgrade the CRD"; rc=1; }
  v=$(K -n "$HT_NS" get deployment "$HT_RELEASE-dealpay-operator" -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="DEALPAY_RATE")].value}')
  expect_field "after upgrade, DEALPAY_RATE" "$v" 7 || rc=1
  # back to the chart as it is, the way docs/install.md upgrades: the values set before stay
  helm_q upgrade "$HT_RELEASE" "$CHART" "${common[@]}" --reset-then-reuse-values || rc=1
  v=$(crd_field '{.spec.versions[0].additionalPrinterColumns[*].name}')
  echo "after upgrade back, printer columns: $v"; [[ $v != *Suspended* ]] || rc=1
  v=$(K -n "$HT_NS" get deployment "$HT_RELEASE-dealpay-operator" -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="DEALPAY_RATE")].value}')
  expect_field "after --reset-then-reuse-values, DEALPAY_RATE" "$v" 7 || rc=1
  rm -rf "$tmp"
  # uninstall keeps the CRD (helm.sh/resource-policy: keep) and removes the rest
  helm_q uninstall "$HT_RELEASE" --namespace "$HT_NS" || rc=1
  K get crd "$CRD_NAME" -o name || { echo "helm uninstall deleted the CRD"; rc=1; }
  if K get clusterrole "$HT_RELEASE-dealpay-operator" -o name 2>/dev/null; then echo "ClusterRole left behind"; rc=1; fi
  if K -n "$HT_NS" get deployment "$HT_RELEASE-dealpay-operator" -o name 2>/dev/null; then echo "Deployment left behind"; rc=1; fi
  # the kept CRD still equals crds/ (the e2e tests use it)
  K apply --validate=false -f "$OUT/crd-default.yaml" || rc=1
  return $rc
}

cluster_up() { # idempotent; one retry, e.g. when another `up` was starting it at the same time
  "$REPO/scripts/local-cluster" up && return 0
  echo "local-cluster up failed; retrying once in 10 s"
  sleep 10
  "$REPO/scripts/local-cluster" up
}

cluster_checks() {
  if [[ ${PACKAGING_SKIP_CLUSTER:-0} == 1 ]]; then
    skip cluster "PACKAGING_SKIP_CLUSTER=1"
    return 0
  fi
  log "starting the local cluster (scripts/local-cluster up; first time builds kube 1.20: ~5 min)"
  check local-cluster-up cluster_up || return 0
  eval "$("$REPO/scripts/local-cluster" env)"
  [[ -x ${KUBECTL:-} && -f ${KUBECONFIG:-} && -f ${KUBECONFIG_OPERATOR:-} ]] \
    || { record FAIL local-cluster-env "KUBECTL/KUBECONFIG/KUBECONFIG_OPERATOR not usable"; return 0; }
  export KUBECONFIG
  check cluster-namespaces ensure_ns "$RELEASE_NS" team-a team-b
  check dry-run-server-crd-validate-false dry_run_crd
  check apply-crd-established apply_crd
  check dry-run-server-default dry_run_rest "$OUT/rendered-default.yaml"
  check dry-run-server-nondefault dry_run_rest "$OUT/rendered-nondefault.yaml"
  check dry-run-server-example-dealpayment dry_run_example
  rbac_checks
  check helm-install-upgrade-uninstall helm_lifecycle
}
