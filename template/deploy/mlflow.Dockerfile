# syntax=docker/dockerfile:1
# MLflow tracking server with the PostgreSQL driver and the S3 client for MinIO.
# Keep MLFLOW_VERSION at or above the mlflow your project installs (`uv pip show mlflow`).
FROM python:3.12-slim
ARG MLFLOW_VERSION=3.17.2
RUN pip install --no-cache-dir "mlflow==${MLFLOW_VERSION}" "psycopg2-binary==2.9.10" "boto3==1.35.99" \
    && useradd --create-home --uid 10001 --user-group mlflow
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=2)"]
