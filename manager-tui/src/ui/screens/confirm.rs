//! The dialog in front of an action that cannot be undone: the operator types its name.
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use crate::ui::effect::{Command, Danger, Effect, Level};
use crate::ui::theme::{block, centered, Theme};

pub struct Confirm {
    pub action: Danger,
    pub typed: String,
}

/// What a key did to the dialog.
pub enum Outcome {
    /// Still open.
    Open(Vec<Effect>),
    /// Closed, with what follows.
    Closed(Vec<Effect>),
}

impl Confirm {
    pub fn new(action: Danger) -> Confirm {
        Confirm {
            action,
            typed: String::new(),
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Outcome {
        match key.code {
            KeyCode::Esc => {
                return Outcome::Closed(vec![Effect::Message(Level::Info, "cancelled".into())])
            }
            KeyCode::Backspace => {
                self.typed.pop();
            }
            KeyCode::Enter => {
                let word = self.action.word();
                if self.typed.trim() == word {
                    return Outcome::Closed(vec![
                        Effect::Message(Level::Info, "working…".into()),
                        Effect::Command(Command::Danger(self.action)),
                    ]);
                }
                return Outcome::Open(vec![Effect::Message(
                    Level::Error,
                    format!("type “{word}” to confirm, or Esc to cancel"),
                )]);
            }
            KeyCode::Char(c) if !c.is_control() && self.typed.len() < 40 => self.typed.push(c),
            _ => {}
        }
        Outcome::Open(Vec::new())
    }

    pub fn draw(&self, f: &mut Frame, theme: &Theme, area: Rect) {
        let area = centered(area, 60, 7);
        let text = vec![
            Line::from(Span::styled(
                "This cannot be undone.",
                theme.fg(Color::Red).add_modifier(Modifier::BOLD),
            )),
            Line::from(format!(
                "Type “{}” and press Enter (Esc cancels):",
                self.action.word()
            )),
            Line::raw(""),
            Line::from(vec![
                Span::raw("> "),
                Span::raw(self.typed.clone()),
                Span::raw("█"),
            ]),
        ];
        f.render_widget(Clear, area);
        f.render_widget(Paragraph::new(text).block(block(" Confirm ")), area);
    }
}
