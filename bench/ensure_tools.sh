#!/usr/bin/env bash
# Install the bench's Debian tools (wrk, nginx) when they are missing. Needs root (as CI and the
# development machines have); prints what to do otherwise.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

missing=()
for tool in wrk nginx; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" != "0" ]; then
  echo "bench: missing ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

# Debian starts a freshly installed nginx as a service listening on port 80 of every interface.
# The bench runs its own nginx on 127.0.0.1 only, so forbid service starts during this install.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

echo "bench: installing ${missing[*]} from Debian" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
