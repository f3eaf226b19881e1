# shellcheck shell=bash
# scripts/local-cluster's state dir: PKI (serving certificate, service-account key pair), the static
# token file and one kubeconfig per user. Sourced by scripts/local-cluster.

ensure_pki() {
  if [[ ! -f $PKI/apiserver.crt ]]; then
    log "generating CA and serving certificate in $PKI"
    make_serving_pki "$PKI" dealpay-local-cluster-ca kube-apiserver \
      "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:${SERVICE_CIDR%%/*}"
  fi
  if [[ ! -f $PKI/sa.pub ]]; then
    log "generating the service-account key pair in $PKI"
    (umask 077 && openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null)
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
    chmod 644 "$PKI/sa.pub"
  fi
}

admin_token() { token_of "$TOKENS" admin; }

# append_token USER GROUPS [TOKEN] -> prints the token (the existing one if USER is known and no
# other TOKEN is asked for)
append_token() {
  local user=$1 groups=$2 tok=${3:-} existing uid
  [[ $user != *,* && $user != *\"* ]] || die "user name must not contain , or \""
  touch "$TOKENS"
  chmod 600 "$TOKENS"
  existing=$(token_of "$TOKENS" "$user")
  if [[ -n $existing ]]; then
    if [[ -z $tok || $tok == "$existing" ]]; then echo "$existing"; return 0; fi
    awk -F, -v u="$user" '$2 != u' "$TOKENS" >"$TOKENS.tmp" && mv "$TOKENS.tmp" "$TOKENS"
  fi
  [[ -n $tok ]] || tok=$(openssl rand -hex 24)
  uid=$(printf '%s' "$user" | sha256sum | cut -c1-32)
  if [[ -n $groups ]]; then
    printf '%s,%s,%s,"%s"\n' "$tok" "$user" "$uid" "$groups" >>"$TOKENS"
  else
    printf '%s,%s,%s\n' "$tok" "$user" "$uid" >>"$TOKENS"
  fi
  echo "$tok"
}

kubeconfig_name_for() {
  case $1 in
    admin) echo kubeconfig ;;
    "$OPERATOR_USER") echo kubeconfig-operator ;;
    *) echo "kubeconfig-$(printf '%s' "$1" | tr -c 'A-Za-z0-9._-' '-')" ;;
  esac
}

user_kubeconfig() { # USER TOKEN
  write_kubeconfig "$STATE_DIR/$(kubeconfig_name_for "$1")" dealpay-local "$SERVER_URL" "$PKI/ca.crt" "$1" "$2"
}

ensure_tokens() {
  user_kubeconfig admin "$(append_token admin system:masters)"
  user_kubeconfig "$OPERATOR_USER" "$(append_token "$OPERATOR_USER" "$OPERATOR_GROUPS")"
}
