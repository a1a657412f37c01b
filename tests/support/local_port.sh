# TCP ports on 127.0.0.1 for the shell tests and scripts, the one home of this rule there (the C++
# suites have tests/support/local_port.h). Sourced: `source ".../tests/support/local_port.sh"`.
# Prefer a server that binds port 0 itself and reports the port it got (fake_hub_server
# --print-port, start_static_server below): nothing can take that port first.

# unused_port: prints a port on 127.0.0.1 that nothing was bound to when asked, for a server that
# needs its port in its configuration and cannot report one it picked (nginx). Another process
# can take it before the server binds it: start the server again with a fresh port when
# wait_for_port fails.
unused_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_for_port PORT [SECONDS]: succeeds once something accepts a TCP connection on
# 127.0.0.1:PORT, fails after SECONDS (default 5).
wait_for_port() {
  python3 - "$1" "${2:-5}" <<'PY'
import socket, sys, time
port, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while True:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        sys.exit(0)
    except OSError:
        if time.monotonic() >= deadline:
            sys.exit(1)
        time.sleep(0.05)
PY
}

# start_static_server DIR: serves DIR's files over HTTP on 127.0.0.1 (Python's http.server), in
# the background. The server binds port 0 itself and reports the port, so nothing can take the
# port in between. Sets static_server_port and static_server_pid (the caller kills that pid);
# fails, saying why, if the server did not start within 5 s.
start_static_server() {
  local dir=$1 port_file
  port_file=$(mktemp)
  python3 - "$dir" > "$port_file" 2> /dev/null <<'PY' &
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
print(server.server_address[1], flush=True)
server.serve_forever()
PY
  static_server_pid=$!
  static_server_port=""
  for _ in $(seq 100); do
    static_server_port=$(head -n 1 "$port_file")
    [ -n "$static_server_port" ] && break
    sleep 0.05
  done
  rm -f "$port_file"
  if [ -z "$static_server_port" ]; then
    echo "start_static_server: python3 http.server did not report a port for $dir within 5 s" >&2
    return 1
  fi
}
