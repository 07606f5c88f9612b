"""The collector's storage: SQLAlchemy 2 models, engines for SQLite (WAL) and PostgreSQL."""
