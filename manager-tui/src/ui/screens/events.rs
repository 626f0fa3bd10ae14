//! The scaling events, newest first: when, from what size to what, and why.
use common::api::ScalingEvent;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Row, Table};
use ratatui::Frame;

use crate::fmt::clock;
use crate::ui::effect::{Effect, Screen};
use crate::ui::theme::block;

pub fn on_key(key: KeyEvent) -> Vec<Effect> {
    if matches!(
        key.code,
        KeyCode::Esc | KeyCode::Char('q') | KeyCode::Backspace
    ) {
        return vec![Effect::Go(Screen::Dashboard)];
    }
    Vec::new()
}

pub const HINTS: &str = "Esc back";

pub fn draw(f: &mut Frame, events: &[ScalingEvent], area: Rect) {
    let rows: Vec<Row> = events
        .iter()
        .map(|e| {
            Row::new(vec![
                clock(e.at as f64),
                format!("{} → {}", e.from, e.to),
                e.reason.clone(),
            ])
        })
        .collect();
    let table = if rows.is_empty() {
        Table::new(
            vec![Row::new(vec!["no scaling events yet"])],
            [Constraint::Min(10)],
        )
    } else {
        Table::new(
            rows,
            [
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Min(20),
            ],
        )
        .header(
            Row::new(vec!["time", "size", "reason"])
                .style(Style::default().add_modifier(Modifier::BOLD)),
        )
    };
    f.render_widget(table.block(block(" Scaling events (newest first) ")), area);
}
