//! How the dashboard looks: colours (none under NO_COLOR), panels, centred dialogs.
use common::api::WorkerState;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders};

/// Colour when allowed (NO_COLOR respected), plain text otherwise.
pub struct Theme {
    pub colour: bool,
}

impl Theme {
    pub fn fg(&self, c: Color) -> Style {
        if self.colour {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    pub fn state(&self, s: WorkerState) -> Style {
        self.fg(match s {
            WorkerState::Healthy => Color::Green,
            WorkerState::Starting | WorkerState::Draining | WorkerState::Warming => Color::Yellow,
            WorkerState::Standby => Color::Blue,
            WorkerState::Unhealthy | WorkerState::Stopped => Color::Red,
        })
    }
    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    pub fn focus(&self, on: bool) -> Style {
        if on {
            self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        }
    }
}

/// A bordered panel with a title.
pub fn block<'a>(title: impl Into<Line<'a>>) -> Block<'a> {
    Block::default().borders(Borders::ALL).title(title)
}

/// A `width` × `height` box in the middle of `area` (smaller if it does not fit).
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}
