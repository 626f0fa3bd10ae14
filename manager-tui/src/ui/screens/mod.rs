//! One module per screen (and per overlay), each with its own state, keys and drawing.
pub mod confirm;
pub mod dashboard;
pub mod events;
pub mod help;
pub mod login;
pub mod table;
