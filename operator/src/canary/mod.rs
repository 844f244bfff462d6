//! The built-in canary: the operator produces and consumes numbered records on `__oxka_canary`.
//! `tally` is its bookkeeping (pure); the client and the per-cluster task follow.

pub mod tally;
