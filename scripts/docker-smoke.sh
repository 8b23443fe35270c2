#!/usr/bin/env bash
# Builds the CPU image (Dockerfile), runs it on its embedded defaults, waits for /health, then signs a
# user up on the starter plan and completes one full analysis of the tests' synthetic call through the
# public API, with the image's LLM evaluating it (scripts/smoke_api.py). Prints the build, start and
# analysis times.
#   scripts/docker-smoke.sh             with a Docker engine (DOCKER=podman for Podman)
#   scripts/docker-smoke.sh --buildah   without one (root, Linux): buildah builds the image (chroot
#                                       isolation), and the image's filesystem runs in a chroot as the
#                                       image's user, with the image's environment
# BASE_IMAGE overrides the Dockerfile's base. With --buildah and BASE_IMAGE=debootstrap, a Debian
# bookworm + python3.11 base is made with debootstrap from Debian's packages (where no container
# registry can be reached). Needs espeak-ng and sox (scripts/system-packages.sh) and .venv (setup.sh dev).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=docker
[ "${1:-}" = --buildah ] && mode=buildah
DOCKER=${DOCKER:-docker}
IMAGE=${IMAGE:-callcov/callcov:latest}
PORT=${PORT:-18765}
NAME=callcov-smoke-$$
work=$(mktemp -d)
server_pid=
mnt=

now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

cleanup() {
  local status=$?
  if [ "$mode" = docker ]; then
    "$DOCKER" rm -f "$NAME" >/dev/null 2>&1 || true
  else
    # serve run (its own session) stops its Ray instance on SIGTERM.
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    if [ -n "$mnt" ]; then
      for d in proc sys dev; do umount -R -l "$mnt/$d" 2>/dev/null || true; done
      buildah rm "$NAME" >/dev/null 2>&1 || true
    fi
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

debootstrap_base() {
  # A local stand-in for python:3.11-slim-bookworm: Debian's python3.11 (+ venv) and the host's CA bundle.
  local root=$work/rootfs tag=localhost/callcov-base:bookworm-py311
  if buildah inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return; fi
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
  debootstrap --variant=minbase bookworm "$root" >&2
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  chroot "$root" /bin/sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11 python3.11-venv ca-certificates && apt-get clean" >&2
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  local ctr
  ctr=$(buildah from scratch)
  cp -a "$root/." "$(buildah mount "$ctr")/"
  buildah umount "$ctr" >/dev/null
  buildah config --env LANG=C.UTF-8 --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  buildah commit -q "$ctr" "$tag" >/dev/null
  buildah rm "$ctr" >/dev/null
  echo "$tag"
}

# The test call: the tests' two-voice synthetic call, agent left, customer right.
.venv/bin/python -c "import sys; sys.path.insert(0, 'tests'); from speech import ACME_CALL, synthesize_call; synthesize_call(ACME_CALL, sys.argv[1], stereo=True)" "$work/call.wav"

build_args=()
start=$(now)
if [ "$mode" = docker ]; then
  [ -n "${BASE_IMAGE:-}" ] && build_args=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
  "$DOCKER" build "${build_args[@]}" -t "$IMAGE" -f Dockerfile .
else
  [ "${BASE_IMAGE:-}" = debootstrap ] && BASE_IMAGE=$(debootstrap_base)
  [ -n "${BASE_IMAGE:-}" ] && build_args=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
  buildah bud --layers --isolation chroot --network host "${build_args[@]}" -t "$IMAGE" -f Dockerfile .
fi
echo "image built in $(since "$start") s"

start=$(now)
if [ "$mode" = docker ]; then
  "$DOCKER" run -d --name "$NAME" --shm-size=1g -p "127.0.0.1:$PORT:8000" "$IMAGE" >/dev/null
  code=(--code-command "$DOCKER exec $NAME python -c \"import sqlite3; [print(r[0]) for r in sqlite3.connect('/data/callcov.db').execute('SELECT body_text FROM email_messages')]\"")
else
  buildah from --name "$NAME" "$IMAGE" >/dev/null
  mnt=$(buildah mount "$NAME")
  for d in proc sys dev; do mount --rbind "/$d" "$mnt/$d"; done
  cp /etc/resolv.conf "$mnt/etc/resolv.conf"
  # The image's environment and user (USER callcov: uid 10001), as a container would have them.
  env_args=()
  while IFS= read -r line; do env_args+=("$line"); done < <(buildah inspect --format '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' "$IMAGE" | sed '/^$/d')
  user=$(buildah inspect --format '{{.OCIv1.Config.User}}' "$IMAGE")
  setsid chroot --userspec="$(chroot "$mnt" id -u "$user"):$(chroot "$mnt" id -g "$user")" "$mnt" \
    /usr/bin/env -i HOME="/home/$user" "${env_args[@]}" /bin/sh -c \
    "cd /app && exec callcov-serve --host 127.0.0.1 --port $PORT" >"$work/serve.log" 2>&1 &
  server_pid=$!
  code=(--outbox-sqlite "$mnt/data/callcov.db")
fi
if ! .venv/bin/python scripts/smoke_api.py --base-url "http://127.0.0.1:$PORT" --audio "$work/call.wav" \
  "${code[@]}" --tier starter --expect-llm evaluated --health-timeout 300 --timeout 420; then
  echo "--- the service's log (last lines)" >&2
  if [ "$mode" = docker ]; then "$DOCKER" logs --tail 80 "$NAME" >&2; else grep -v state-dump "$work/serve.log" | tail -n 80 >&2; fi
  exit 1
fi
echo "started and completed one analysis in $(since "$start") s"
