//! Scheduling and durable execution: cron schedules ([`ticker`], on the model's
//! [`crate::pipeline::cron`]), event triggers ([`events`]), the queue's workers ([`worker`]) and their prompt wake-up
//! ([`dispatch`]). The queue itself lives in the database (`store::queue`); runs are queued
//! through the control layer's door ([`crate::control::runs`]).
mod attempt;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod plans;
pub mod ticker;
pub mod worker;
