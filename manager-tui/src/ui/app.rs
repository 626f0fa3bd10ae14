//! The dashboard's state and how it changes. Nothing here draws or does I/O: keys, ticks
//! and API replies come in, `Command`s for the event loop go out.
use common::api::{AccountRow, DeleteReply, ObjectRow, OtpReply, Page, PhotoRow, PoolReply, Status, TokenReply, UserUsage};
use common::autoscale::Policy;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;

use super::layout;

use crate::client::ClientError;
use crate::once::human_bytes;

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

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    RequestCode(String),
    Verify { challenge: String, code: String },
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

#[derive(Debug, Clone)]
pub enum TableData {
    Accounts(Page<AccountRow>),
    Photos(Page<PhotoRow>),
    Objects(Page<ObjectRow>),
    Users(Vec<UserUsage>),
}

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

#[derive(Debug, Clone, PartialEq)]
pub enum LoginStep {
    Email,
    Sending,
    Code { challenge: String, email: String, deadline: f64 },
    Verifying,
    /// Logged in; asks whether to keep the token for `--once`.
    OfferSave { token: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Login,
    Dashboard,
    Table(TableKind),
    Events,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Workers,
    Autoscaler,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Cpu,
    Requests,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

/// One autoscaler setting the operator can slide.
pub struct Slider {
    pub label: &'static str,
    pub get: fn(&Policy) -> f64,
    pub set: fn(&mut Policy, f64),
    pub step: f64,
    pub min: f64,
    pub max: f64,
    pub show: fn(f64) -> String,
}

fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}
fn ratio(v: f64) -> String {
    format!("×{v:.2}")
}
fn count(v: f64) -> String {
    format!("{v:.0}")
}
fn secs(v: f64) -> String {
    format!("{v:.0} s")
}

pub const SLIDERS: [Slider; 7] = [
    Slider { label: "grow above CPU", get: |p| p.grow_cpu, set: |p, v| p.grow_cpu = v, step: 0.05, min: 0.05, max: 1.0, show: pct },
    Slider { label: "shrink below CPU", get: |p| p.shrink_cpu, set: |p, v| p.shrink_cpu = v, step: 0.05, min: 0.0, max: 0.95, show: pct },
    Slider { label: "expand ratio", get: |p| p.expand_ratio, set: |p, v| p.expand_ratio = v, step: 0.25, min: 1.25, max: 10.0, show: ratio },
    Slider { label: "shrink ratio", get: |p| p.shrink_ratio, set: |p, v| p.shrink_ratio = v, step: 0.05, min: 0.05, max: 0.95, show: ratio },
    Slider { label: "min workers", get: |p| p.min_workers as f64, set: |p, v| p.min_workers = v as u32, step: 1.0, min: 1.0, max: 100.0, show: count },
    Slider { label: "max workers", get: |p| p.max_workers as f64, set: |p, v| p.max_workers = v as u32, step: 1.0, min: 1.0, max: 100.0, show: count },
    Slider { label: "cooldown", get: |p| p.cooldown_secs, set: |p, v| p.cooldown_secs = v, step: 10.0, min: 0.0, max: 600.0, show: secs },
];

/// Rows fetched per table page (the client asks for this many).
pub const PAGE: u64 = 200;

pub struct Confirm {
    pub action: Danger,
    pub typed: String,
}

#[derive(Default)]
pub struct TableView {
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    /// Account id per row (users table), for "delete this user's photos".
    pub ids: Vec<u64>,
    pub total: u64,
    /// Row number of the first row held (tables are fetched a page at a time).
    pub offset: u64,
    pub selected: usize,
    pub sort: Option<(usize, bool)>,
    pub filter: String,
    pub filtering: bool,
    pub loading: bool,
}

impl TableView {
    /// Rows after the filter and sort, with their original index.
    pub fn visible(&self) -> Vec<(usize, &Vec<String>)> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<(usize, &Vec<String>)> = self
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| needle.is_empty() || r.iter().any(|c| c.to_lowercase().contains(&needle)))
            .collect();
        if let Some((col, desc)) = self.sort {
            rows.sort_by(|a, b| {
                let (x, y) = (&a.1[col], &b.1[col]);
                let ord = match (sort_key(x), sort_key(y)) {
                    (Some(p), Some(q)) => p.partial_cmp(&q).unwrap_or(std::cmp::Ordering::Equal),
                    _ => x.cmp(y),
                };
                if desc { ord.reverse() } else { ord }
            });
        }
        rows
    }
}

