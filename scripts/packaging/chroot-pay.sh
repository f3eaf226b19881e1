# shellcheck shell=bash
# Payments by the static binary (static-binary.sh) inside a chroot that holds only /dealpay, the
# sandbox's CA, a Secret and a DealPayment, against the checkout's `dealpay sandbox` over HTTPS on
# loopback (the production binary has no sandbox). Sourced by static-binary.sh.

SANDBOX_BIN="${PACKAGING_SANDBOX_BIN:-$REPO/target/debug/dealpay}"
SANDBOX_URL=""

sandbox_bin() { # the default-features (sandbox) build of the checkout
  if [[ ! -x $SANDBOX_BIN ]] || ! "$SANDBOX_BIN" sandbox --help >/dev/null 2>&1; then
    (cd "$REPO" && nice -n 10 cargo build --locked --bin dealpay) || return 1
  fi
  "$SANDBOX_BIN" sandbox --help >/dev/null && echo "sandbox from $SANDBOX_BIN"
}

start_sandbox() {
  local dir="$OUT/sandbox" i
  rm -rf "$dir"; mkdir -p "$dir/tls"
  env -i PATH=/usr/bin:/bin DEALPAY_LOG=info "$SANDBOX_BIN" sandbox --listen 127.0.0.1:0 --tls-self-signed "$dir/tls" \
    >"$dir/stdout" 2>"$dir/stderr" &
  local pid=$!
  CLEANUP_PIDS+=("$pid")
  echo "$pid" >"$dir/pid"
  for ((i = 0; i < 100; i++)); do
    SANDBOX_URL=$(sed -n '1s/^listening on \(https:\/\/127\.0\.0\.1:[0-9]*\).*$/\1/p' "$dir/stdout")
    [[ -n $SANDBOX_URL && -f $dir/tls/ca.pem ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/stderr"; echo "sandbox exited"; return 1; }
    sleep 0.1
  done
  [[ -n $SANDBOX_URL ]] || { cat "$dir/stdout" "$dir/stderr"; echo "sandbox did not print its URL"; return 1; }
  echo "sandbox pid $pid at $SANDBOX_URL"
}

pay_root() { # DIR ORDER...: chroot with the binary, the sandbox CA, a Secret and a DealPayment
  local root=$1; shift
  new_root "$root"
  cp "$OUT/sandbox/tls/ca.pem" "$root/ca.pem"
  cat >"$root/secret.yaml" <<'EOF'
apiVersion: v1
kind: Secret
metadata:
  name: tencentcloud-credentials
type: Opaque
stringData:
  secretId: sandbox-secret-id
  secretKey: sandbox-secret-key
EOF
  printf 'apiVersion: billing.dealpay.dev/v1alpha1\nkind: DealPayment\nmetadata:\n  name: web-servers\n' >"$root/dealpayment.yaml"
  printf '  namespace: default\nspec:\n  credentials:\n    secretRef:\n      name: tencentcloud-credentials\n  orderIds:\n' >>"$root/dealpayment.yaml"
  printf '    - "%s"\n' "$@" >>"$root/dealpayment.yaml"
  chmod -R a+rX "$root"
}

pay_in() { # ROOT ARGS...: `dealpay pay` inside the chroot as 65532, with a clean environment
  local root=$1; shift
  env -i TENCENTCLOUD_SECRET_ID=sandbox-secret-id TENCENTCLOUD_SECRET_KEY=sandbox-secret-key DEALPAY_LOG=info \
    "$TIMEOUT" 120 "$CHROOT" --userspec=65532:65532 "$root" /dealpay pay -f /dealpayment.yaml --secret-file /secret.yaml "$@"
}

chroot_pay() { # no CA bundle on disk: the sandbox's CA comes from --ca-file only
  local root="$OUT/chroot-pay"
  pay_root "$root" 20261128000000000001 20261128000000000002
  echo "chroot contents: $(cd "$root" && find . -type f | tr '\n' ' ')"
  pay_in "$root" --endpoint "$SANDBOX_URL" --ca-file /ca.pem --timeout 60
}

chroot_pay_by_hostname() { # the static glibc resolves names from /etc/hosts (as kubelet mounts it)
  local root="$OUT/chroot-pay-hosts"
  pay_root "$root" 20261128000000000004
  mkdir -p "$root/etc"
  printf '127.0.0.1 localhost\n' >"$root/etc/hosts"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
  chmod -R a+rX "$root"
  echo "endpoint https://localhost:${SANDBOX_URL##*:}"
  pay_in "$root" --endpoint "https://localhost:${SANDBOX_URL##*:}" --ca-file /ca.pem --timeout 60
}

chroot_pay_untrusted() { # without --ca-file the sandbox's certificate must be refused
  local root="$OUT/chroot-pay-noca" rc out
  pay_root "$root" 20261128000000000003
  rm -f "$root/ca.pem"
  out=$(pay_in "$root" --endpoint "$SANDBOX_URL" --timeout 8 2>&1)
  rc=$?
  echo "$out"
  echo "exit code $rc (must not be 0, and the reason must be the certificate)"
  [[ $rc -ne 0 ]] || return 1
  if grep -q 'panicked' <<<"$out"; then echo "it crashed instead"; return 1; fi
  grep -Eiq 'certificate|UnknownIssuer' <<<"$out"
}
