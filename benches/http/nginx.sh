#!/usr/bin/env bash
# Starts nginx (Debian's package) in the foreground on 127.0.0.1:PORT, serving the files of DIR,
# with a configuration of its own in a temporary directory: no root, no system service.
# usage: nginx.sh DIR PORT [WORKERS]   Stop it with kill on its pid.
set -euo pipefail
command -v nginx >/dev/null || { echo "nginx is missing: apt-get install -y nginx-light" >&2; exit 1; }
DIR=$(cd "$1" && pwd); PORT=$2; WORKERS=${3:-auto}
run=$(mktemp -d)
cat > "$run/nginx.conf" <<CONF
worker_processes $WORKERS;
daemon off;
pid $run/nginx.pid;
error_log $run/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $run/body;
  proxy_temp_path $run/proxy;
  fastcgi_temp_path $run/fastcgi;
  uwsgi_temp_path $run/uwsgi;
  scgi_temp_path $run/scgi;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types { image/jpeg jpg; image/webp webp; text/plain txt; }
  server {
    listen 127.0.0.1:$PORT;
    root $DIR;
  }
}
CONF
exec nginx -c "$run/nginx.conf" -e "$run/error.log"
