//! The one event loop: terminal input, ticks and API replies arrive on one channel; API
//! calls run as tasks, so drawing never waits for the network.
use std::io::Stdout;
use std::time::Duration;

use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event as TermEvent, KeyEvent, KeyEventKind,
    MouseButton, MouseEventKind,
};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::app::{App, Reply};
use super::draw::draw;
use super::effect::{Command, Danger, Level, TableKind};
use super::screens::table::TableData;
use crate::client::Client;

pub enum Event {
    Key(KeyEvent),
    Click { col: u16, row: u16 },
    Redraw,
    Reply(Reply),
}

pub use common::clock::now;

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(std::io::stdout(), DisableMouseCapture, LeaveAlternateScreen);
}

/// Runs the dashboard in the real terminal until the operator quits.
pub async fn run(client: Client, token: Option<String>) -> anyhow::Result<()> {
    enable_raw_mode()?;
    execute!(std::io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        hook(info);
    }));
    let mut terminal: Terminal<CrosstermBackend<Stdout>> =
        Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    terminal.clear()?;
    let (tx, rx) = mpsc::unbounded_channel();
    let input = tx.clone();
    std::thread::spawn(move || loop {
        let event = match event::read() {
            Ok(TermEvent::Key(k)) if k.kind == KeyEventKind::Press => Event::Key(k),
            Ok(TermEvent::Resize(..)) => Event::Redraw,
            Ok(TermEvent::Mouse(m)) if m.kind == MouseEventKind::Down(MouseButton::Left) => {
                Event::Click {
                    col: m.column,
                    row: m.row,
                }
            }
            Ok(_) => continue,
            Err(_) => break,
        };
        if input.send(event).is_err() {
            break;
        }
    });
    let app = App::new(client.base(), token, now());
    let result = event_loop(&mut terminal, app, client, tx, rx).await;
    restore_terminal();
    result.map(|_| ())
}

pub async fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    mut app: App,
    client: Client,
    tx: mpsc::UnboundedSender<Event>,
    mut rx: mpsc::UnboundedReceiver<Event>,
) -> anyhow::Result<App> {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    for cmd in app.start() {
        dispatch(cmd, &app, &client, &tx);
    }
    loop {
        terminal.draw(|f| draw(f, &app))?;
        let event = tokio::select! {
            e = rx.recv() => e,
            _ = tick.tick() => None,
        };
        let commands = match event {
            Some(Event::Key(k)) => app.on_key(k),
            Some(Event::Click { col, row }) => {
                let size = terminal.size()?;
                app.on_click(
                    col,
                    row,
                    ratatui::layout::Rect::new(0, 0, size.width, size.height),
                )
            }
            Some(Event::Reply(r)) => app.on_reply(r),
            Some(Event::Redraw) => Vec::new(),
            None => app.on_tick(now()),
        };
        for cmd in commands {
            dispatch(cmd, &app, &client, &tx);
        }
        if app.quit {
            return Ok(app);
        }
    }
}

fn dispatch(cmd: Command, app: &App, client: &Client, tx: &mpsc::UnboundedSender<Event>) {
    let client = match &app.token {
        Some(t) => client.with_token(t.clone()),
        None => client.clone(),
    };
    if let Command::SaveToken(token) = &cmd {
        let reply = match crate::token::default_path() {
            Some(path) => match crate::token::save(&path, token) {
                Ok(()) => Reply::Notice(Level::Info, format!("token saved to {}", path.display())),
                Err(e) => Reply::Notice(
                    Level::Error,
                    format!("could not save the token to {}: {e}", path.display()),
                ),
            },
            None => Reply::Notice(
                Level::Error,
                "no config directory to save the token in (HOME unset)".into(),
            ),
        };
        let _ = tx.send(Event::Reply(reply));
        return;
    }
    let tx = tx.clone();
    tokio::spawn(async move {
        let reply = execute(cmd, &client).await;
        let _ = tx.send(Event::Reply(reply));
    });
}

/// Carries out one command against the control API.
pub async fn execute(cmd: Command, client: &Client) -> Reply {
    match cmd {
        Command::RequestCode(email) => Reply::Code(client.request_code(&email).await),
        Command::Verify { challenge, code } => Reply::Token(client.verify(&challenge, &code).await),
        Command::Refresh => Reply::Status(client.status().await),
        Command::ProbeBalancer(address) => Reply::Balancer(client.probe_balancer(&address).await),
        Command::Grow => Reply::Pool(client.grow().await),
        Command::Shrink => Reply::Pool(client.shrink().await),
        Command::SetPolicy(p) => Reply::Policy(client.set_policy(&p).await),
        Command::SetAutoscaler(on) => Reply::Pool(client.set_autoscaler(on).await),
        Command::LoadTable(kind, offset) => {
            let data = match kind {
                TableKind::Accounts => client.accounts(offset).await.map(TableData::Accounts),
                TableKind::Photos => client.photos(offset).await.map(TableData::Photos),
                TableKind::Objects => client.objects(offset).await.map(TableData::Objects),
                TableKind::Users => client.users().await.map(TableData::Users),
            };
            Reply::Table(kind, data)
        }
        Command::Danger(action) => match action {
            Danger::DeleteAllPhotos => Reply::Deleted(action, client.delete_all_photos().await),
            Danger::DeleteEverything => Reply::Deleted(action, client.delete_everything().await),
            Danger::DeleteUserPhotos(id) => {
                Reply::Deleted(action, client.delete_user_photos(id).await)
            }
            Danger::StopEverything => Reply::Stopped(client.stop_everything().await),
        },
        Command::SaveToken(_) => {
            Reply::Notice(Level::Error, "saving is done by the event loop".into())
        }
    }
}
