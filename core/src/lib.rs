#![doc = include_str!("../README.md")]

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod crypto;
pub mod engine;
pub mod model;
pub mod rules;
pub mod store;
