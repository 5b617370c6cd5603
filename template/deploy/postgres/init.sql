-- One PostgreSQL for the stack: a database per component.
CREATE DATABASE mlflow;
CREATE DATABASE prefect;
CREATE DATABASE predictions;
