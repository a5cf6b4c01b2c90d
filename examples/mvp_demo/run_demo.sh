#!/usr/bin/env bash
# The seed's section 7, one terminal: the API server and three replicas, each its own process.
# (`npm start` does the same from Node, plus the stream replica.) Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/../.."
ANYSERVE="node bin/anyserve.js"
PORT="${PORT:-8080}"
API="http://localhost:${PORT}"
[ -f dist/cli/main.js ] || npm run build

pids=()
cleanup() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

$ANYSERVE api-server --port "$PORT" --grpc-port "$((PORT + 1))" & pids+=($!)
sleep 1
$ANYSERVE start --port 50051 --api-server "$API" --app examples/mvp_demo/chat_app.ts:app  --replica-id replica-a & pids+=($!)
$ANYSERVE start --port 50052 --api-server "$API" --app examples/mvp_demo/embed_app.ts:app --replica-id replica-b & pids+=($!)
$ANYSERVE start --port 50053 --api-server "$API" --app examples/mvp_demo/heavy_app.ts:app --replica-id replica-c & pids+=($!)

for _ in $(seq 1 100); do
  [ "$(curl -s "$API/registry" | grep -o '"total":[0-9]*' | cut -d: -f2)" = "3" ] && break
  sleep 0.2
done
echo "ready: $API (try the curls in examples/mvp_demo/README.md); Ctrl-C to stop"
wait
