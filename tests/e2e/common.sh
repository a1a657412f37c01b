# Shared by the end-to-end scripts: a scratch directory removed on exit, the local hub, and a
# project locked against it.
set -euo pipefail
# shellcheck source=../support/local_port.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/local_port.sh"
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

# Serves $1 over HTTP on 127.0.0.1 with a real nginx; sets $nginx_url. Stopped on exit. nginx
# cannot report a port it picked: when another process took the unused port first, it tries again
# with a fresh one (three times).
start_nginx() {
  local root=$1 port conf attempt
  if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    echo "SKIPPED: nginx is not installed (scripts/install-deps.sh installs nginx-light)"
    exit 0
  fi
  mkdir -p "$scratch/nginx/tmp"
  conf="$scratch/nginx/nginx.conf"
  for attempt in 1 2 3; do
    port=$(unused_port)
    cat > "$conf" <<NGINX
daemon off;
worker_processes 1;
pid $scratch/nginx/nginx.pid;
error_log $scratch/nginx/error.log;
events { worker_connections 64; }
http {
  access_log $scratch/nginx/access.log;
  client_body_temp_path $scratch/nginx/tmp;
  proxy_temp_path $scratch/nginx/tmp;
  fastcgi_temp_path $scratch/nginx/tmp;
  uwsgi_temp_path $scratch/nginx/tmp;
  scgi_temp_path $scratch/nginx/tmp;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$port;
    root $root;
    location / { try_files \$uri =404; }
  }
}
NGINX
    "$(command -v nginx || echo /usr/sbin/nginx)" -c "$conf" -e "$scratch/nginx/error.log" &
    nginx_pid=$!
    cleanup_hooks+=("kill $nginx_pid; wait $nginx_pid 2>/dev/null")
    if wait_for_port "$port" 5; then
      nginx_url="http://127.0.0.1:$port"
      return 0
    fi
    kill "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    echo "nginx did not start on port $port (attempt $attempt of 3)" >&2
  done
  cat "$scratch/nginx/error.log" >&2
  fail "nginx did not start on 127.0.0.1 in 3 attempts"
}
