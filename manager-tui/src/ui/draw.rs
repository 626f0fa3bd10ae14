//! Drawing the whole terminal from `&App`: the header, the showing screen, the message line,
//! the key hints and the overlays. Nothing here changes state.
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::App;
use super::effect::{Level, Screen};
use super::layout;
use super::screens::{events, help, table::TableView};
use super::theme::Theme;
use crate::fmt::clock;

pub fn draw(f: &mut Frame, app: &App) {
    let theme = Theme { colour: app.colour };
    let area = f.area();
    let [header, body, message, hints] = layout::screen(area);
    draw_header(f, app, &theme, header);
    match app.screen {
        Screen::Login => app.login.draw(f, &theme, body, app.now),
        Screen::Dashboard => {
            app.dashboard
                .draw(f, &theme, body, app.status.as_ref(), app.reachable)
        }
        Screen::Table(kind) => app.table.draw(f, &theme, body, kind),
        Screen::Events => events::draw(
            f,
            app.status
                .as_ref()
                .map(|s| s.events.as_slice())
                .unwrap_or_default(),
            body,
        ),
    }
    if let Some((level, text)) = &app.message {
        let style = match level {
            Level::Info => theme.fg(Color::Cyan),
            Level::Error => theme.fg(Color::Red).add_modifier(Modifier::BOLD),
        };
        f.render_widget(
            Paragraph::new(Line::from(Span::styled(text.as_str(), style))),
            message,
        );
    }
    let hint = match app.screen {
        Screen::Login => app.login.hints(),
        Screen::Dashboard => app.dashboard.hints(),
        Screen::Table(kind) => TableView::hints(kind),
        Screen::Events => events::HINTS,
    };
    f.render_widget(
        Paragraph::new(Line::from(hint)).style(theme.fg(Color::DarkGray)),
        hints,
    );
    if app.help {
        help::draw(f, area);
    }
    if let Some(confirm) = &app.confirm {
        confirm.draw(f, &theme, area);
    }
}

fn draw_header(f: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let mut spans = vec![Span::styled("Gallery control", theme.title())];
    if let Some(s) = &app.status {
        spans.push(Span::raw(format!(
            " · {} · balancer {} ",
            s.deployment, s.balancer
        )));
    } else {
        spans.push(Span::raw(format!(" · {} ", app.api)));
    }
    if app.screen != Screen::Login {
        let (dot, style) = match app.balancer_up {
            Some(true) => ("● reachable", theme.fg(Color::Green)),
            Some(false) => ("● not answering", theme.fg(Color::Red)),
            None => ("○ checking", theme.fg(Color::Gray)),
        };
        spans.push(Span::styled(dot, style));
        if !app.reachable {
            spans.push(Span::styled(
                " · control plane unreachable",
                theme.fg(Color::Red),
            ));
        }
        if let Some(t) = app.last_refresh {
            spans.push(Span::raw(format!(" · refreshed {}", clock(t))));
        }
        if app.paused {
            spans.push(Span::styled(
                " · PAUSED",
                theme.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}
