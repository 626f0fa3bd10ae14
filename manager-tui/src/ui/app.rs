//! The dashboard's state and how it changes. Nothing here draws or does I/O: keys, ticks
//! and API replies come in, `Command`s for the event loop go out. Each screen keeps its own
//! state and answers its own keys (`screens`); the app holds what is shared — the session,
//! the latest status, the message line, overlays — and applies what screens ask for.
use common::api::{DeleteReply, OtpReply, PoolReply, Status, TokenReply};
use common::autoscale::Policy;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;

use super::effect::{Command, Danger, Effect, Level, Screen, TableKind};
use super::layout;
use super::screens::confirm::{self, Confirm};
use super::screens::dashboard::Dashboard;
use super::screens::events;
use super::screens::login::Login;
use super::screens::table::{TableData, TableView};
use crate::client::ClientError;

/// What the event loop brings back.
#[derive(Debug, Clone)]
pub enum Reply {
    Code(Result<OtpReply, ClientError>),
    Token(Result<TokenReply, ClientError>),
    Status(Result<Status, ClientError>),
    Balancer(bool),
    Pool(Result<PoolReply, ClientError>),
    Policy(Result<Policy, ClientError>),
    Table(TableKind, Result<TableData, ClientError>),
    Deleted(Danger, Result<DeleteReply, ClientError>),
    Stopped(Result<PoolReply, ClientError>),
    /// The outcome of something done locally (saving the token).
    Notice(Level, String),
}

pub struct App {
    pub api: String,
    pub screen: Screen,
    pub token: Option<String>,
    pub status: Option<Status>,
    pub reachable: bool,
    /// Whether the balancer answered its last probe; `None` before the first one.
    pub balancer_up: Option<bool>,
    pub last_refresh: Option<f64>,
    pub refreshing: bool,
    pub paused: bool,
    pub refresh_every: f64,
    pub message: Option<(Level, String)>,
    pub login: Login,
    pub dashboard: Dashboard,
    pub table: TableView,
    pub confirm: Option<Confirm>,
    pub help: bool,
    pub quit: bool,
    pub now: f64,
    pub colour: bool,
}

impl App {
    pub fn new(api: &str, token: Option<String>, now: f64) -> Self {
        let logged_in = token.is_some();
        App {
            api: api.to_owned(),
            screen: if logged_in {
                Screen::Dashboard
            } else {
                Screen::Login
            },
            token,
            status: None,
            reachable: true,
            balancer_up: None,
            last_refresh: None,
            refreshing: false,
            paused: false,
            refresh_every: 3.0,
            message: None,
            login: Login::default(),
            dashboard: Dashboard::default(),
            table: TableView::default(),
            confirm: None,
            help: false,
            quit: false,
            now,
            colour: std::env::var_os("NO_COLOR").is_none(),
        }
    }

    /// The first commands of a session.
    pub fn start(&mut self) -> Vec<Command> {
        if self.token.is_some() {
            self.refresh()
        } else {
            Vec::new()
        }
    }

    fn info(&mut self, m: impl Into<String>) {
        self.message = Some((Level::Info, m.into()));
    }

    fn error(&mut self, m: impl Into<String>) {
        self.message = Some((Level::Error, m.into()));
    }

    fn refresh(&mut self) -> Vec<Command> {
        if self.refreshing {
            return Vec::new();
        }
        self.refreshing = true;
        vec![Command::Refresh]
    }

    /// Does what a screen asked for; returns the commands for the event loop.
    fn apply(&mut self, effects: Vec<Effect>) -> Vec<Command> {
        let mut commands = Vec::new();
        for effect in effects {
            match effect {
                Effect::Command(c) => commands.push(c),
                Effect::Refresh => commands.extend(self.refresh()),
                Effect::Message(level, text) => self.message = Some((level, text)),
                Effect::ClearMessage => self.message = None,
                Effect::Go(screen) => {
                    self.screen = screen;
                    if let Screen::Table(kind) = screen {
                        commands.push(self.table.load(kind, 0));
                    }
                }
                Effect::Ask(action) => self.confirm = Some(Confirm::new(action)),
                Effect::Help => self.help = true,
                Effect::TogglePause => {
                    self.paused = !self.paused;
                    self.info(if self.paused {
                        "refresh paused (p to resume)"
                    } else {
                        "refresh resumed"
                    });
                }
                Effect::Quit => self.quit = true,
            }
        }
        commands
    }

