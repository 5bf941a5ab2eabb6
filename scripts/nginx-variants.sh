#!/usr/bin/env bash
# docs/nginx/feedgate.conf and one broken variant of it per failure a path
# to feedgate can have, each run by its own Debian nginx: shared by
# scripts/doctor-test.sh (the doctor's verdicts) and
# scripts/browser-proxy-test.sh (FeedgateSocket in Chromium). Sourced,
# never run; needs lib.sh, TMP (a mktemp dir) and bg NAME CMD… (starts a
# background process the caller stops on exit).
#
#   variant     what is broken
#   correct     nothing (the shipped file)
#   buffering   SSE location: nginx's defaults — buffering on, HTTP/1.0 to
#               feedgate — and proxy_ignore_headers X-Accel-Buffering
#   buffer-hdr  the same, but feedgate's X-Accel-Buffering header honoured
#               (it turns buffering off)
#   noupgrade   no Upgrade/Connection headers passed
#   timeout5    proxy_read_timeout 5s everywhere
#   gzip        SSE location: gzip on for text/event-stream
#
# nginx_variant NAME UPSTREAM_PORT: starts variant NAME on a free loopback
# port in front of feedgate on 127.0.0.1:UPSTREAM_PORT, with its own
# prefix, pid, logs and temp dirs under $TMP/NAME (the system's nginx
# config is never read), and sets NGINX_URL[NAME].

NGINX_VARIANTS=(correct buffering buffer-hdr noupgrade timeout5 gzip)
declare -A NGINX_URL

# The SSE location is the block that starts at its regex and ends at the
# first closing brace; the other edits apply to the whole file.
NGINX_SSE_BLOCK='/location ~ \^(\/(topics\/\[\^\/\]+|probe))?\/sse\$ {/,/}/'

nginx_variant() {
  local name="$1" upstream="$2" edit="" must="" port dir
  case "$name" in
    correct) ;;
    # Buffering needs nginx's default HTTP/1.0 to the upstream: over
    # HTTP/1.1 nginx hands each chunk of feedgate's chunked stream on as it
    # parses it, buffering on or not (nginx 1.22), so events are not held.
    buffering)
      edit="${NGINX_SSE_BLOCK}s/proxy_buffering off;/proxy_buffering on; proxy_http_version 1.0; proxy_ignore_headers X-Accel-Buffering;/"
      must='proxy_ignore_headers X-Accel-Buffering;' ;;
    buffer-hdr)
      edit="${NGINX_SSE_BLOCK}s/proxy_buffering off;/proxy_buffering on; proxy_http_version 1.0;/"
      must='proxy_buffering on; proxy_http_version 1.0;' ;;
    noupgrade)
      edit='/proxy_set_header Upgrade \$http_upgrade;/d; /proxy_set_header Connection \$connection_upgrade;/d' ;;
    timeout5)
      edit='s/proxy_read_timeout [0-9]*s;/proxy_read_timeout 5s;/'
      must='proxy_read_timeout 5s;' ;;
    gzip)
      edit="${NGINX_SSE_BLOCK}s/gzip off;/gzip on; gzip_types text\/event-stream;/"
      must='gzip_types text/event-stream;' ;;
    *) echo "no nginx variant $name" >&2; return 1 ;;
  esac
  port="$(free_port)"
  dir="$TMP/$name"
  mkdir -p "$dir"
  sed -e "s/server 127\.0\.0\.1:8080;/server 127.0.0.1:$upstream;/" \
    -e "s/listen 80;/listen 127.0.0.1:$port;/" \
    -e "s|/var/log/nginx/feedgate-access.log|$dir/access.log|" \
    -e "$edit" \
    "$FEEDGATE_ROOT/docs/nginx/feedgate.conf" >"$dir/feedgate.conf"
  # Each edit must change the file, or the variant would silently test the
  # correct config: check that the broken directive is really there.
  if [ -n "$must" ] && ! grep -qF -- "$must" "$dir/feedgate.conf"; then
    echo "variant $name: docs/nginx/feedgate.conf no longer has what this test edits ($must)" >&2
    return 1
  fi
  if [ "$name" = noupgrade ] && grep -q 'proxy_set_header Upgrade' "$dir/feedgate.conf"; then
    echo "variant noupgrade still passes Upgrade" >&2
    return 1
  fi
  cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log notice;
events { worker_connections 256; }
http {
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    include $dir/feedgate.conf;
}
CONF
  nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" -t -q
  bg "nginx-$name" nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log"
  NGINX_URL[$name]="http://127.0.0.1:$port"
}
