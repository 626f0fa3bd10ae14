//! The operator's dashboard: state (`app`), drawing (`draw`), the event loop (`run`).
pub mod app;
pub mod draw;
pub mod layout;
pub mod run;

#[cfg(test)]
mod tests;
