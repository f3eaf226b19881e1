# shellcheck shell=bash
# scripts/local-cluster's processes: kube-apiserver 1.20 and kube-controller-manager (etcd comes from
# scripts/lib/proc.sh), and what "ready" means for each. Sourced by scripts/local-cluster.

apiserver_ready() {
  local tok
  tok=$(admin_token) || return 1
  [[ "$(api_get "$PKI/ca.crt" "$tok" "$SERVER_URL/readyz")" == ok ]]
}

# the clusterrole-aggregation controller has filled ClusterRole `view`: the controller-manager is
# up and working
kcm_working() {
  local tok
  tok=$(admin_token) || return 1
  api_get "$PKI/ca.crt" "$tok" "$SERVER_URL/apis/rbac.authorization.k8s.io/v1/clusterroles/view" | grep -q '"verbs"'
}

kcm_ok() { [[ $WITH_KCM == 0 ]] || live_pid kube-controller-manager >/dev/null; }

start_apiserver() {
  spawn kube-apiserver "$BIN_DIR/kube-apiserver" \
    --etcd-servers="$ETCD_URL" \
    --bind-address="$HOST" \
    --advertise-address="$HOST" \
    --secure-port="$APISERVER_PORT" \
    --insecure-port=0 \
    --tls-cert-file="$PKI/apiserver.crt" \
    --tls-private-key-file="$PKI/apiserver.key" \
    --token-auth-file="$TOKENS" \
    --authorization-mode=RBAC \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --service-account-issuer="$SA_ISSUER" \
    --service-account-signing-key-file="$PKI/sa.key" \
    --service-account-key-file="$PKI/sa.pub" \
    --api-audiences="$SA_ISSUER" \
    --disable-admission-plugins=ServiceAccount \
    --allow-privileged=true \
    --profiling=false \
    --v=1
}

start_controller_manager() {
  spawn kube-controller-manager "$BIN_DIR/kube-controller-manager" \
    --kubeconfig="$STATE_DIR/kubeconfig" \
    --leader-elect=false \
    --port=0 \
    --secure-port=0 \
    --controllers="$KCM_CONTROLLERS" \
    --service-account-private-key-file="$PKI/sa.key" \
    --root-ca-file="$PKI/ca.crt" \
    --use-service-account-credentials=false \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --v=1
}

# Static tokens are read only at start: restart the apiserver (and the controller-manager first,
# whose open watches make the apiserver's graceful shutdown slow).
restart_apiserver() {
  stop_proc kube-controller-manager
  stop_proc kube-apiserver
  start_apiserver
  wait_for kube-apiserver apiserver_ready
  if [[ $WITH_KCM != 0 ]]; then
    start_controller_manager
    wait_for kube-controller-manager kcm_working
  fi
}
