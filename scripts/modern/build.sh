# shellcheck shell=bash
# Building scripts/modern-apiserver's binary: Debian sid's Go -dev packages (golang-k8s-apiextensions-apiserver-dev
# and its dependencies) and Go $GO_VERSION, fetched into a private apt state dir (nothing on the system changes),
# unpacked with dpkg-deb -x, built with GO111MODULE=off around tools/modern-apiserver/main.go. Sourced.

apt_opts() {
  local a=$WORK/apt
  echo "-o Dir::State=$a -o Dir::State::Lists=$a/lists -o Dir::State::status=/dev/null" \
       "-o Dir::Cache=$a -o Dir::Cache::archives=$WORK/debs" \
       "-o Dir::Etc::SourceList=$a/sources.list -o Dir::Etc::SourceParts=$a/sources.list.d" \
       "-o Dir::Etc::Preferences=$a/preferences -o Dir::Etc::PreferencesParts=$a/preferences.d" \
       "-o APT::Architecture=amd64 -o Acquire::Languages=none -o APT::Sandbox::User=root" \
       "-o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false" \
       "-o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false" \
       "-o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
}
debian_mirror() {
  local m=${DEALPAY_DEBIAN_MIRROR:-}
  [[ -n $m ]] && { echo "$m"; return; }
  m=$(grep -hs -E '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{for (i=2;i<=NF;i++) print $i}' | grep -E '/debian/?$' | head -n1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}
fetch_packages() {
  local a=$WORK/apt opts
  mkdir -p "$a/lists/partial" "$a/sources.list.d" "$a/preferences.d" "$WORK/debs/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) sid main" >"$a/sources.list"
  opts=$(apt_opts)
  log "apt-get update (sid, private state in $a)"
  # shellcheck disable=SC2086,SC2046
  apt-get $opts -qq update >&2 || die "apt-get update for sid failed"
  # The CRD server and Go, and everything they depend on that is Go source (-dev packages).
  # shellcheck disable=SC2086,SC2046
  apt-cache $opts depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances golang-k8s-apiextensions-apiserver-dev 2>/dev/null \
    | grep -E '^golang-.*-dev$' | sort -u >"$WORK/packages.txt"
  printf '%s\n' "golang-$GO_VERSION-go" "golang-$GO_VERSION-src" >>"$WORK/packages.txt"
  [[ $(wc -l <"$WORK/packages.txt") -gt 100 ]] || die "dependency list looks wrong: $WORK/packages.txt"
  log "apt-get download $(wc -l <"$WORK/packages.txt") packages"
  # shellcheck disable=SC2086,SC2046
  (cd "$WORK/debs" && apt-get $opts -qq download $(cat "$WORK/packages.txt") >&2) \
    || die "apt-get download failed"
  # shellcheck disable=SC2086,SC2046
  apt-cache $opts show --no-all-versions $(cat "$WORK/packages.txt") 2>/dev/null \
    | awk '/^Package:/{p=$2} /^Version:/{print p, $2}' >"$WORK/versions.txt"
}
build_binary() {
  local t0=$SECONDS t root gopath
  rm -rf "$WORK"
  mkdir -p "$WORK"
  fetch_packages
  log "fetched in $((SECONDS - t0)) s; unpacking"
  t=$SECONDS
  root=$WORK/root
  mkdir -p "$root"
  local d
  for d in "$WORK"/debs/*.deb; do dpkg-deb -x "$d" "$root"; done
  log "unpacked in $((SECONDS - t)) s"
  [[ -x $root/usr/lib/go-$GO_VERSION/bin/go ]] || die "Go $GO_VERSION missing after unpacking"
  [[ -d $root/usr/share/gocode/src/k8s.io/apiextensions-apiserver ]] || die "apiextensions-apiserver missing"
  gopath=$WORK/gopath
  mkdir -p "$gopath/src/dealpay-modern-apiserver"
  cp "$MAIN_GO" "$gopath/src/dealpay-modern-apiserver/main.go"
  local kver
  kver=$(awk '$1 == "golang-k8s-apiextensions-apiserver-dev" {print $2}' "$WORK/versions.txt")
  kver=${kver%%-*}          # 0.36.4-1 -> 0.36.4
  kver="v1.${kver#0.}"      # -> v1.36.4 (the Kubernetes release of the staging module)
  log "building $kver with Go $GO_VERSION (5-12 min on 2 cores; log $WORK/build.log)"
  t=$SECONDS
  if ! (cd "$gopath/src/dealpay-modern-apiserver" && env -u GOFLAGS -u GOROOT \
        GOROOT="$root/usr/lib/go-$GO_VERSION" GOPATH="$root/usr/share/gocode:$gopath" \
        GO111MODULE=off CGO_ENABLED=0 GOPROXY=off GOTOOLCHAIN=local GOCACHE="$WORK/gocache" \
        "$root/usr/lib/go-$GO_VERSION/bin/go" build -o "$WORK/modern-apiserver" -ldflags "-s -w \
          -X k8s.io/component-base/version.gitMajor=1 \
          -X k8s.io/component-base/version.gitMinor=${kver#v1.} \
          -X k8s.io/component-base/version.gitVersion=$kver \
          -X k8s.io/component-base/version.gitTreeState=clean" . ) >"$WORK/build.log" 2>&1; then
    tail -n 40 "$WORK/build.log" >&2
    die "build failed (log: $WORK/build.log)"
  fi
  log "built in $((SECONDS - t)) s (total $((SECONDS - t0)) s)"
  mkdir -p "$CACHE/bin"
  cp "$WORK/versions.txt" "$CACHE/bin/versions.txt"
  mv "$WORK/modern-apiserver" "$BIN.tmp.$$"
  mv "$BIN.tmp.$$" "$BIN"
  sha256sum "$MAIN_GO" | cut -d' ' -f1 >"$STAMP"
  if [[ ${DEALPAY_KEEP_BUILD:-0} != 1 ]]; then
    rm -rf "$WORK"
  fi
}
have_binary() {
  [[ -x $BIN && -f $STAMP && "$(cat "$STAMP")" == "$(sha256sum "$MAIN_GO" | cut -d' ' -f1)" ]]
}
