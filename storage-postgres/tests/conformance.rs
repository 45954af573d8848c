//! The one storage conformance suite (`licentia_core::conformance`), run against a fresh
//! PostgreSQL database per check (from `DATABASE_URL`), each on a pool of 10 connections.

licentia_core::conformance_suite!(licentia_storage_postgres::testing::fresh_store().await);
