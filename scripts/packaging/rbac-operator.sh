# shellcheck shell=bash
# Least privilege for real (issue 13): the chart rendered with watchNamespaces=[team-a] in its own
# release (dp-nsop in namespace dealpay-nsop); its ServiceAccount gets a real token (TokenRequest),
# and under that identity, not by impersonation:
#   - `kubectl auth can-i` says yes in team-a and no in namespace `other` and cluster-wide;
#   - a real `kubectl get secret -n other` is Forbidden (and the same in team-a works);
#   - `dealpay run --namespaces team-a` (target/debug/dealpay) against `dealpay sandbox` on loopback
#     pays the DealPayment of team-a, leaves the one of `other` untouched (no status but the CRD's
#     defaults, no finalizer, no Event, no charge), and is never refused anything by the apiserver;
#     told to watch `other` instead, it is refused (Forbidden) and pays nothing.
# Sourced by rbac.sh; uses SANDBOX_BIN (chroot-pay.sh) and the helpers of cluster.sh.

# shellcheck source=../lib/kube-state.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/kube-state.sh"

NSOP_RELEASE=dp-nsop
NSOP_NS=dealpay-nsop
NSOP_SA=dp-nsop-dealpay-operator
NSOP_KC="$OUT/kubeconfig-$NSOP_RELEASE"
NSOP_DIR="$OUT/rbac-operator"
ORDER_A=20261129000000000101
ORDER_OTHER=20261129000000000102

as_sa() { KUBECONFIG="$NSOP_KC" "$KUBECTL" "$@"; }

sa_can_i() { # yes|no VERB RESOURCE [flags...]: with the ServiceAccount's own token
  local want=$1; shift
  verdict "$want" "$(as_sa auth can-i "$@" 2>>"$OUT/logs/can-i.stderr")" "$@"
}

nsop_clean() { # DealPayments and grants of an earlier run; namespaces stay (as in rbac.sh)
  local ns
  for ns in team-a other; do
    K -n "$ns" patch dp rbac-proof --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
    K -n "$ns" delete dp rbac-proof --ignore-not-found >/dev/null
  done
  [[ ! -f $NSOP_DIR/rbac.yaml ]] || K delete -f "$NSOP_DIR/rbac.yaml" --ignore-not-found >/dev/null
}

nsop_identity() { # the chart's RBAC applied, a TokenRequest token for its ServiceAccount, a kubeconfig
  local tok
  rm -rf "$NSOP_DIR"; mkdir -p "$NSOP_DIR"
  helm_q template "$NSOP_RELEASE" "$CHART" --namespace "$NSOP_NS" --set 'watchNamespaces={team-a}' \
    >"$NSOP_DIR/rendered.yaml" || return 1
  select_to "$NSOP_DIR/rbac.yaml" "$RBAC_TEMPLATES" "$NSOP_DIR/rendered.yaml" || return 1
  ensure_ns "$NSOP_NS" team-a other || return 1
  K apply -f "$NSOP_DIR/rbac.yaml" || return 1
  printf '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}' \
    >"$NSOP_DIR/token-request.json"
  tok=$(K create --raw "/api/v1/namespaces/$NSOP_NS/serviceaccounts/$NSOP_SA/token" \
    -f "$NSOP_DIR/token-request.json" | jq -r .status.token) || return 1
  [[ $tok == ey* ]] || { echo "no token in the TokenRequest answer"; return 1; }
  write_kubeconfig "$NSOP_KC" dealpay-local "$KUBE_APISERVER_URL" "$DEALPAY_CLUSTER_DIR/pki/ca.crt" "$NSOP_SA" "$tok"
  echo "kubeconfig $NSOP_KC: ServiceAccount $NSOP_NS/$NSOP_SA, token from the TokenRequest API"
}

nsop_can_i() {
  local rc=0
  sa_can_i yes get secrets -n team-a || rc=1
  sa_can_i yes watch secrets -n team-a || rc=1
  sa_can_i yes watch "$DP" -n team-a || rc=1
  sa_can_i yes patch "$DP" --subresource=status -n team-a || rc=1
  sa_can_i yes update "$LEASES" -n "$NSOP_NS" || rc=1
  sa_can_i no get secrets -n other || rc=1
  sa_can_i no list secrets -n other || rc=1
  sa_can_i no list secrets --all-namespaces || rc=1
  sa_can_i no get secrets -n "$NSOP_NS" || rc=1
  sa_can_i no list "$DP" --all-namespaces || rc=1
  sa_can_i no get "$DP" -n other || rc=1
  return $rc
}

nsop_secrets() { # the sandbox's demo credentials in both namespaces (as admin)
  local ns
  for ns in team-a other; do
    K -n "$ns" create secret generic tencentcloud-credentials --from-literal=secretId=sandbox-secret-id \
      --from-literal=secretKey=sandbox-secret-key --dry-run=client -o yaml | K apply -f - >/dev/null || return 1
  done
}

nsop_get_secret() {
  local out rc
  nsop_secrets || return 1
  as_sa -n team-a get secret tencentcloud-credentials -o name || { echo "the token cannot read team-a"; return 1; }
  out=$(as_sa -n other get secret tencentcloud-credentials 2>&1); rc=$?
  echo "kubectl get secret -n other: exit $rc: $out"
  [[ $rc -ne 0 && $out == *Forbidden* && $out == *"system:serviceaccount:$NSOP_NS:$NSOP_SA"* ]]
}

