//! End-to-end tests with real clients; see `tests/e2e/`.
