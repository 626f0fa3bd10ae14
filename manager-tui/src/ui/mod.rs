//! The operator's dashboard: state (`app`, one module per screen in `screens`), the words its
//! parts exchange (`effect`), drawing (`draw`, `theme`, `layout`), the event loop (`run`).
pub mod app;
pub mod draw;
pub mod effect;
pub mod layout;
pub mod run;
pub mod screens;
pub mod sliders;
pub mod theme;

#[cfg(test)]
mod tests;
