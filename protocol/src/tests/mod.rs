//! Scenario tests of the state machine through [`harness::Net`].

mod answers;
mod harness;
mod liars;
mod repeats;
mod scheduling;
