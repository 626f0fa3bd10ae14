//! What the gallery worker and the manager share.
pub mod api;
pub mod auth;
pub mod autoscale;
pub mod clock;
pub mod cloudwatch;
pub mod config;
pub mod db;
pub mod logging;
pub mod metrics;
pub mod network;
pub mod range;
pub mod signing;
pub mod store;
pub mod units;
