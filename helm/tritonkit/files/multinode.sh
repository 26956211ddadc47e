#!/bin/sh
# Multi-node launcher for one LeaderWorkerSet group (leader mode, tensorrtllm-backend launch_triton_server.py):
# every pod renders the same model repository; workers run sshd; the leader waits for them, then runs
# one tritonserver per rank under mpirun. Rank 0 (on the leader) serves HTTP/gRPC/metrics and the
# ensemble; ranks != 0 load only the tensorrt_llm model (--model-control-mode=explicit).
# Environment: ROLE (leader|worker), WORLD_SIZE, GPUS_PER_NODE, SSH_PORT, HTTP_PORT, GRPC_PORT,
# METRICS_PORT, TRTLLM_MODEL, CLUSTER_START_TIMEOUT; from LWS: LWS_LEADER_ADDRESS, LWS_GROUP_SIZE.
set -eu
REPO=/work/model_repository
SSH_DIR=/tmp/ssh
mkdir -p "$SSH_DIR" "$HOME"
cp /etc/tritonkit-ssh/id_rsa "$SSH_DIR/id_rsa"
chmod 600 "$SSH_DIR/id_rsa"
ssh-keygen -y -f "$SSH_DIR/id_rsa" > "$SSH_DIR/authorized_keys"
tritonkit render --deployment /config/deployment.yaml --out "$REPO"

if [ "$ROLE" = worker ]; then
  ssh-keygen -q -t ed25519 -N '' -f "$SSH_DIR/host_key"
  exec /usr/sbin/sshd -D -e -p "$SSH_PORT" -h "$SSH_DIR/host_key" -o PidFile="$SSH_DIR/sshd.pid" \
    -o AuthorizedKeysFile="$SSH_DIR/authorized_keys" -o StrictModes=no -o PasswordAuthentication=no
fi

# Leader: worker i is <leader-pod>-i in the group's headless Service domain.
first=${LWS_LEADER_ADDRESS%%.*}
domain=${LWS_LEADER_ADDRESS#*.}
hosts="$LWS_LEADER_ADDRESS:$GPUS_PER_NODE"
i=1
while [ "$i" -lt "$LWS_GROUP_SIZE" ]; do
  worker="$first-$i.$domain"
  hosts="$hosts,$worker:$GPUS_PER_NODE"
  deadline=$(( $(date +%s) + CLUSTER_START_TIMEOUT ))
  until python3 -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 2)" \
      "$worker" "$SSH_PORT" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "worker $worker not reachable on $SSH_PORT" >&2; exit 1; }
    sleep 5
  done
  i=$((i + 1))
done

# admin APIs behind the key, as `tritonkit serve` does (tritonkit/security.py)
ADMIN_KEY=$(cat "${TRITONKIT_ADMIN_KEY_FILE:-/etc/tritonkit/admin/admin-key}")
ADMIN_APIS=model-repository,shared-memory,logging,trace,statistics
set -- mpirun --host "$hosts" -np 1 \
  -mca plm_rsh_agent "ssh -p $SSH_PORT -i $SSH_DIR/id_rsa -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null" \
  -x HOME -x TMPDIR -x PATH -x PYTHONPATH \
  tritonserver --model-repository="$REPO" --http-port="$HTTP_PORT" --grpc-port="$GRPC_PORT" \
  --metrics-port="$METRICS_PORT" --disable-auto-complete-config \
  --http-restricted-api="$ADMIN_APIS:tritonkit-admin-key=$ADMIN_KEY" \
  --grpc-restricted-protocol="$ADMIN_APIS:tritonkit-admin-key=$ADMIN_KEY" \
  --backend-config=python,shm-region-prefix-name=prefix0_
rank=1
while [ "$rank" -lt "$WORLD_SIZE" ]; do
  set -- "$@" : -np 1 tritonserver --model-repository="$REPO" --model-control-mode=explicit \
    --load-model="$TRTLLM_MODEL" --http-port="$HTTP_PORT" --grpc-port="$GRPC_PORT" \
    --metrics-port="$METRICS_PORT" --disable-auto-complete-config \
    --backend-config=python,shm-region-prefix-name="prefix${rank}_"
  rank=$((rank + 1))
done
echo "launching $WORLD_SIZE ranks on $hosts"
exec "$@"
