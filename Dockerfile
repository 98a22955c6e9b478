FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 AIRFLOW_HOME=/opt/airflow
WORKDIR /opt/slw
COPY requirements.txt ./
RUN pip install --requirement requirements.txt
COPY . .
RUN pip install --no-deps --no-build-isolation --editable .