    pub fn on_tick(&mut self, now: f64) -> Vec<Command> {
        self.now = now;
        if self.screen == Screen::Login {
            let effects = self.login.on_tick(now);
            return self.apply(effects);
        }
        let due = self
            .last_refresh
            .is_none_or(|t| now - t >= self.refresh_every);
        if self.token.is_some() && !self.paused && due {
            return self.refresh();
        }
        Vec::new()
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return Vec::new();
        }
        if let Some(dialog) = &mut self.confirm {
            let effects = match dialog.on_key(key) {
                confirm::Outcome::Open(effects) => effects,
                confirm::Outcome::Closed(effects) => {
                    self.confirm = None;
                    effects
                }
            };
            return self.apply(effects);
        }
        if self.help {
            self.help = false;
            return Vec::new();
        }
        let effects = match self.screen {
            Screen::Login => self.login.on_key(key),
            Screen::Dashboard => self.dashboard.on_key(key, self.status.as_ref()),
            Screen::Table(kind) => self.table.on_key(kind, key),
            Screen::Events => events::on_key(key),
        };
        self.apply(effects)
    }

    /// A left click at (`col`, `row`) on a terminal of size `area`: buttons and rows do
    /// what their keys do.
    pub fn on_click(&mut self, col: u16, row: u16, area: Rect) -> Vec<Command> {
        if self.help {
            self.help = false;
            return Vec::new();
        }
        if self.confirm.is_some() {
            return Vec::new();
        }
        let [_, body, _, _] = layout::screen(area);
        let effects = match self.screen {
            Screen::Dashboard => self
                .dashboard
                .on_click(col, row, body, self.status.as_ref()),
            Screen::Table(_) => {
                self.table.on_click(col, row, body);
                Vec::new()
            }
            Screen::Login | Screen::Events => Vec::new(),
        };
        self.apply(effects)
    }

    /// An API error common to every reply: expired sessions go back to the login.
    fn failed(&mut self, e: ClientError) {
        match e {
            ClientError::Unauthorized(m) if self.screen != Screen::Login => {
                self.token = None;
                self.screen = Screen::Login;
                self.login.step = super::screens::login::LoginStep::Email;
                self.error(m);
            }
            ClientError::Unreachable { .. } => {
                self.reachable = false;
                self.error(e.to_string());
            }
            other => self.error(other.to_string()),
        }
    }

    pub fn on_reply(&mut self, reply: Reply) -> Vec<Command> {
        match reply {
            Reply::Code(result) => match self.login.on_code(result, self.now) {
                Ok(effects) => return self.apply(effects),
                Err(e) => self.failed(e),
            },
            Reply::Token(result) => {
                if let Ok(t) = &result {
                    self.token = Some(t.token.clone());
                }
                let effects = self.login.on_token(&result);
                return self.apply(effects);
            }
            Reply::Status(result) => {
                self.refreshing = false;
                self.last_refresh = Some(self.now);
                match result {
                    Ok(s) => {
                        self.reachable = true;
                        let probe = Command::ProbeBalancer(s.balancer.clone());
                        self.dashboard.on_status(&s);
                        self.status = Some(s);
                        if matches!(self.message, Some((Level::Error, _))) {
                            self.message = None;
                        }
                        return vec![probe];
                    }
                    Err(e) => self.failed(e),
                }
            }
            Reply::Pool(Ok(r)) => {
                self.info(r.message);
                return self.refresh();
            }
            Reply::Policy(Ok(_)) => {
                self.dashboard.draft = None;
                self.info("autoscaler policy applied");
                return self.refresh();
            }
            Reply::Pool(Err(e)) | Reply::Policy(Err(e)) | Reply::Stopped(Err(e)) => self.failed(e),
            Reply::Table(kind, Ok(data)) if self.screen == Screen::Table(kind) => {
                self.table.fill(data)
            }
            Reply::Table(_, Ok(_)) => {}
            Reply::Table(_, Err(e)) => {
                self.table.loading = false;
                self.failed(e);
            }
            Reply::Deleted(action, Ok(r)) => {
                self.info(format!(
                    "deleted {} photos, {} files, {} accounts",
                    r.photos, r.objects, r.accounts
                ));
                let mut cmds = self.refresh();
                if let (Danger::DeleteUserPhotos(_), Screen::Table(kind)) = (action, self.screen) {
                    cmds.push(self.table.load(kind, 0));
                }
                return cmds;
            }
            Reply::Deleted(_, Err(e)) => self.failed(e),
            Reply::Stopped(Ok(r)) => self.info(r.message),
            Reply::Notice(level, text) => self.message = Some((level, text)),
            Reply::Balancer(up) => self.balancer_up = Some(up),
        }
        Vec::new()
    }
}
