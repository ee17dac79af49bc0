# The queue service image: the service package and its locked runtime dependencies, nothing else
# (no cdktf, no node, no test tools, no documentation: a docs-only commit builds no new image). Built by
# `make image` (infra/release.py) with Cloud Build from `git archive` of the files copied below, tagged with
# their hash; the COPY lines are the image's identity (infra/source.py reads them).
FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir "uv==0.13.8"
WORKDIR /app
# Dependencies first (cached while only the code changes), from the same lock the tests use.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-default-groups --no-dev --no-install-project
COPY service ./service
RUN uv sync --locked --no-default-groups --no-dev --no-editable

FROM python:3.11-slim
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 PORT=8080
USER 10001
EXPOSE 8080
# Exec form: the Python process is PID 1 and receives Cloud Run's SIGTERM itself (graceful drain, ~10 s grace).
CMD ["callqueue"]
