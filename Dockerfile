# Peer Bridge container image: the wheel and its dependencies built in one stage, installed into a
# slim runtime that runs as an unprivileged user. Config, keys and the directory file are mounted at
# /etc/bridge (make them with `bridge init`); secrets come from the environment.
#
#   docker build -t peer-bridge .
#   docker run -p 8080:8080 -v "$PWD/site:/etc/bridge:ro" -e BRIDGE_OPS_API_KEY=... peer-bridge
#
# tests/test_deploy.py runs every COPY and RUN step below in a clean folder (base images cannot be
# pulled on the development machines): keep to COPY, RUN, WORKDIR, ENV, USER, EXPOSE, HEALTHCHECK, CMD.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY config/rules ./config/rules
# the bridge's wheel (templates, static files, rules and the example config inside) and a wheel
# for every dependency, so the runtime stage installs without a compiler or the network
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels /src

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir --no-index --find-links /wheels peer-bridge && rm -rf /wheels
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/bridge --create-home bridge
USER bridge
WORKDIR /var/lib/bridge
ENV BRIDGE_CONFIG=/etc/bridge/bridge.toml \
    BRIDGE_DIRECTORY=/etc/bridge/directory.json \
    PYTHONUNBUFFERED=1
EXPOSE 8080
# ready = the store answers and is writable, no endpoint's breaker open, someone can sign in
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/health/ready', timeout=4)"]
CMD ["bridge", "serve", "--host", "0.0.0.0", "--port", "8080"]
