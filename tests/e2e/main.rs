//! Uchat's end-to-end tests: one binary, a module per area. Each test starts a real
//! `uchat-relay` process on a loopback port and drives the real `uchat` CLI in temporary
//! profile directories, as a user or a script would (see `uchat_tests`).

mod abuse;
mod authz;
mod bad_input;
mod call;
mod config;
mod crash;
mod delivery;
mod errors;
mod file;
mod group;
mod group_commit;
mod gui;
mod identity;
mod loadgen;
mod metrics;
mod moments;
mod netsim;
mod netsim_cli;
mod paging;
mod presence;
mod privacy;
mod roundtrip;
mod social;
mod tidy;
