# registry-sync with Airflow, installed from the committed lock file only.
FROM python:3.11-slim
WORKDIR /app
ENV UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow AIRFLOW__CORE__DAGS_FOLDER=/app/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False GX_ANALYTICS_ENABLED=False
RUN pip install --no-cache-dir uv==0.13.8
COPY pyproject.toml uv.lock README.md ./
COPY transforms transforms
COPY expectations expectations
COPY synthetic_data synthetic_data
RUN uv sync --frozen --no-dev
COPY dags dags
EXPOSE 8080
CMD ["airflow", "standalone"]
