#![doc = include_str!("../README.md")]

pub mod crypto;
pub mod model;
pub mod rules;
pub mod store;
