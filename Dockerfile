# The image every service of docker-compose.yml runs (Airflow, Celery workers, sandbox).
# Runtime packages only: requirements.txt's pins without the test and lint tools (filtered
# by runtime_requirements.py). The code is copied folder by folder, and .dockerignore keeps
# secrets, local data and virtualenvs out of the build context.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow \
    PYTHONPATH=/opt/slw/include \
    SLW_DATA_DIR=/opt/slw/data \
    AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False \
    SCARF_ANALYTICS=false \
    DO_NOT_TRACK=1 \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    DBT_VERSION_CHECK=false \
    GX_ANALYTICS_ENABLED=false

# A fixed uid so the named volumes, created from the folders below, belong to it.
RUN groupadd --gid 50000 slw \
    && useradd --uid 50000 --gid slw --home-dir /opt/airflow --create-home --shell /bin/bash slw

# The report's PDF draws what DejaVu Sans lacks (a leader's name in Chinese, Japanese or
# Korean) with a font fontconfig finds: WenQuanYi Micro Hei, 5 MB (SLW_REPORT_FONTS to
# name others).
RUN apt-get update \
    && apt-get install --yes --no-install-recommends fontconfig fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/slw
COPY requirements.txt include/social_leadership/runtime_requirements.py /tmp/build/
RUN python /tmp/build/runtime_requirements.py /tmp/build/requirements.txt \
        > /tmp/build/requirements-runtime.txt \
    && python -m venv /opt/venv \
    && pip install --requirement /tmp/build/requirements-runtime.txt \
    && rm -r /tmp/build

COPY pyproject.toml README.md ./
COPY dags/ dags/
COPY include/ include/
COPY dbt_project/ dbt_project/
# The guide slw bi and slw summary point BI readers at.
COPY docs/ docs/
RUN pip install --no-deps --no-build-isolation --editable . \
    && mkdir -p /opt/slw/data /opt/slw/lake /opt/airflow/logs /opt/airflow/auth \
    && chown slw:slw /opt/slw/data /opt/slw/lake /opt/airflow/logs /opt/airflow/auth

# The code stays root-owned (read-only to the pipeline); only the volumes are writable.
USER slw
