# Genpon (原本) — slim image: Python + libmagic + poppler, non-root, data on a volume.
#   docker build -t genpon .
#   docker run -p 8000:8000 -v genpon-data:/data genpon
# PostgreSQL and S3: see README.md ("Running on PostgreSQL and S3").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    GENPON_DATA_DIR=/data GENPON_HOST=0.0.0.0 GENPON_PORT=8000 GENPON_ENVIRONMENT=production

RUN apt-get update \
 && apt-get install -y --no-install-recommends libmagic1 poppler-utils curl \
      tesseract-ocr tesseract-ocr-jpn tesseract-ocr-jpn-vert \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin genpon

WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY core ./core
COPY records ./records
COPY storage ./storage
COPY retention ./retention
COPY search ./search
COPY migrate ./migrate
COPY api ./api
COPY genpon_verify ./genpon_verify
RUN pip install --no-compile . && mkdir -p /data && chown genpon /data

USER genpon
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${GENPON_PORT}/healthz" || exit 1
# GENPON_SECRET_KEY must be set in production (the settings refuse the placeholder).
# One process by default: a node-local index takes one writer (PostgreSQL: scale containers,
# and run `genpon worker` beside them).
CMD ["sh", "-c", "genpon init && exec genpon serve --workers ${GENPON_WORKERS:-1}"]
