//! Scenario tests of the state machine through [`harness::Net`].

mod harness;
mod liars;
mod scheduling;
