# Haven container image.
#
# Base: Debian 12 "bookworm" slim with Debian's own Python 3.11. A plain Debian
# base gets security updates through Debian's archive like any other Debian
# machine the school runs, and it is the base our CI can rebuild faithfully
# without a registry (see scripts/container-smoke).
#
# Stage 1 builds a virtual environment in /opt/venv; stage 2 copies it into a
# clean image with no compilers, no pip and no build files.
#
# Debian packages are pinned to the versions bookworm ships (hadolint DL3008);
# Debian keeps them for the life of the release.

FROM debian:bookworm-slim AS builder

ARG DEBIAN_FRONTEND=noninteractive
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3=3.11.2-1+b1 \
        python3-venv=3.11.2-1+b1 \
        binutils=2.40-2 \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, in a layer of their own: it is rebuilt only when
# requirements.lock changes, not on every change to the application.
# Debug symbols in the wheels' extension modules are a fifth of the image, so
# they go; the libraries the wheels vendor (*.libs/) are left as they are.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock \
    && find /opt/venv -type f -name '*.so' -not -path '*.libs/*' \
        -exec strip --strip-unneeded {} +

# Then the application itself, without touching the dependencies again; pip
# and setuptools are not needed at run time, so they stay behind.
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir --no-deps . \
    && pip uninstall --yes pip setuptools


FROM debian:bookworm-slim

LABEL org.opencontainers.image.title="Haven" \
      org.opencontainers.image.description="Social media and mobile phone safeguarding for UK schools" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3=3.11.2-1+b1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 haven \
    && useradd --system --uid 10001 --gid haven --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin haven \
    && mkdir -p /data/evidence /data/backups \
    && chown -R haven:haven /data \
    && chmod 0750 /data/evidence /data/backups

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY alembic.ini ./
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
COPY docker/entrypoint.sh ./docker/entrypoint.sh

# MALLOC_ARENA_MAX: see `haven serve` in app/cli.py.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MALLOC_ARENA_MAX=2 \
    HAVEN_DEV=false \
    HAVEN_EVIDENCE_DIR=/data/evidence

USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
