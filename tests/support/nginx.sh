# nginx serving one directory on 127.0.0.1 for the shell tests and scripts, with the configuration
# the C++ suites use too (tests/support/nginx.conf.in). Sourced after local_port.sh:
#   source ".../tests/support/local_port.sh"; source ".../tests/support/nginx.sh"

# start_nginx_server ROOT WORK: serves ROOT in the background, config/pid/logs/temp under WORK.
# Sets nginx_server_port and nginx_server_pid (the caller stops that pid). nginx cannot report a
# port it picked, so three unused ports are tried in turn. Returns 2 when nginx is not installed,
# 1 (the error log on stderr) when it did not start.
start_nginx_server() {
  local root work template attempt nginx user=""
  root=$(cd "$1" && pwd) || return 1
  mkdir -p "$2/logs" "$2/tmp"
  work=$(cd "$2" && pwd)
  template="$(dirname "${BASH_SOURCE[0]}")/nginx.conf.in"
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  [ -x "$nginx" ] || return 2
  [ "$(id -u)" = 0 ] && user="user root;"
  for attempt in 1 2 3; do
    nginx_server_port=$(unused_port)
    sed -e "s|@WORK@|$work|g" -e "s|@PORT@|$nginx_server_port|g" -e "s|@ROOT@|$root|g" \
      -e "s|@USER@|$user|g" "$template" > "$work/nginx.conf"
    "$nginx" -p "$work" -c "$work/nginx.conf" -e "$work/logs/error.log" &
    nginx_server_pid=$!
    if wait_for_port "$nginx_server_port" 10; then
      return 0
    fi
    kill "$nginx_server_pid" 2>/dev/null || true
    wait "$nginx_server_pid" 2>/dev/null || true
    echo "nginx did not start on port $nginx_server_port (attempt $attempt of 3)" >&2
  done
  cat "$work/logs/error.log" >&2
  return 1
}
