# image-origin: the origin (`image-origin serve`) or the worker (`image-origin worker`), one image.
# libvips comes from the pyvips-binary wheel: no system libvips, no compiler in the final image.
# Validated here without a Docker engine by tests/deploy/test_container_recipe.py (see README, "Run it for real").

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY origin ./origin
COPY workers ./workers
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --quiet /src \
 && /opt/venv/bin/python -c "import pyvips, origin.app; print('libvips', pyvips.version(0), pyvips.version(1), pyvips.version(2))"

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /srv --shell /usr/sbin/nologin origin \
 && mkdir -p /srv/data \
 && chown origin:origin /srv/data
COPY --from=build /opt/venv /opt/venv
COPY config /srv/config
WORKDIR /srv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    IMAGE_ORIGIN_HOST=0.0.0.0 \
    IMAGE_ORIGIN_PORT=8080 \
    IMAGE_ORIGIN_STORAGE_URL=file:///srv/data
USER origin
EXPOSE 8080
VOLUME ["/srv/data"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_/health' % os.environ.get('IMAGE_ORIGIN_PORT', '8080'), timeout=2)"]
CMD ["image-origin", "serve"]