/// Numbers (and sizes like "1.5 MiB") sort by value.
fn sort_key(cell: &str) -> Option<f64> {
    let mut parts = cell.split_whitespace();
    let n: f64 = parts.next()?.parse().ok()?;
    let scale = match parts.next() {
        None | Some("B") => 1.0,
        Some("KiB") => 1024.0,
        Some("MiB") => 1024.0 * 1024.0,
        Some("GiB") => 1024.0 * 1024.0 * 1024.0,
        Some(_) => return None,
    };
    Some(n * scale)
}

pub struct App {
    pub api: String,
    pub screen: Screen,
    pub login: LoginStep,
    pub input: String,
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
    pub focus: Focus,
    pub large: Metric,
    pub selected_worker: usize,
    pub slider: usize,
    /// The policy being edited; `None` shows the live one.
    pub draft: Option<Policy>,
    pub confirm: Option<Confirm>,
    pub table: TableView,
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
            screen: if logged_in { Screen::Dashboard } else { Screen::Login },
            login: LoginStep::Email,
            input: String::new(),
            token,
            status: None,
            reachable: true,
            balancer_up: None,
            last_refresh: None,
            refreshing: false,
            paused: false,
            refresh_every: 3.0,
            message: None,
            focus: Focus::Workers,
            large: Metric::Cpu,
            selected_worker: 0,
            slider: 0,
            draft: None,
            confirm: None,
            table: TableView::default(),
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

    pub fn policy(&self) -> Option<&Policy> {
        self.draft.as_ref().or(self.status.as_ref().map(|s| &s.policy))
    }

