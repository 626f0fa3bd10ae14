//! The operator login: an e-mail address, then the one-time code mailed to it (with its
//! countdown), then whether to keep the token for `--once`.
use common::api::{OtpReply, TokenReply};
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use crate::client::ClientError;
use crate::ui::effect::{Command, Effect, Level, Screen};
use crate::ui::theme::{block, centered, Theme};

#[derive(Debug, Clone, PartialEq)]
pub enum LoginStep {
    Email,
    Sending,
    Code {
        challenge: String,
        email: String,
        deadline: f64,
    },
    Verifying,
    /// Logged in; asks whether to keep the token for `--once`.
    OfferSave {
        token: String,
    },
}

pub struct Login {
    pub step: LoginStep,
    /// What the operator is typing: the address, then the code.
    pub input: String,
}

fn error(m: impl Into<String>) -> Effect {
    Effect::Message(Level::Error, m.into())
}

impl Default for Login {
    fn default() -> Self {
        Login {
            step: LoginStep::Email,
            input: String::new(),
        }
    }
}

impl Login {
    /// Back to the first step (after logging in, or when a session ends).
    pub fn reset(&mut self) {
        *self = Login::default();
    }

    pub fn on_tick(&mut self, now: f64) -> Vec<Effect> {
        match self.step {
            LoginStep::Code { deadline, .. } if now > deadline => {
                self.reset();
                vec![error(
                    "the code expired; enter your e-mail to get a new one",
                )]
            }
            _ => Vec::new(),
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        match (&self.step, key.code) {
            (LoginStep::OfferSave { token }, KeyCode::Char('y' | 'Y')) => {
                let token = token.clone();
                self.reset();
                vec![
                    Effect::Go(Screen::Dashboard),
                    Effect::Message(Level::Info, "token saved for `manager-tui --once`".into()),
                    Effect::Command(Command::SaveToken(token)),
                    Effect::Refresh,
                ]
            }
            (
                LoginStep::OfferSave { .. },
                KeyCode::Char('n' | 'N') | KeyCode::Enter | KeyCode::Esc,
            ) => {
                self.reset();
                vec![Effect::Go(Screen::Dashboard), Effect::Refresh]
            }
            (LoginStep::Sending | LoginStep::Verifying | LoginStep::OfferSave { .. }, _) => {
                Vec::new()
            }
            (_, KeyCode::Esc) => {
                let quit = matches!(self.step, LoginStep::Email);
                self.reset();
                if quit {
                    vec![Effect::Quit]
                } else {
                    Vec::new()
                }
            }
            (_, KeyCode::Backspace) => {
                self.input.pop();
                Vec::new()
            }
            (LoginStep::Email, KeyCode::Enter) => {
                let email = self.input.trim().to_owned();
                if !email.contains('@') {
                    return vec![error(
                        "enter the e-mail address you are registered with as an operator",
                    )];
                }
                self.step = LoginStep::Sending;
                vec![
                    Effect::ClearMessage,
                    Effect::Command(Command::RequestCode(email)),
                ]
            }
            (LoginStep::Code { challenge, .. }, KeyCode::Enter) => {
                let code = self.input.trim().to_owned();
                if code.len() != 6 {
                    return vec![error("the code has 6 digits")];
                }
                let challenge = challenge.clone();
                self.step = LoginStep::Verifying;
                vec![Effect::Command(Command::Verify { challenge, code })]
            }
            (LoginStep::Code { .. }, KeyCode::Char(c))
                if c.is_ascii_digit() && self.input.len() < 6 =>
            {
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

    /// The code was sent (or not).
    pub fn on_code(
        &mut self,
        reply: Result<OtpReply, ClientError>,
        now: f64,
    ) -> Result<Vec<Effect>, ClientError> {
        match reply {
            Ok(r) => {
                let email = self.input.trim().to_owned();
                self.step = LoginStep::Code {
                    challenge: r.challenge,
                    email,
                    deadline: now + r.expires_in as f64,
                };
                self.input.clear();
                Ok(vec![Effect::ClearMessage])
            }
            Err(e) => {
                self.step = LoginStep::Email;
                Err(e)
            }
        }
    }

    /// The code was right (the token) or not.
    pub fn on_token(&mut self, reply: &Result<TokenReply, ClientError>) -> Vec<Effect> {
        self.input.clear();
        match reply {
            Ok(t) => {
                self.step = LoginStep::OfferSave {
                    token: t.token.clone(),
                };
                vec![Effect::ClearMessage]
            }
            Err(e) => {
                self.step = LoginStep::Email;
                let reason = match e {
                    ClientError::Unauthorized(m) => m.clone(),
                    other => other.to_string(),
                };
                vec![error(format!(
                    "{reason}; enter your e-mail to get a new code"
                ))]
            }
        }
    }

    pub fn hints(&self) -> &'static str {
        match self.step {
            LoginStep::OfferSave { .. } => "y save token · n don't save",
            _ => "Enter submit · Esc back/quit",
        }
    }

    pub fn draw(&self, f: &mut Frame, theme: &Theme, area: Rect, now: f64) {
        let box_area = centered(area, 64, 9);
        let (prompt, note): (String, String) = match &self.step {
            LoginStep::Email => ("E-mail: ".into(), "A one-time code will be mailed to this operator address.".into()),
            LoginStep::Sending => ("E-mail: ".into(), "Sending the code…".into()),
            LoginStep::Code { email, deadline, .. } => {
                ("Code:   ".into(), format!("Code sent to {email}, valid {:.0} s", (deadline - now).max(0.0).ceil()))
            }
            LoginStep::Verifying => ("Code:   ".into(), "Checking the code…".into()),
            LoginStep::OfferSave { .. } => (
                String::new(),
                "Logged in. Save the token (0600, in your config directory) so `manager-tui --once` can use it? [y/N]".into(),
            ),
        };
        let mut lines = vec![
            Line::from(Span::styled(note, theme.fg(Color::Cyan))),
            Line::raw(""),
        ];
        if !prompt.is_empty() {
            lines.push(Line::from(vec![
                Span::styled(prompt, theme.title()),
                Span::raw(self.input.clone()),
                Span::styled("█", theme.fg(Color::Gray)),
            ]));
        }
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block(" Operator login ")),
            box_area,
        );
    }
}
