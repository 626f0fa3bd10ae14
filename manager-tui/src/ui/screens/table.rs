//! The data tables (accounts, photos, objects, per-user usage): a page of rows at a time,
//! sorted by any column, filtered by a typed needle. Cells keep their values, so sizes and
//! counts sort as numbers and read as people write them.
use std::cmp::Ordering;
use std::fmt;

use common::api::{AccountRow, ObjectRow, Page, PhotoRow, UserUsage};
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Cell as TableCell, Paragraph, Row, Table};
use ratatui::Frame;

use crate::client::PAGE;
use crate::fmt::{clock, human_bytes};
use crate::ui::effect::{Command, Danger, Effect, Screen, TableKind};
use crate::ui::layout;
use crate::ui::theme::{block, Theme};

/// A table's rows as the API gave them.
#[derive(Debug, Clone)]
pub enum TableData {
    Accounts(Page<AccountRow>),
    Photos(Page<PhotoRow>),
    Objects(Page<ObjectRow>),
    Users(Vec<UserUsage>),
}

/// One cell: what it shows and how it sorts.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Count(u64),
    Bytes(u64),
}

impl Cell {
    fn value(&self) -> Option<u64> {
        match self {
            Cell::Count(n) | Cell::Bytes(n) => Some(*n),
            Cell::Text(_) => None,
        }
    }

    fn cmp_for_sort(&self, other: &Cell) -> Ordering {
        match (self.value(), other.value()) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.to_string().cmp(&other.to_string()),
        }
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Text(s) => f.write_str(s),
            Cell::Count(n) => write!(f, "{n}"),
            Cell::Bytes(n) => f.write_str(&human_bytes(*n)),
        }
    }
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

#[derive(Default)]
pub struct TableView {
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
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
    /// Empties the view for the page of `kind` from `offset` on, and asks for it.
    pub fn load(&mut self, kind: TableKind, offset: u64) -> Command {
        *self = TableView {
            loading: true,
            offset,
            ..TableView::default()
        };
        Command::LoadTable(kind, offset)
    }