dealpayment() { # NAMESPACE ORDER
  printf 'apiVersion: billing.dealpay.dev/v1alpha1\nkind: DealPayment\nmetadata:\n  name: rbac-proof\n  namespace: %s\n' "$1"
  printf 'spec:\n  orderIds: ["%s"]\n  credentials:\n    secretRef:\n      name: tencentcloud-credentials\n' "$2"
}

nsop_start() { # NAMESPACES: the sandbox with the two orders, then the operator under the ServiceAccount
  local url i port
  "$SANDBOX_BIN" sandbox --listen 127.0.0.1:0 >"$NSOP_DIR/sandbox.out" 2>"$NSOP_DIR/sandbox.err" &
  CLEANUP_PIDS+=($!)
  for ((i = 0; i < 100; i++)); do
    url=$(sed -n '1s/^listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*$/\1/p' "$NSOP_DIR/sandbox.out")
    [[ -n $url ]] && break
    sleep 0.1
  done
  [[ -n $url ]] || { cat "$NSOP_DIR/sandbox.err"; return 1; }
  echo "$url" >"$NSOP_DIR/sandbox.url"
  curl -fsS -X POST -H 'content-type: application/json' "$url/_sandbox/orders" -d \
    "[{\"orderId\":\"$ORDER_A\",\"account\":\"100000000001\",\"price\":100},{\"orderId\":\"$ORDER_OTHER\",\"account\":\"100000000001\",\"price\":100}]" \
    >/dev/null || return 1
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  env -u TENCENTCLOUD_SECRET_ID -u TENCENTCLOUD_SECRET_KEY KUBECONFIG="$NSOP_KC" "$SANDBOX_BIN" run \
    --endpoint "$url" --namespaces "$1" --leader-election true --lease-namespace "$NSOP_NS" \
    --lease-name "$NSOP_RELEASE" --metrics-addr "127.0.0.1:$port" --log-format json \
    2>"$NSOP_DIR/operator.log" &
  CLEANUP_PIDS+=($!)
  echo "sandbox $url, operator pid $! (log $NSOP_DIR/operator.log)"
}

nsop_pays_only_its_namespace() {
  local rc=0 url ledger v
  sandbox_bin || return 1
  dealpayment other "$ORDER_OTHER" | K apply -f - || return 1
  dealpayment team-a "$ORDER_A" | K apply -f - || return 1
  nsop_start team-a || return 1
  K -n team-a wait --for=condition=Ready dp/rbac-proof --timeout=180s || { tail -n 20 "$NSOP_DIR/operator.log"; rc=1; }
  url=$(<"$NSOP_DIR/sandbox.url")
  ledger=$(curl -fsS "$url/_sandbox/ledger" | jq -r '[.[].orderId] | sort | join(",")')
  expect_field "orders charged" "$ledger" "$ORDER_A" || rc=1
  # only the CRD's schema defaults, nothing the operator writes (conditions, observedGeneration 1)
  expect_field "status of other/rbac-proof" "$(K -n other get dp rbac-proof -o jsonpath='{.status}')" \
    '{"attempts":0,"observedGeneration":0}' || rc=1
  expect_field "events of other/rbac-proof" \
    "$(K -n other get events --field-selector involvedObject.name=rbac-proof -o name | wc -l)" 0 || rc=1
  expect_field "finalizers of other/rbac-proof" "$(K -n other get dp rbac-proof -o jsonpath='{.metadata.finalizers}')" "" || rc=1
  v=$(grep -c -iE 'forbidden|" 403|status: 403' "$NSOP_DIR/operator.log")
  expect_field "refusals in the operator log" "$v" 0 || rc=1
  cleanup
  return $rc
}

# teeth: the same identity told to watch `other` is refused there and pays nothing
nsop_refused_elsewhere() {
  local rc=0 i
  dealpayment other "$ORDER_OTHER" | K apply -f - || return 1
  nsop_start other || return 1
  for ((i = 0; i < 600; i++)); do
    grep -qi forbidden "$NSOP_DIR/operator.log" && break
    sleep 0.1
  done
  grep -i -m 3 forbidden "$NSOP_DIR/operator.log" || { echo "the operator was not refused"; rc=1; }
  expect_field "orders charged" "$(curl -fsS "$(<"$NSOP_DIR/sandbox.url")/_sandbox/ledger" | jq -r '[.[].orderId] | join(",")')" "" || rc=1
  expect_field "finalizers of other/rbac-proof" "$(K -n other get dp rbac-proof -o jsonpath='{.metadata.finalizers}')" "" || rc=1
  cleanup
  return $rc
}

rbac_operator_checks() {
  nsop_clean
  if check rbac-namespaced-serviceaccount-token nsop_identity; then
    check rbac-namespaced-serviceaccount-can-i nsop_can_i
    check rbac-namespaced-get-secret-elsewhere-forbidden nsop_get_secret
    check operator-namespaced-pays-only-its-namespace nsop_pays_only_its_namespace
    check operator-namespaced-refused-elsewhere nsop_refused_elsewhere
  fi
  nsop_clean
}
