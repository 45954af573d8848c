//! Cryptographic formats: signed runtime envelopes, offline envelopes and secrets (DESIGN 4).
