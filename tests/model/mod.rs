//! An exhaustive, bounded model check of the payment engine: the real `decide()` driven by a model of
//! the shell (replicas, Lease, guarded writes, stale reads, crashes) and of Tencent (order statuses,
//! pay-together groups, big deals, a ledger, every PayDeals and lookup outcome).

pub mod adapter;
pub mod check;
pub mod engine;
pub mod live;
pub mod mutants;
pub mod scenarios;
pub mod shell;
pub mod state;
pub mod world;
