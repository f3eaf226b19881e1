# shellcheck shell=bash
# Certificates, static tokens and kubeconfigs of a loopback API server (scripts/local-cluster,
# scripts/modern-apiserver). Sourced.

# make_serving_pki DIR CA-CN SERVER-CN SAN: a CA and a serving certificate for SAN
# (openssl subjectAltName syntax), unless DIR has them already.
make_serving_pki() {
  local dir=$1 ca_cn=$2 cn=$3 san=$4
  mkdir -p "$dir"
  [[ -f $dir/apiserver.crt ]] && return 0
  (
    cd "$dir" || exit 1
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -keyout ca.key -out ca.crt -subj "/CN=$ca_cn" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -sha256 \
      -keyout apiserver.key -out apiserver.csr -subj "/CN=$cn" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" "subjectAltName=$san" >apiserver.ext
    openssl x509 -req -sha256 -days 3650 -in apiserver.csr -CA ca.crt -CAkey ca.key \
      -CAcreateserial -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    rm -f apiserver.csr ca.srl
    chmod 644 ca.crt apiserver.crt
  )
}

# token_of TOKENS-CSV USER: the static bearer token of USER
token_of() { [[ -f $1 ]] && awk -F, -v u="$2" '$2 == u {print $1; exit}' "$1"; }

# write_kubeconfig FILE CLUSTER-NAME SERVER-URL CA-FILE USER TOKEN (written atomically, mode 600)
write_kubeconfig() {
  local file=$1 cluster=$2 server=$3 ca user=$5 tok=$6
  ca=$(base64 -w0 <"$4")
  (
    umask 077
    cat >"$file.tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: $cluster
  cluster:
    server: $server
    certificate-authority-data: $ca
users:
- name: $user
  user:
    token: $tok
contexts:
- name: $cluster
  context:
    cluster: $cluster
    user: $user
    namespace: default
current-context: $cluster
KUBECONFIG
  )
  mv "$file.tmp" "$file"
}

# api_get CA TOKEN URL: GET with the admin token, quietly (readiness probes)
api_get() { curl -sS --max-time 3 --cacert "$1" -H "Authorization: Bearer $2" "$3" 2>/dev/null; }
