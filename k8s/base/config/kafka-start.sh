#!/bin/bash
# Starts one Kafka node of the StatefulSet `kafka` (KRaft, broker + controller).
#
# node.id is the pod's ordinal (kafka-2 -> 2), matching controller.quorum.voters. The cluster id
# is fixed (ConfigMap key CLUSTER_ID, the same in docker-compose.yml and scripts/infra.sh), so a
# volume this cluster formatted once is always accepted again: formatting only happens on an
# empty volume, and a volume formatted by another cluster stops the start with a clear message
# instead of the broker's "Invalid cluster.id" loop.
set -euo pipefail

: "${POD_NAME:?POD_NAME is not set}" "${POD_NAMESPACE:?POD_NAMESPACE is not set}" "${CLUSTER_ID:?CLUSTER_ID is not set}"

# A subdirectory of the volume: a fresh ext4 volume has lost+found, which Kafka would take for a
# partition directory and refuse to start.
DATA_DIR=/var/lib/kafka/data/kraft
CONF_DIR=/etc/kafka/plantwire
RUN_DIR=/tmp/kafka
NODE_ID="${POD_NAME##*-}"

mkdir -p "$DATA_DIR" "$RUN_DIR"
{
  cat "$CONF_DIR/server.properties"
  echo
  cat "$CONF_DIR/replication.properties"
  echo
  echo "node.id=$NODE_ID"
  echo "log.dirs=$DATA_DIR"
  echo "advertised.listeners=PLAINTEXT://$POD_NAME.kafka-headless.$POD_NAMESPACE.svc:9092"
} > "$RUN_DIR/server.properties"

meta="$DATA_DIR/meta.properties"
if [ -f "$meta" ]; then
  found="$(sed -n 's/^cluster\.id=//p' "$meta")"
  if [ "$found" != "$CLUSTER_ID" ]; then
    echo "kafka: $meta was formatted by cluster '$found', but this cluster is '$CLUSTER_ID'." >&2
    echo "kafka: not starting; see docs/deploy.md, 'Kafka cluster id mismatch'." >&2
    exit 1
  fi
  echo "kafka: volume belongs to cluster $CLUSTER_ID; node.id=$NODE_ID"
else
  echo "kafka: formatting an empty volume for cluster $CLUSTER_ID; node.id=$NODE_ID"
  /opt/kafka/bin/kafka-storage.sh format --cluster-id "$CLUSTER_ID" --config "$RUN_DIR/server.properties" --ignore-formatted
fi

exec /opt/kafka/bin/kafka-server-start.sh "$RUN_DIR/server.properties"
