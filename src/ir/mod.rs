//! The IR: the contract between frontend and backends.