    /// Rows after the filter and sort, with their original index.
    pub fn visible(&self) -> Vec<(usize, &Vec<Cell>)> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<(usize, &Vec<Cell>)> = self
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                needle.is_empty()
                    || r.iter()
                        .any(|c| c.to_string().to_lowercase().contains(&needle))
            })
            .collect();
        if let Some((col, desc)) = self.sort {
            rows.sort_by(|a, b| {
                let ord = a.1[col].cmp_for_sort(&b.1[col]);
                if desc {
                    ord.reverse()
                } else {
                    ord
                }
            });
        }
        rows
    }

    pub fn on_key(&mut self, kind: TableKind, key: KeyEvent) -> Vec<Effect> {
        if self.filtering {
            match key.code {
                KeyCode::Enter | KeyCode::Esc => self.filtering = false,
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) if !c.is_control() => self.filter.push(c),
                _ => {}
            }
            self.selected = 0;
            return Vec::new();
        }
        let visible = self.visible().len();
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Backspace => {
                return vec![Effect::Go(Screen::Dashboard)]
            }
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(visible.saturating_sub(1))
            }
            KeyCode::PageUp => self.selected = self.selected.saturating_sub(10),
            KeyCode::PageDown => {
                self.selected = (self.selected + 10).min(visible.saturating_sub(1))
            }
            KeyCode::Char('/') => self.filtering = true,
            KeyCode::Char('s') => {
                let cols = self.header.len().max(1);
                self.sort = match self.sort {
                    None => Some((0, false)),
                    Some((c, false)) => Some((c, true)),
                    Some((c, true)) if c + 1 < cols => Some((c + 1, false)),
                    Some(_) => None,
                };
            }
            KeyCode::Char('r') => return vec![Effect::Command(self.load(kind, self.offset))],
            KeyCode::Char('n') if self.offset + (self.rows.len() as u64) < self.total => {
                let next = self.offset + self.rows.len() as u64;
                return vec![Effect::Command(self.load(kind, next))];
            }
            KeyCode::Char('b') if self.offset > 0 => {
                let previous = self.offset.saturating_sub(PAGE);
                return vec![Effect::Command(self.load(kind, previous))];
            }
            KeyCode::Char('d') if kind == TableKind::Users => {
                if let Some(&(i, _)) = self.visible().get(self.selected) {
                    return vec![Effect::Ask(Danger::DeleteUserPhotos(self.ids[i]))];
                }
            }
            KeyCode::Char('?') => return vec![Effect::Help],
            _ => {}
        }
        Vec::new()
    }

    /// A click in the screen's `body`: a row is selected.
    pub fn on_click(&mut self, col: u16, row: u16, body: Rect) {
        let inner = layout::inner(body);
        // The first inner line is the header row.
        if layout::contains(inner, col, row) && row > inner.y {
            let first = layout::first_table_row(self.selected, body);
            let index = first + (row - inner.y - 1) as usize;
            if index < self.visible().len() {
                self.selected = index;
            }
        }
    }

    pub fn fill(&mut self, data: TableData) {
        self.loading = false;
        self.ids.clear();
        match data {
            TableData::Accounts(page) => {
                self.header = vec!["id", "username", "photos", "created"];
                self.total = page.total;
                self.rows = page
                    .items
                    .into_iter()
                    .map(|a| {
                        vec![
                            Cell::Count(a.id),
                            text(a.username),
                            Cell::Count(a.photos),
                            text(clock(a.created_at as f64)),
                        ]
                    })
                    .collect();
            }
            TableData::Photos(page) => {
                self.header = vec![
                    "id",
                    "owner",
                    "file name",
                    "size",
                    "pixels",
                    "boxes",
                    "state",
                    "found by",
                ];
                self.total = page.total;
                self.rows = page
                    .items
                    .into_iter()
                    .map(|p| {
                        vec![
                            text(&p.id[..12.min(p.id.len())]),
                            text(p.owner),
                            text(p.file_name),
                            Cell::Bytes(p.bytes),
                            text(format!("{}×{}", p.width, p.height)),
                            Cell::Count(p.boxes as u64),
                            text(p.state.as_str()),
                            // The runtime is what differs between photos of one deployment.
                            text(p.runtime),
                        ]
                    })
                    .collect();
            }
            TableData::Objects(page) => {
                self.header = vec!["key", "size"];
                self.total = page.total;
                self.rows = page
                    .items
                    .into_iter()
                    .map(|o| vec![text(o.key), Cell::Bytes(o.size)])
                    .collect();
            }
            TableData::Users(users) => {
                self.header = vec![
                    "id",
                    "username",
                    "photos",
                    "files",
                    "total",
                    "originals",
                    "annotated",
                    "thumbnails",
                ];
                self.total = users.len() as u64;
                self.ids = users.iter().map(|u| u.id).collect();
                self.rows = users
                    .into_iter()
                    .map(|u| {
                        vec![
                            Cell::Count(u.id),
                            text(u.username.clone()),
                            Cell::Count(u.photos),
                            Cell::Count(u.files()),
                            Cell::Bytes(u.bytes()),
                            Cell::Bytes(u.originals.bytes),
                            Cell::Bytes(u.annotated.bytes),
                            Cell::Bytes(u.thumbnails.bytes),
                        ]
                    })
                    .collect();
            }
        }
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    pub fn hints(kind: TableKind) -> &'static str {
        match kind {
            TableKind::Users => "↑↓ move · s sort · / filter · d delete user's photos · r reload · Esc back",
            _ => "↑↓ move · PgUp/PgDn · n/b next/previous page · s sort · / filter · r reload · Esc back",
        }
    }

    pub fn draw(&self, f: &mut Frame, theme: &Theme, area: Rect, kind: TableKind) {
        let t = self;
        let mut title = if t.total > t.rows.len() as u64 {
            format!(
                " {} (rows {}–{} of {}",
                kind.title(),
                t.offset + 1,
                t.offset + t.rows.len() as u64,
                t.total
            )
        } else {
            format!(" {} ({} in all", kind.title(), t.total)
        };
        if !t.filter.is_empty() || t.filtering {
            title.push_str(&format!(
                ", filter “{}”{}",
                t.filter,
                if t.filtering { "▏" } else { "" }
            ));
        }
        if let Some((col, desc)) = t.sort {
            title.push_str(&format!(
                ", by {} {}",
                t.header.get(col).unwrap_or(&""),
                if desc { "↓" } else { "↑" }
            ));
        }
        title.push_str(") ");
        if t.loading {
            f.render_widget(Paragraph::new("Loading…").block(block(title)), area);
            return;
        }
        let visible = t.visible();
        let height = area.height.saturating_sub(3) as usize;
        let first = layout::first_table_row(t.selected, area);
        let rows: Vec<Row> = visible
            .iter()
            .enumerate()
            .skip(first)
            .take(height)
            .map(|(i, (_, cells))| {
                let style = if i == t.selected {
                    Style::default().add_modifier(Modifier::REVERSED)
                } else {
                    Style::default()
                };
                Row::new(cells.iter().map(|c| TableCell::from(c.to_string()))).style(style)
            })
            .collect();
        let widths: Vec<Constraint> = t
            .header
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let longest = t
                    .rows
                    .iter()
                    .map(|r| r[i].to_string().chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(t.header[i].len());
                Constraint::Length(longest.min(40) as u16)
            })
            .collect();
        let header = Row::new(t.header.iter().map(|h| TableCell::from(*h))).style(theme.title());
        let body = if visible.is_empty() {
            Table::new(
                vec![Row::new(vec![TableCell::from("nothing to show")])],
                [Constraint::Min(10)],
            )
        } else {
            Table::new(rows, widths).header(header).column_spacing(2)
        };
        f.render_widget(body.block(block(title)), area);
    }
}
