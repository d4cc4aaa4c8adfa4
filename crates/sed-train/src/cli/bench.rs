//! `sed-train bench`: see `sed_train::bench`.

pub use sed_train::bench::{BenchArgs, run};
