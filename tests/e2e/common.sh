# Shared by the end-to-end scripts: a scratch directory removed on exit, the local hub, and a
# project locked against it.
set -euo pipefail
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

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Serves $1 over HTTP on 127.0.0.1 with a real nginx; sets $nginx_url. Stopped on exit.
start_nginx() {
  local root=$1 port conf
  if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    echo "SKIPPED: nginx is not installed (scripts/install-deps.sh installs nginx-light)"
    exit 0
  fi
  port=$(free_port)
  mkdir -p "$scratch/nginx/tmp"
  conf="$scratch/nginx/nginx.conf"
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
  for _ in $(seq 1 50); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then
      nginx_url="http://127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  cat "$scratch/nginx/error.log" >&2
  fail "nginx did not start on port $port"
}
