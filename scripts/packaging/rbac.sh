# shellcheck shell=bash
# The chart's RBAC on the real apiserver, proven with `kubectl auth can-i`:
#   - the default (cluster-wide) objects, as the operator's identity of scripts/local-cluster
#     (KUBECONFIG_OPERATOR: system:serviceaccount:dealpay-system:dealpay-operator): what it needs, and
#     nothing more;
#   - the namespaced objects (watchNamespaces, the non-default values), by impersonation;
#   - rbac-operator.sh: the namespaced chart's ServiceAccount with a real token, and the operator
#     itself running under it.
# Sourced.

# shellcheck source=rbac-operator.sh
. "$(dirname "${BASH_SOURCE[0]}")/rbac-operator.sh"

DP=dealpayments.billing.dealpay.dev
LEASES=leases.coordination.k8s.io

verdict() { # WANT GOT ARGS...: one line per question, and whether the answer is the wanted one
  local want=$1 got=$2; shift 2
  printf '%-4s %-4s can-i %s\n' "$([[ $got == "$want" ]] && echo ok || echo BAD)" "$got" "$*"
  [[ $got == "$want" ]]
}

can_i() { # yes|no VERB RESOURCE [flags...]: as the operator (KUBECONFIG_OPERATOR)
  local want=$1; shift
  verdict "$want" "$(KUBECONFIG="$KUBECONFIG_OPERATOR" "$KUBECTL" auth can-i "$@" 2>>"$OUT/logs/can-i.stderr")" "$@"
}

can_i_as() { # yes|no AS-NS VERB RESOURCE [flags...]: impersonating the operator SA of namespace AS-NS
  local want=$1 ns=$2; shift 2
  verdict "$want" "$(K auth can-i "$@" --as "system:serviceaccount:$ns:$RELEASE" \
    --as-group system:serviceaccounts --as-group "system:serviceaccounts:$ns" 2>>"$OUT/logs/can-i.stderr")" "$@"
}

rbac_apply() {
  [[ -s $OUT/rbac.yaml ]] || return 1
  ensure_ns "$RELEASE_NS" || return 1
  K apply -f "$OUT/rbac.yaml"
}

rbac_proof() {
  local rc=0 L=$LEASES
  # what the operator needs
  can_i yes list "$DP" --all-namespaces || rc=1
  can_i yes watch "$DP" --all-namespaces || rc=1
  can_i yes get "$DP" -n default || rc=1
  can_i yes patch "$DP" --subresource=status -n default || rc=1
  can_i yes update "$DP" --subresource=status -n team-x || rc=1
  can_i yes create events.events.k8s.io -n default || rc=1
  can_i yes patch events.events.k8s.io -n default || rc=1
  can_i yes create events -n default || rc=1
  can_i yes patch events -n team-x || rc=1
  can_i yes get secrets -n default || rc=1
  can_i yes list secrets --all-namespaces || rc=1
  can_i yes watch secrets --all-namespaces || rc=1
  can_i yes get "$L" -n "$RELEASE_NS" || rc=1
  can_i yes create "$L" -n "$RELEASE_NS" || rc=1
  can_i yes update "$L" -n "$RELEASE_NS" || rc=1
  can_i yes patch "$L" -n "$RELEASE_NS" || rc=1
  # and nothing more
  can_i no delete "$DP" -n default || rc=1
  can_i no create "$DP" -n default || rc=1
  can_i yes patch "$DP" -n default || rc=1   # metadata.finalizers (src/controller/finalizer.rs)
  can_i no update "$DP" -n default || rc=1
  can_i no deletecollection "$DP" -n default || rc=1
  can_i no delete "$DP" --subresource=status -n default || rc=1
  can_i no create secrets -n default || rc=1
  can_i no update secrets -n default || rc=1
  can_i no delete secrets -n "$RELEASE_NS" || rc=1
  can_i no list pods -n default || rc=1
  can_i no get configmaps -n "$RELEASE_NS" || rc=1
  can_i no delete events -n default || rc=1
  can_i no update "$L" -n kube-system || rc=1
  can_i no create "$L" -n default || rc=1
  can_i no delete "$L" -n "$RELEASE_NS" || rc=1
  can_i no create customresourcedefinitions.apiextensions.k8s.io || rc=1
  can_i no create clusterrolebindings.rbac.authorization.k8s.io || rc=1
  can_i no create serviceaccounts/token -n "$RELEASE_NS" || rc=1
  can_i no '*' '*' --all-namespaces || rc=1
  return $rc
}

rbac_namespaced_proof() { # watchNamespaces mode (the nondefault values), in its own release namespace
  local ns=dealpay-nstest f="$OUT/rbac-namespaced.yaml" rc=0
  local L=$LEASES
  helm_q template "$RELEASE" "$CHART" --namespace "$ns" -f "$NONDEFAULT" >"$OUT/rendered-nstest.yaml" || return 1
  select_to "$f" "$RBAC_TEMPLATES" "$OUT/rendered-nstest.yaml" || return 1
  ensure_ns "$ns" team-a team-b || return 1
  K apply -f "$f" || return 1
  can_i_as yes "$ns" watch "$DP" -n team-a || rc=1
  can_i_as yes "$ns" patch "$DP" --subresource=status -n team-b || rc=1
  can_i_as yes "$ns" create events.events.k8s.io -n team-b || rc=1
  can_i_as yes "$ns" list secrets -n team-a || rc=1
  can_i_as yes "$ns" get secrets/tencentcloud-default -n "$ns" || rc=1
  can_i_as yes "$ns" update "$L" -n "$ns" || rc=1
  can_i_as no "$ns" list "$DP" --all-namespaces || rc=1
  can_i_as no "$ns" list "$DP" -n team-c || rc=1
  can_i_as no "$ns" get secrets -n team-c || rc=1
  can_i_as no "$ns" get secrets/other -n "$ns" || rc=1
  can_i_as no "$ns" list secrets -n "$ns" || rc=1
  can_i_as no "$ns" create "$L" -n team-a || rc=1
  can_i_as no "$ns" delete "$DP" -n team-a || rc=1
  # leave no extra grants behind (namespaces stay: this cluster has no namespace controller)
  K delete -f "$f" --ignore-not-found >/dev/null || rc=1
  return $rc
}

rbac_checks() {
  if check rbac-apply-default rbac_apply; then
    check rbac-can-i-operator-identity rbac_proof
  fi
  check rbac-can-i-namespaced-mode rbac_namespaced_proof
  rbac_operator_checks
}
