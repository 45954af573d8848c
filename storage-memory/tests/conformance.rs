//! The one storage conformance suite (`licentia_core::conformance`), run against a fresh
//! `MemoryStore` per check.

licentia_core::conformance_suite!(licentia_storage_memory::MemoryStore::new());
