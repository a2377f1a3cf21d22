# syntax=docker/dockerfile:1
# bookrec: the API (`bookrec serve`), the worker and the scheduler all run from this image.
# The build installs exactly as `make install` does: pinned uv, then `uv sync --frozen` from
# uv.lock. (Images are not built in this repository's CI: there is no container daemon there;
# the install commands are the ones CI runs.)

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV UV_PROJECT_ENVIRONMENT=/opt/bookrec/.venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# the same uv as the Makefile's UV_VERSION
RUN python -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir "uv==0.13.9"
# dependencies first (cached while only the code changes), without the dev group
COPY pyproject.toml uv.lock README.md ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project
COPY src ./src
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-editable

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
# libgomp: implicit's and scikit-learn's OpenMP; curl: the HEALTHCHECK
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 bookrec \
    && useradd --system --uid 10001 --gid bookrec --home-dir /var/lib/bookrec --create-home bookrec
COPY --from=build /opt/bookrec/.venv /opt/bookrec/.venv
ENV PATH=/opt/bookrec/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    BOOKREC_VAR_DIR=/var/lib/bookrec \
    BOOKREC_HOST=0.0.0.0 \
    BOOKREC_PORT=8000 \
    BOOKREC_LOG_FORMAT=json
WORKDIR /var/lib/bookrec
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD curl --fail --silent --max-time 2 http://127.0.0.1:8000/health/live || exit 1
CMD ["bookrec", "serve"]
