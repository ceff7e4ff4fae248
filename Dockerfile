# The worker in a container: `socdef serve` (granian, 2 processes, SQLite limiter), port 8000.
# Builds happen elsewhere (CI, see .github/workflows/feeds.yml); the container only serves.
#   docker build -t socdef .
#   docker run -p 8000:8000 -v socdef-data:/data -e SOCDEF_BUCKET=s3://bucket/prefix socdef
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY generator ./generator
COPY exports ./exports
COPY worker ./worker
RUN pip install --no-cache-dir ".[postgres]" \
 && useradd --system --create-home socdef \
 && mkdir /data && chown socdef /data

USER socdef
ENV SOCDEF_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["socdef", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
