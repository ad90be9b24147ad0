#!/usr/bin/env bash
# The main job end to end: train the CNN -> export-all (with verification) -> serve -> query over
# gRPC and REST. Run through `make demo`, which creates .venv first.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
RUN=${RUN:-runs/cnn}
GRPC_PORT=${GRPC_PORT:-8500}
REST_PORT=${REST_PORT:-8501}

# MNIST: $TFSHIP_MNIST_DIR, else an offline copy beside the repo, else the cache (downloaded if missing).
if [ -z "${TFSHIP_MNIST_DIR:-}" ] && [ -d ../shared/data/mnist ]; then
  export TFSHIP_MNIST_DIR=../shared/data/mnist
fi
DOWNLOAD=()
[ -n "${TFSHIP_MNIST_DIR:-}" ] || DOWNLOAD=(--download)

echo "== 1/4 train the Deep-MNIST CNN into $RUN"
if [ -n "$(ls "$RUN/saved_model" 2>/dev/null)" ] && [ -z "${RETRAIN:-}" ]; then
  echo "   $RUN/saved_model already has a version; reusing it (RETRAIN=1 to train a new one)"
else
  "$BIN/tfship" train --arch cnn --out "$RUN" "${DOWNLOAD[@]}"
fi

echo "== 2/4 export-all: TFLite, ONNX, CoreML, then verify every artifact on the 10k test images"
"$BIN/export-all" --model "$RUN" --coreml-name MNISTClassifier

echo "== 3/4 serve $RUN on gRPC :$GRPC_PORT and REST :$REST_PORT"
"$BIN/tfship" serve --model "$RUN" --port "$GRPC_PORT" --rest_api_port "$REST_PORT" --enable_batching &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
# The client retries while the server is still loading (UNAVAILABLE / connection refused).
"$BIN/tfship" status --server "http://127.0.0.1:$REST_PORT" --model mnist --attempts 30 --timeout 5

echo "== 4/4 query the served model"
echo "-- gRPC"
"$BIN/tfship" predict --server "grpc://127.0.0.1:$GRPC_PORT" --model mnist examples/digits/*.png
echo "-- REST"
"$BIN/tfship" predict --server "http://127.0.0.1:$REST_PORT" --model mnist examples/digits/*.png
echo "-- the same over plain curl (TF Serving's REST API)"
python3 - "$REST_PORT" <<'PY'
import json, sys, urllib.request
body = json.dumps({"signature_name": "predict_images", "instances": [[0.0] * 784]}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v1/models/mnist:predict", body,
                             {"Content-Type": "application/json"})
print("POST /v1/models/mnist:predict (a blank image) ->", json.load(urllib.request.urlopen(req))["predictions"][0][:3], "...")
PY
echo "done: SavedModel in $RUN/saved_model, exports and parity report in $RUN/exports (parity.md, parity.png)"
