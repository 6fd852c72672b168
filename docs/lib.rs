//! The user guide's pages, included so `cargo test` compiles and runs every
//! Rust code block in them. Nothing here is public API.

#![cfg(doctest)]

macro_rules! pages {
    ($($name:ident => $file:literal),* $(,)?) => {$(
        #[doc = include_str!($file)]
        pub struct $name;
    )*};
}

pages! {
    Index => "index.md",
    StoreContract => "store-contract.md",
    CustomStore => "custom-store.md",
    Sqlite => "sqlite.md",
    Postgres => "postgres.md",
    Oracle => "oracle.md",
    Redis => "redis.md",
    Memcached => "memcached.md",
    File => "file.md",
    Performance => "performance.md",
    Scaling => "scaling.md",
    Middleware => "middleware.md",
    ClientSide => "client-side.md",
    Litestar => "litestar.md",
    Operations => "operations.md",
    Reliability => "reliability.md",
}
