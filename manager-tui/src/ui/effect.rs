//! The words the dashboard's parts speak to each other: what a screen asks of the app
//! ([`Effect`]), what the app asks of the event loop ([`Command`]), and the names both use.
use common::autoscale::Policy;

/// What the event loop is asked to do (API calls, saving the token).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    RequestCode(String),
    Verify {
        challenge: String,
        code: String,
    },
    SaveToken(String),
    Refresh,
    /// Is the public entry point (the balancer) answering?
    ProbeBalancer(String),
    Grow,
    Shrink,
    SetPolicy(Policy),
    SetAutoscaler(bool),
    /// A page of a table, from this row on.
    LoadTable(TableKind, u64),
    Danger(Danger),
}

/// What a screen's handling of a key, click or reply asks of the app around it.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Command(Command),
    /// A status refresh (the app runs one at a time).
    Refresh,
    Message(Level, String),
    ClearMessage,
    /// Show another screen; a table opens at its first page.
    Go(Screen),
    /// Ask the operator to type the action's name first.
    Ask(Danger),
    Help,
    TogglePause,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Login,
    Dashboard,
    Table(TableKind),
    Events,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Accounts,
    Photos,
    Objects,
    Users,
}

impl TableKind {
    pub fn title(self) -> &'static str {
        match self {
            TableKind::Accounts => "Accounts",
            TableKind::Photos => "Photos",
            TableKind::Objects => "Objects",
            TableKind::Users => "User usage",
        }
    }
}

/// The actions that cannot be undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Danger {
    DeleteAllPhotos,
    DeleteEverything,
    StopEverything,
    DeleteUserPhotos(u64),
}

impl Danger {
    /// What the operator must type to confirm.
    pub fn word(self) -> &'static str {
        match self {
            Danger::DeleteAllPhotos => "delete all photos",
            Danger::DeleteEverything => "delete everything",
            Danger::StopEverything => "stop everything",
            Danger::DeleteUserPhotos(_) => "delete",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}
