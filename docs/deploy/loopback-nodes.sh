#!/usr/bin/env bash
# Start N wagate nodes on one machine, each on a loopback address of its own (node 1 on
# 127.0.0.2, node 2 on 127.0.0.3, ...), to try the multi-node layout of docs/deploy/README.md
# without N machines. Each node runs the three roles as separate processes (gunicorn web,
# `flask worker`, `flask engine-host --id node-N`) with a DATA_DIR of its own; all of them
# share one PostgreSQL and one Redis (directly, or through Sentinel).
#
#   DATABASE_URL=postgresql+psycopg://wagate@127.0.0.1/wagate \
#   REDIS_URL=redis://127.0.0.1:6379/0 \
#   docs/deploy/loopback-nodes.sh 3
#
# or with REDIS_SENTINELS=127.0.0.1:26379,127.0.0.1:26380 (and REDIS_SENTINEL_MASTER) in
# place of REDIS_URL. Run it from the repository's root. It migrates the database, starts
# the nodes, prints where each one listens, and stays in the foreground: Ctrl-C (or SIGTERM)
# stops every process it started. Settings (environment):
#
#   NODES_DIR   where each node's DATA_DIR and logs go (default: /tmp/wagate-nodes)
#   NODES_PORT  the port every node's web listens on, on its own address (default: 5000)
#   VENV        the virtualenv with wagate's requirements (default: .venv)
#   SECRET_KEY  shared by every node; without it one is made and kept in NODES_DIR
#
# Any other wagate setting in the environment (WA_ENGINE, PACE_*, ...) reaches every node.
# Linux routes all of 127.0.0.0/8 to the loopback interface; elsewhere, add the addresses
# to it first (macOS: `sudo ifconfig lo0 alias 127.0.0.2`, and so on).
set -euo pipefail

count="${1:-3}"
if ! [[ "$count" =~ ^[1-9][0-9]?$ ]] || ((count > 250)); then
    echo "usage: $0 [N]   (N nodes, 1 to 250; default 3)" >&2
    exit 2
fi
if [[ -z "${DATABASE_URL:-}" ]]; then
    echo "$0: DATABASE_URL is not set (every node shares one PostgreSQL)" >&2
    exit 2
fi
if [[ -z "${REDIS_URL:-}" && -z "${REDIS_SENTINELS:-}" ]]; then
    echo "$0: set REDIS_URL, or REDIS_SENTINELS (every node shares one Redis)" >&2
    exit 2
fi
if [[ ! -f wsgi.py || ! -f gunicorn.conf.py ]]; then
    echo "$0: run it from wagate's repository root" >&2
    exit 2
fi

nodes_dir="${NODES_DIR:-/tmp/wagate-nodes}"
port="${NODES_PORT:-5000}"
bin="${VENV:-.venv}/bin"
mkdir -p "$nodes_dir"
if [[ -z "${SECRET_KEY:-}" ]]; then
    if [[ ! -s "$nodes_dir/secret_key" ]]; then
        (umask 077 && "$bin/python" -c "import secrets; print(secrets.token_hex(32))" >"$nodes_dir/secret_key")
    fi
    SECRET_KEY="$(cat "$nodes_dir/secret_key")"
fi
export SECRET_KEY DATABASE_URL

pids=()
stop_all() {
    trap - INT TERM EXIT
    if ((${#pids[@]})); then
        echo "stopping ${#pids[@]} processes"
        kill -TERM "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# One node's processes share its settings; `start NAME COMMAND...` logs to its folder.
start() {
    local name="$1"
    shift
    "$@" >"$node_dir/$name.log" 2>&1 &
    pids+=("$!")
}

"$bin/flask" --app app db upgrade

for ((i = 1; i <= count; i++)); do
    address="127.0.0.$((i + 1))"
    node_dir="$nodes_dir/node-$i"
    mkdir -p "$node_dir/data"
    export DATA_DIR="$node_dir/data" ENGINE_HOST_ID="node-$i"
    export PUBLIC_URL="http://$address:$port"
    start web "$bin/gunicorn" -c gunicorn.conf.py -b "$address:$port" --no-control-socket wsgi:app
    start worker "$bin/flask" --app app worker
    start engine-host "$bin/flask" --app app engine-host --id "node-$i"
    echo "node-$i: http://$address:$port/  (logs and DATA_DIR in $node_dir)"
done

# Each web answers /healthz once it reaches both stores and sees an engine host alive.
for ((i = 1; i <= count; i++)); do
    url="http://127.0.0.$((i + 1)):$port/healthz"
    for ((try = 0; try < 60; try++)); do
        if "$bin/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url" 2>/dev/null; then
            echo "node-$i: healthy"
            break
        fi
        if ((try == 59)); then
            echo "node-$i: not healthy after 60 s; see $nodes_dir/node-$i/*.log" >&2
            exit 1
        fi
        sleep 1
    done
done

echo "$count node(s) running; Ctrl-C stops them"
wait -n "${pids[@]}" || true
echo "a process ended on its own; see the logs in $nodes_dir" >&2
exit 1
