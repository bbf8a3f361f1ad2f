# hcc-cds: the CDS Hooks service as a container image.
#
#   docker build --build-arg GIT_COMMIT="$(git rev-parse --short=12 HEAD)" -t hcc-cds .
#   docker run --rm -p 127.0.0.1:8080:8080 hcc-cds            # demo mode, embedded synthetic data
#
# Two stages on python:3.11-slim: the builder makes the wheel and installs it with its pinned
# dependencies into the venv /opt/venv; the runtime stage holds that venv and nothing else of the
# source tree, and runs as a non-root user. Paths are spelled out (python3, /opt/venv/bin/...) so
# that the image also builds on a base without the official image's ENV (tools/container_ci.sh
# builds on a local stand-in made with mmdebstrap and `docker import`).

FROM python:3.11-slim AS builder

ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

WORKDIR /src
RUN python3 -m venv /opt/venv

# Dependencies first (their own layer: rebuilt only when pyproject.toml changes).
COPY pyproject.toml ./
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

COPY README.md ./
COPY rules ./rules
COPY service ./service
RUN /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-cache-dir /wheels/hcc_cds-*.whl \
    && /opt/venv/bin/pip check

# Every data file of the source packages (value sets, thresholds, benchmark tables and plots, demo
# patients, ...) must be in the installed package: a missing one means pyproject.toml's
# [tool.setuptools.package-data] does not list it, and the image would fail at run time.
RUN /opt/venv/bin/python -I -c "import pathlib as p, sys, rules, service; \
m = [str(f) for k in (rules, service) for f in sorted(p.Path('/src', k.__name__).rglob('*')) \
     if f.is_file() and f.suffix not in ('.py', '.pyc') and '__pycache__' not in f.parts \
     and not (p.Path(k.__file__).parent / f.relative_to('/src', k.__name__)).is_file()]; \
sys.exit('package data missing from the wheel (list it in [tool.setuptools.package-data]): ' + ', '.join(m) if m else 0)"

# The commit the image is built from, read by service/build_info.py (last: changes every commit).
ARG GIT_COMMIT=unknown
RUN /opt/venv/bin/python -I -c "import pathlib, sys, service; pathlib.Path(service.__file__).with_name('BUILD_COMMIT').write_text(sys.argv[1] + '\n')" "$GIT_COMMIT"


FROM python:3.11-slim AS runtime

ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="hcc-cds" \
      org.opencontainers.image.description="CDS Hooks 2.0 decision support for HCC after TACE failure" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${GIT_COMMIT}"

ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HCC_WORKERS=1 \
    HCC_DATABASE_URL=sqlite:////var/lib/hcc-cds/hcc-cds.sqlite3

# The service's user, and its one writable directory: the SQLite database (stored assessments
# behind card links, feedback, audit, JWT ids) unless HCC_DATABASE_URL names PostgreSQL.
RUN groupadd --gid 10001 hcc \
    && useradd --uid 10001 --gid hcc --no-log-init --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin hcc \
    && install -d -o hcc -g hcc -m 0750 /var/lib/hcc-cds

COPY --from=builder /opt/venv /opt/venv

# An empty, read-only working directory: uvicorn puts it first on sys.path.
WORKDIR /srv/hcc-cds
VOLUME ["/var/lib/hcc-cds"]
USER 10001:10001
EXPOSE 8080

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]

# create_app() reads its settings (HCC_*) from the environment, once in each worker.
# hcc-cds serve: HCC_WORKERS worker processes, JSON logs without an access log of raw paths,
# graceful shutdown of in-flight requests on SIGTERM
CMD ["/opt/venv/bin/hcc-cds", "serve", "--host", "0.0.0.0", "--port", "8080"]
