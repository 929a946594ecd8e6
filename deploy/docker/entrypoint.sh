#!/bin/sh
# plantwire container entrypoint: give every replica its own NODE_ID, then exec the command
# (node becomes PID 1 and receives SIGTERM directly).
#
# NODE_ID names the Moleculer node and the preprocessor's MQTT client (a persistent session), so
# two replicas must never share one. Unless set, it is the container's hostname: the pod name on
# Kubernetes, the container id under Docker Compose (distinct for every `--scale` replica).
set -eu
if [ -z "${NODE_ID:-}" ]; then
  NODE_ID="${HOSTNAME:-$(cat /proc/sys/kernel/hostname)}"
  export NODE_ID
fi
exec "$@"
