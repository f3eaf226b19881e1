# shellcheck shell=bash
# The Helm chart: helm lint --strict and helm template with the default and the non-default values
# (ci/nondefault-values.yaml), the values schema, NOTES.txt, the packaged .tgz, kubernetes-validate
# --strict on every built-in kind, and tests/chart.rs (the rendered objects in k8s-openapi types:
# security, probes, env, least-privilege RBAC, the CRD equal to crds/). Sourced.

K8S_SCHEMA_VERSIONS=(1.25.0 1.30.0)
BUILTIN_TEMPLATES='!templates/(servicemonitor|prometheusrule)\.yaml$'  # no built-in schema for those
RBAC_TEMPLATES='templates/(serviceaccount|rbac)\.yaml$'

crd_symlink_ok() {
  local link="$CHART/files/crd.yaml"
  if [[ -L $link ]]; then
    echo "files/crd.yaml -> $(readlink "$link")"
    [[ "$(readlink -f "$link")" == "$(readlink -f "$CRD_FILE")" ]] || { echo "symlink does not point at $CRD_FILE"; return 1; }
  fi
  cmp "$link" "$CRD_FILE"
}

packaged_chart_ok() { # helm package resolves the symlink: the .tgz carries the CRD itself
  local pkgdir="$OUT/package" tgz
  rm -rf "$pkgdir"; mkdir -p "$pkgdir"
  helm_q package "$CHART" --destination "$pkgdir" || return 1
  tgz=$(ls "$pkgdir"/*.tgz) || return 1
  echo "packaged $tgz"
  tar tzvf "$tgz"
  if tar tzvf "$tgz" | grep -q '^l'; then echo "package contains symlinks"; return 1; fi
  tar xzOf "$tgz" dealpay-operator/files/crd.yaml | cmp - "$CRD_FILE" || return 1
  if tar tzf "$tgz" | grep -q '/ci/'; then echo "ci/ values leaked into the package"; return 1; fi
  # the package renders exactly what the chart directory renders (tests/chart.rs checks that)
  "$HELM" template "$RELEASE" "$tgz" --namespace "$RELEASE_NS" >"$pkgdir/rendered.yaml" || return 1
  cmp "$pkgdir/rendered.yaml" "$OUT/rendered-default.yaml"
}

schema_rejects() { # --set ARG must make both lint and template fail on the schema
  local arg=$1 out
  if out=$(helm_q lint --strict "$CHART" --set "$arg" 2>&1); then
    echo "helm lint accepted --set $arg"; return 1
  fi
  echo "$out" | grep -q "schema" || { echo "lint failed, but not on the schema: $out"; return 1; }
  if out=$(helm_q template "$RELEASE" "$CHART" --set "$arg" 2>&1 >/dev/null); then
    echo "helm template accepted --set $arg"; return 1
  fi
  echo "$out" | grep -q "schema" || { echo "template failed, but not on the schema: $out"; return 1; }
  echo "rejected --set $arg: $out"
}

schema_rejects_all() {
  local a
  for a in "$@"; do schema_rejects "$a" || return 1; done
}

notes_ok() { # NOTES.txt renders and tells how to create the Secret, a DealPayment, and read status
  local notes="$OUT/notes.txt" want rc=0
  helm_q install "$RELEASE" "$CHART" --namespace "$RELEASE_NS" --dry-run=client "$@" \
    | sed -n '/^NOTES:/,$p' >"$notes" || return 1
  cat "$notes"
  for want in 'create secret generic tencentcloud-credentials' 'kind: DealPayment' 'get dp' \
      'wait --for=condition=Ready dp/'; do
    grep -qF -- "$want" "$notes" || { echo "NOTES.txt lacks: $want"; rc=1; }
  done
  return $rc
}

kube_validate() { # RENDERED: every built-in kind, against each Kubernetes version's schema
  local sel="${1%.yaml}.builtin.yaml" v
  select_to "$sel" "$BUILTIN_TEMPLATES" "$1" || return 1
  for v in "${K8S_SCHEMA_VERSIONS[@]}"; do
    "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "$sel" || return 1
    echo "kubernetes-validate --strict -k $v: ok"
  done
}

kube_validate_has_teeth() { # --strict must refuse an unknown field
  local f="$OUT/strict-teeth.yaml"
  printf 'apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: x\nnotAField: true\n' >"$f"
  ! "$VENV/bin/kubernetes-validate" --strict --quiet -k 1.30.0 "$f"
}

chart_rust_tests() { # tests/chart.rs, with this helm
  (cd "$REPO" && DEALPAY_HELM="$HELM" nice -n 10 cargo test --locked --test chart -- --include-ignored)
}

chart_checks() {
  local r_def="$OUT/rendered-default.yaml" r_non="$OUT/rendered-nondefault.yaml"
  check chart-crd-file-is-crds-dir crd_symlink_ok
  check helm-lint-default helm_q lint --strict "$CHART" --namespace "$RELEASE_NS"
  check helm-lint-nondefault helm_q lint --strict "$CHART" --namespace "$RELEASE_NS" -f "$NONDEFAULT"
  check helm-lint-kube-1.20 helm_q lint --strict "$CHART" --kube-version 1.20.0
  expect_fail helm-refuses-kube-1.19 helm_q template "$RELEASE" "$CHART" --kube-version 1.19.0
  check helm-template-default render "$r_def"
  check helm-template-nondefault render "$r_non" -f "$NONDEFAULT"
  check notes-default notes_ok
  check notes-nondefault notes_ok -f "$NONDEFAULT"
  check schema-rejects-rateLimit=fast schema_rejects rateLimit=fast
  check schema-rejects-wrong-types schema_rejects_all \
    replicaCount=two log.format=xml crds.install=maybe watchNamespaces=team-a \
    metrics.serviceMonitor.enabled=yes concurrency=0 noSuchValue=1
  check helm-package-carries-crd packaged_chart_ok
  # The default RBAC objects, for the cluster checks and the e2e tests (tests/e2e).
  check rbac-rendered-to-target-packaging select_to "$OUT/rbac.yaml" "$RBAC_TEMPLATES" "$r_def"
  check kubernetes-validate-strict-default kube_validate "$r_def"
  check kubernetes-validate-strict-nondefault kube_validate "$r_non"
  check kubernetes-validate-strict-has-teeth kube_validate_has_teeth
  check chart-objects-cargo-test-chart chart_rust_tests
}
