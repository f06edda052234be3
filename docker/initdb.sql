-- The index lives in its own database, apart from Airflow's metadata.
CREATE DATABASE registry_index;
