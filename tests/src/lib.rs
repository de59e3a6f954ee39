//! Cross-crate tests: trainer ↔ policy-core ↔ firmware. The tests live in `tests/tests/`.
