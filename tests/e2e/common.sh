# Shared by the end-to-end scripts: a scratch directory removed on exit, the local hub, and a
# project locked against it.
set -euo pipefail
# shellcheck source=../support/local_port.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/local_port.sh"
# shellcheck source=../support/nginx.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/nginx.sh"
: "${KERNELS_SOURCE_DIR:?}" "${KERNELS_BUILD_DIR:?}" "${KERNELS_BIN:?}"
hub="$KERNELS_BUILD_DIR/local-hub"
if [ ! -f "$hub/api/kernels/kernels-community/attention-fa3/refs" ]; then
  echo "SKIPPED: no local hub at $hub (it is built only when nvcc is available)"
  exit 0
fi
scratch=$(mktemp -d /tmp/kernels-e2e.XXXXXX)
chmod 755 "$scratch"  # nginx workers run as an unprivileged user
cleanup_hooks=()
cleanup() {
  local h
  for h in "${cleanup_hooks[@]}"; do eval "$h" || true; done
  chmod -R u+w "$scratch" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT
kernels() { "$KERNELS_BIN" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# A project that depends on the local hub's repo, locked against it.
make_project() {
  local dir=$1
  mkdir -p "$dir"
  cp "$KERNELS_SOURCE_DIR/scripts/deploy/pyproject.toml" "$dir/"
  HF_ENDPOINT="file://$hub" kernels lock "$dir"
}

# Serves $1 over HTTP on 127.0.0.1 with a real nginx (tests/support/nginx.sh); sets $nginx_url.
# Stopped on exit.
start_nginx() {
  local rc=0
  start_nginx_server "$1" "$scratch/nginx" || rc=$?
  if [ "$rc" = 2 ]; then
    echo "SKIPPED: nginx is not installed (scripts/install-deps.sh installs nginx-light)"
    exit 0
  fi
  [ "$rc" = 0 ] || fail "nginx did not start on 127.0.0.1 in 3 attempts"
  cleanup_hooks+=("kill $nginx_server_pid; wait $nginx_server_pid 2>/dev/null")
  nginx_url="http://127.0.0.1:$nginx_server_port"
}
