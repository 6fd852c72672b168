//! The user guide's pages, included so `cargo test` compiles and runs every
//! Rust code block in them. Nothing here is public API.

#![cfg(doctest)]

#[doc = include_str!("index.md")]
pub struct Index;

#[doc = include_str!("store-contract.md")]
pub struct StoreContract;

#[doc = include_str!("custom-store.md")]
pub struct CustomStore;