    pub fn on_tick(&mut self, now: f64) -> Vec<Command> {
        self.now = now;
        if let LoginStep::Code { deadline, .. } = self.login {
            if self.screen == Screen::Login && now > deadline {
                self.login = LoginStep::Email;
                self.input.clear();
                self.error("the code expired; enter your e-mail to get a new one");
            }
        }
        let due = self.last_refresh.is_none_or(|t| now - t >= self.refresh_every);
        if self.screen != Screen::Login && self.token.is_some() && !self.paused && due {
            return self.refresh();
        }
        Vec::new()
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return Vec::new();
        }
        if self.confirm.is_some() {
            return self.confirm_key(key);
        }
        if self.help {
            self.help = false;
            return Vec::new();
        }
        match self.screen {
            Screen::Login => self.login_key(key),
            Screen::Dashboard => self.dashboard_key(key),
            Screen::Table(kind) => self.table_key(kind, key),
            Screen::Events => {
                if matches!(key.code, KeyCode::Esc | KeyCode::Char('q') | KeyCode::Backspace) {
                    self.screen = Screen::Dashboard;
                }
                Vec::new()
            }
        }
    }

    fn login_key(&mut self, key: KeyEvent) -> Vec<Command> {
        match (&self.login, key.code) {
            (LoginStep::OfferSave { token }, KeyCode::Char('y' | 'Y')) => {
                let token = token.clone();
                self.enter_dashboard();
                self.info("token saved for `manager-tui --once`");
                let mut cmds = vec![Command::SaveToken(token)];
                cmds.extend(self.refresh());
                cmds
            }
            (LoginStep::OfferSave { .. }, KeyCode::Char('n' | 'N') | KeyCode::Enter | KeyCode::Esc) => {
                self.enter_dashboard();
                self.refresh()
            }
            (LoginStep::Sending | LoginStep::Verifying | LoginStep::OfferSave { .. }, _) => Vec::new(),
            (_, KeyCode::Esc) => {
                if matches!(self.login, LoginStep::Email) {
                    self.quit = true;
                } else {
                    self.login = LoginStep::Email;
                }
                self.input.clear();
                Vec::new()
            }
            (_, KeyCode::Backspace) => {
                self.input.pop();
                Vec::new()
            }
            (LoginStep::Email, KeyCode::Enter) => {
                let email = self.input.trim().to_owned();
                if !email.contains('@') {
                    self.error("enter the e-mail address you are registered with as an operator");
                    return Vec::new();
                }
                self.login = LoginStep::Sending;
                self.message = None;
                vec![Command::RequestCode(email)]
            }
            (LoginStep::Code { challenge, .. }, KeyCode::Enter) => {
                let code = self.input.trim().to_owned();
                if code.len() != 6 {
                    self.error("the code has 6 digits");
                    return Vec::new();
                }
                let challenge = challenge.clone();
                self.login = LoginStep::Verifying;
                vec![Command::Verify { challenge, code }]
            }
            (LoginStep::Code { .. }, KeyCode::Char(c)) if c.is_ascii_digit() && self.input.len() < 6 => {
                self.input.push(c);
                Vec::new()
            }
            (LoginStep::Email, KeyCode::Char(c)) if !c.is_control() && self.input.len() < 254 => {
                self.input.push(c);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn enter_dashboard(&mut self) {
        self.screen = Screen::Dashboard;
        self.login = LoginStep::Email;
        self.input.clear();
    }

    fn dashboard_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let workers = self.status.as_ref().map_or(0, |s| s.workers.len());
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char('p') => {
                self.paused = !self.paused;
                self.info(if self.paused { "refresh paused (p to resume)" } else { "refresh resumed" });
            }
            KeyCode::Char('r') => return self.refresh(),
            KeyCode::Char('+' | '=') => return vec![Command::Grow],
            KeyCode::Char('-') => return vec![Command::Shrink],
            KeyCode::Char('t') => {
                self.large = if self.large == Metric::Cpu { Metric::Requests } else { Metric::Cpu };
            }
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = if self.focus == Focus::Workers { Focus::Autoscaler } else { Focus::Workers };
            }
            KeyCode::Up | KeyCode::Char('k') => match self.focus {
                Focus::Workers => self.selected_worker = self.selected_worker.saturating_sub(1),
                Focus::Autoscaler => self.slider = self.slider.saturating_sub(1),
            },
            KeyCode::Down | KeyCode::Char('j') => match self.focus {
                Focus::Workers => self.selected_worker = (self.selected_worker + 1).min(workers.saturating_sub(1)),
                Focus::Autoscaler => self.slider = (self.slider + 1).min(SLIDERS.len() - 1),
            },
            KeyCode::Left | KeyCode::Right if self.focus == Focus::Autoscaler => {
                let Some(mut policy) = self.policy().cloned() else { return Vec::new() };
                let s = &SLIDERS[self.slider];
                let delta = if key.code == KeyCode::Right { s.step } else { -s.step };
                let v = (((s.get)(&policy) + delta) / s.step).round() * s.step;
                (s.set)(&mut policy, v.clamp(s.min, s.max));
                self.draft = Some(policy);
            }
            KeyCode::Enter if self.focus == Focus::Autoscaler => {
                if let Some(draft) = self.draft.clone() {
                    if let Err(e) = draft.validate() {
                        self.error(e);
                        return Vec::new();
                    }
                    return vec![Command::SetPolicy(draft)];
                }
            }
            KeyCode::Esc if self.draft.is_some() => {
                self.draft = None;
                self.info("changes discarded");
            }
            KeyCode::Char('a') => {
                let enabled = self.status.as_ref().is_some_and(|s| s.autoscaler.enabled);
                return vec![Command::SetAutoscaler(!enabled)];
            }
            KeyCode::Char('1') => return self.open_table(TableKind::Accounts),
            KeyCode::Char('2') => return self.open_table(TableKind::Photos),
            KeyCode::Char('3') => return self.open_table(TableKind::Objects),
            KeyCode::Char('4') => return self.open_table(TableKind::Users),
            KeyCode::Char('e') => self.screen = Screen::Events,
            KeyCode::Char('D') => self.ask(Danger::DeleteAllPhotos),
            KeyCode::Char('X') => self.ask(Danger::DeleteEverything),
            KeyCode::Char('S') => self.ask(Danger::StopEverything),
            _ => {}
        }
        Vec::new()
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
        match self.screen {
            Screen::Dashboard => self.click_dashboard(col, row, body),
            Screen::Table(_) => {
                let inner = layout::inner(body);
                // The first inner line is the header row.
                if layout::contains(inner, col, row) && row > inner.y {
                    let first = layout::first_table_row(self.table.selected, body);
                    let index = first + (row - inner.y - 1) as usize;
                    if index < self.table.visible().len() {
                        self.table.selected = index;
                    }
                }
                Vec::new()
            }
            Screen::Login | Screen::Events => Vec::new(),
        }
    }

    fn click_dashboard(&mut self, col: u16, row: u16, body: Rect) -> Vec<Command> {
        let Some(status) = &self.status else { return Vec::new() };
        let workers = status.workers.len();
        let d = layout::dashboard(body);
        let hit = |r: Rect| layout::contains(layout::inner(r), col, row);
        let on = |start: u16, label: &str, inner: Rect| col >= inner.x + start && col < inner.x + start + label.chars().count() as u16;
        if hit(d.workers) {
            let inner = layout::inner(d.workers);
            let index = layout::first_worker(self.selected_worker, workers, inner) + ((row - inner.y) / layout::WORKER_ROW) as usize;
            if index < workers {
                self.selected_worker = index;
                self.focus = Focus::Workers;
            }
        } else if hit(d.pool) {
            let inner = layout::inner(d.pool);
            if row == inner.y + 2 {
                let ((grow, gx), (shrink, sx)) = (layout::GROW_BUTTON, layout::SHRINK_BUTTON);
                if on(gx, grow, inner) {
                    return vec![Command::Grow];
                }
                if on(sx, shrink, inner) {
                    return vec![Command::Shrink];
                }
            }
        } else if hit(d.totals) {
            let Some(totals) = &status.totals else { return Vec::new() };
            let inner = layout::inner(d.totals);
            let line = (row - inner.y).min(1) as usize;
            let text = &layout::totals_lines(totals)[line];
            let split = text.chars().position(|c| c == '·').unwrap_or(0) as u16;
            let left = col < inner.x + split;
            let kind = match (line, left) {
                (0, true) => TableKind::Accounts,
                (0, false) => TableKind::Photos,
                (_, true) => TableKind::Objects,
                (_, false) => TableKind::Users,
            };
            return self.open_table(kind);
        } else if hit(d.autoscaler) {
            let inner = layout::inner(d.autoscaler);
            let index = layout::first_slider(self.slider, inner) + (row - inner.y) as usize;
            if index >= SLIDERS.len() {
                return Vec::new();
            }
            self.focus = Focus::Autoscaler;
            self.slider = index;
            let bar_x = inner.x + layout::SLIDER_LABEL;
            let width = layout::slider_bar_width(inner);
            if col >= bar_x && col < bar_x + width {
                if let Some(mut policy) = self.policy().cloned() {
                    let s = &SLIDERS[index];
                    let fraction = (col - bar_x) as f64 / (width - 1).max(1) as f64;
                    let v = s.min + fraction * (s.max - s.min);
                    (s.set)(&mut policy, ((v / s.step).round() * s.step).clamp(s.min, s.max));
                    self.draft = Some(policy);
                }
            }
        } else if let Some(danger) = d.danger.filter(|r| hit(*r)) {
            let inner = layout::inner(danger);
            let actions = [Danger::DeleteAllPhotos, Danger::DeleteEverything, Danger::StopEverything];
            for ((label, x), action) in layout::DANGER.iter().zip(actions) {
                if on(*x, label, inner) {
                    self.ask(action);
                }
            }
        }
        Vec::new()
    }

    fn ask(&mut self, action: Danger) {
        self.confirm = Some(Confirm { action, typed: String::new() });
    }

    fn open_table(&mut self, kind: TableKind) -> Vec<Command> {
        self.load_page(kind, 0)
    }

    fn load_page(&mut self, kind: TableKind, offset: u64) -> Vec<Command> {
        self.screen = Screen::Table(kind);
        self.table = TableView { loading: true, offset, ..TableView::default() };
        vec![Command::LoadTable(kind, offset)]
    }

    fn table_key(&mut self, kind: TableKind, key: KeyEvent) -> Vec<Command> {
        if self.table.filtering {
            match key.code {
                KeyCode::Enter | KeyCode::Esc => self.table.filtering = false,
                KeyCode::Backspace => {
                    self.table.filter.pop();
                }
                KeyCode::Char(c) if !c.is_control() => self.table.filter.push(c),
                _ => {}
            }
            self.table.selected = 0;
            return Vec::new();
        }
        let visible = self.table.visible().len();
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Backspace => self.screen = Screen::Dashboard,
            KeyCode::Up | KeyCode::Char('k') => self.table.selected = self.table.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => self.table.selected = (self.table.selected + 1).min(visible.saturating_sub(1)),
            KeyCode::PageUp => self.table.selected = self.table.selected.saturating_sub(10),
            KeyCode::PageDown => self.table.selected = (self.table.selected + 10).min(visible.saturating_sub(1)),
            KeyCode::Char('/') => self.table.filtering = true,
            KeyCode::Char('s') => {
                let cols = self.table.header.len().max(1);
                self.table.sort = match self.table.sort {
                    None => Some((0, false)),
                    Some((c, false)) => Some((c, true)),
                    Some((c, true)) if c + 1 < cols => Some((c + 1, false)),
                    Some(_) => None,
                };
            }
            KeyCode::Char('r') => return self.load_page(kind, self.table.offset),
            KeyCode::Char('n') if self.table.offset + (self.table.rows.len() as u64) < self.table.total => {
                let next = self.table.offset + self.table.rows.len() as u64;
                return self.load_page(kind, next);
            }
            KeyCode::Char('b') if self.table.offset > 0 => {
                let previous = self.table.offset.saturating_sub(PAGE);
                return self.load_page(kind, previous);
            }
            KeyCode::Char('d') if kind == TableKind::Users => {
                let visible = self.table.visible();
                if let Some(&(i, _)) = visible.get(self.table.selected) {
                    let id = self.table.ids[i];
                    self.ask(Danger::DeleteUserPhotos(id));
                }
            }
            KeyCode::Char('?') => self.help = true,
            _ => {}
        }
        Vec::new()
    }

    fn confirm_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let confirm = self.confirm.as_mut().expect("checked");
        match key.code {
            KeyCode::Esc => {
                self.confirm = None;
                self.info("cancelled");
            }
            KeyCode::Backspace => {
                confirm.typed.pop();
            }
            KeyCode::Enter => {
                if confirm.typed.trim() == confirm.action.word() {
                    let action = confirm.action;
                    self.confirm = None;
                    self.info("working…");
                    return vec![Command::Danger(action)];
                }
                let word = confirm.action.word();
                self.error(format!("type “{word}” to confirm, or Esc to cancel"));
            }
            KeyCode::Char(c) if !c.is_control() && confirm.typed.len() < 40 => confirm.typed.push(c),
            _ => {}
        }
        Vec::new()
    }

    /// An API error common to every reply: expired sessions go back to the login.
    fn failed(&mut self, e: ClientError) {
        match e {
            ClientError::Unauthorized(m) if self.screen != Screen::Login => {
                self.token = None;
                self.screen = Screen::Login;
                self.login = LoginStep::Email;
                self.error(format!("{m}"));
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
            Reply::Code(Ok(r)) => {
                let email = self.input.trim().to_owned();
                self.login = LoginStep::Code { challenge: r.challenge, email, deadline: self.now + r.expires_in as f64 };
                self.input.clear();
                self.message = None;
            }
            Reply::Code(Err(e)) => {
                self.login = LoginStep::Email;
                self.failed(e);
            }
            Reply::Token(Ok(t)) => {
                self.token = Some(t.token.clone());
                self.login = LoginStep::OfferSave { token: t.token };
                self.input.clear();
                self.message = None;
            }
            Reply::Token(Err(e)) => {
                self.login = LoginStep::Email;
                self.input.clear();
                let reason = match e {
                    ClientError::Unauthorized(m) => m,
                    other => other.to_string(),
                };
                self.error(format!("{reason}; enter your e-mail to get a new code"));
            }
            Reply::Status(result) => {
                self.refreshing = false;
                self.last_refresh = Some(self.now);
                match result {
                    Ok(s) => {
                        self.reachable = true;
                        let probe = Command::ProbeBalancer(s.balancer.clone());
                        self.selected_worker = self.selected_worker.min(s.workers.len().saturating_sub(1));
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
                self.draft = None;
                self.info("autoscaler policy applied");
                return self.refresh();
            }
            Reply::Pool(Err(e)) | Reply::Policy(Err(e)) | Reply::Stopped(Err(e)) => self.failed(e),
            Reply::Table(kind, Ok(data)) if self.screen == Screen::Table(kind) => self.fill_table(data),
            Reply::Table(_, Ok(_)) => {}
            Reply::Table(_, Err(e)) => {
                self.table.loading = false;
                self.failed(e);
            }
            Reply::Deleted(action, Ok(r)) => {
                self.info(format!("deleted {} photos, {} files, {} accounts", r.photos, r.objects, r.accounts));
                let mut cmds = self.refresh();
                if let (Danger::DeleteUserPhotos(_), Screen::Table(kind)) = (action, self.screen) {
                    cmds.extend(self.load_page(kind, 0));
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

    fn fill_table(&mut self, data: TableData) {
        let t = &mut self.table;
        t.loading = false;
        t.ids.clear();
        match data {
            TableData::Accounts(page) => {
                t.header = vec!["id", "username", "photos", "created"];
                t.total = page.total;
                t.rows = page
                    .items
                    .into_iter()
                    .map(|a| vec![a.id.to_string(), a.username, a.photos.to_string(), crate::once::clock(a.created_at as f64)])
                    .collect();
            }
            TableData::Photos(page) => {
                t.header = vec!["id", "owner", "file name", "size", "pixels", "boxes", "found by"];
                t.total = page.total;
                t.rows = page
                    .items
                    .into_iter()
                    .map(|p| {
                        vec![
                            p.id[..12.min(p.id.len())].to_owned(),
                            p.owner,
                            p.file_name,
                            human_bytes(p.bytes),
                            format!("{}×{}", p.width, p.height),
                            p.boxes.to_string(),
                            // The runtime is what differs between photos of one deployment.
                            p.detector.rsplit_once(" on ").map_or(p.detector.as_str(), |(_, runtime)| runtime).to_owned(),
                        ]
                    })
                    .collect();
            }
            TableData::Objects(page) => {
                t.header = vec!["key", "size"];
                t.total = page.total;
                t.rows = page.items.into_iter().map(|o| vec![o.key, human_bytes(o.size)]).collect();
            }
            TableData::Users(users) => {
                t.header = vec!["id", "username", "photos", "files", "total", "originals", "annotated", "thumbnails"];
                t.total = users.len() as u64;
                t.ids = users.iter().map(|u| u.id).collect();
                t.rows = users
                    .into_iter()
                    .map(|u| {
                        vec![
                            u.id.to_string(),
                            u.username.clone(),
                            u.photos.to_string(),
                            u.files().to_string(),
                            human_bytes(u.bytes()),
                            human_bytes(u.originals.bytes),
                            human_bytes(u.annotated.bytes),
                            human_bytes(u.thumbnails.bytes),
                        ]
                    })
                    .collect();
            }
        }
        t.selected = t.selected.min(t.rows.len().saturating_sub(1));
    }
}
