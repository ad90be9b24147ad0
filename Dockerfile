# TensorFlow Serving for the tfship MNIST model: gRPC on 8500, REST on 8501, Prometheus metrics at
# /monitoring/prometheus/metrics. The model is mounted, not baked in (see docker-compose.yml):
#   docker build -t tfship-serving .
#   docker run --rm -p 8500:8500 -p 8501:8501 \
#     -v "$PWD/runs/cnn/saved_model:/models/mnist:ro" tfship-serving
# The config files in docker/ are written by `tfship serve --write-config docker --model runs/cnn`;
# tests/serve/test_container.py checks that they parse with TF Serving's protos and match this file.
# Pinned: the newest TF Serving release whose tag the tensorflow/serving repository carries (2.20.0);
# the SavedModels are written by TensorFlow 2.21, whose ops the CNN uses all exist in 2.20.
FROM tensorflow/serving:2.20.0

ENV MODEL_NAME=mnist \
    MODEL_BASE_PATH=/models

COPY docker/models.config docker/batching_parameters.txt docker/monitoring.config /etc/tfship/

EXPOSE 8500 8501

# The image has bash but neither curl nor wget: ask the REST API over bash's /dev/tcp and require
# a version in state AVAILABLE.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8501 && printf 'GET /v1/models/mnist HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q AVAILABLE <&3"]

ENTRYPOINT ["/usr/bin/tensorflow_model_server", \
    "--port=8500", \
    "--rest_api_port=8501", \
    "--model_config_file=/etc/tfship/models.config", \
    "--enable_batching=true", \
    "--batching_parameters_file=/etc/tfship/batching_parameters.txt", \
    "--monitoring_config_file=/etc/tfship/monitoring.config", \
    "--file_system_poll_wait_seconds=1", \
    "--model_config_file_poll_wait_seconds=30"]
