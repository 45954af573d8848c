#![doc = include_str!("../README.md")]

pub mod crypto;
pub mod engine;
pub mod model;
pub mod rules;
pub mod store;
