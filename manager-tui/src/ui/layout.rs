//! Where things are on screen, as pure functions of the terminal area and the app state:
//! drawing places widgets with them and mouse clicks are mapped back with them, so the two
//! can never disagree.
use ratatui::layout::{Constraint, Layout, Margin, Rect};

use common::api::Totals;

use super::sliders::SLIDERS;

/// Header, body, message line, key hints.
pub fn screen(area: Rect) -> [Rect; 4] {
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area)
}

pub struct Dashboard {
    pub workers: Rect,
    pub pool: Rect,
    pub chart: Rect,
    pub totals: Rect,
    pub autoscaler: Rect,
    /// Shown as a panel only when the terminal is tall enough; otherwise in the key hints.
    pub danger: Option<Rect>,
}

pub fn dashboard(body: Rect) -> Dashboard {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
    let roomy = right.height >= 32;
    let mut constraints = vec![
        Constraint::Length(5),
        Constraint::Min(5),
        // Totals: two lines of tables to open, one of the backlog; when roomy, the flow
        // through it, its times and the front door's refusals too.
        Constraint::Length(if roomy { 8 } else { 5 }),
        Constraint::Length(if roomy { SLIDERS.len() as u16 + 2 } else { 6 }),
    ];
    if roomy {
        constraints.push(Constraint::Length(3));
    }
    let parts = Layout::vertical(constraints).split(right);
    Dashboard {
        workers: left,
        pool: parts[0],
        chart: parts[1],
        totals: parts[2],
        autoscaler: parts[3],
        danger: roomy.then(|| parts[4]),
    }
}

/// Inside of a bordered panel.
pub fn inner(r: Rect) -> Rect {
    r.inner(Margin {
        horizontal: 1,
        vertical: 1,
    })
}

pub const WORKER_ROW: u16 = 3;

/// The first worker shown, so that the selected one is always visible.
pub fn first_worker(selected: usize, workers: usize, inner: Rect) -> usize {
    let fits = (inner.height / WORKER_ROW).max(1) as usize;
    selected
        .saturating_sub(fits - 1)
        .min(workers.saturating_sub(fits))
}

/// The first slider shown, so that the selected one is always visible.
pub fn first_slider(selected: usize, inner: Rect) -> usize {
    let fits = (inner.height as usize).max(1);
    selected
        .saturating_sub(fits - 1)
        .min(SLIDERS.len().saturating_sub(fits))
}

/// Slider row layout: marker (2), label (17), bar, value (7).
pub const SLIDER_LABEL: u16 = 19;
pub fn slider_bar_width(inner: Rect) -> u16 {
    inner.width.saturating_sub(SLIDER_LABEL + 9).max(4)
}

/// The pool panel's buttons: (label, x offset from the panel's inner left).
pub const GROW_BUTTON: (&str, u16) = ("[ + grow ]", 0);
pub const SHRINK_BUTTON: (&str, u16) = ("[ - shrink ]", 12);

/// The danger zone's three actions, as (label, x offset).
pub const DANGER: [(&str, u16); 3] = [
    ("[D] delete all photos", 0),
    ("[X] delete everything", 23),
    ("[S] stop everything", 46),
];

/// First visible table row, so that the selected one is always visible.
pub fn first_table_row(selected: usize, body: Rect) -> usize {
    let height = body.height.saturating_sub(3) as usize;
    selected.saturating_sub(height.saturating_sub(1))
}

pub fn contains(r: Rect, col: u16, row: u16) -> bool {
    col >= r.x && col < r.x + r.width && row >= r.y && row < r.y + r.height
}

/// The storage-and-database panel's two lines; each has two clickable halves split at "·".
pub fn totals_lines(t: &Totals) -> [String; 2] {
    [
        format!("[1] {} accounts · [2] {} photos", t.accounts, t.photos),
        format!(
            "[3] {} objects, {} · [4] usage",
            t.objects,
            crate::fmt::human_bytes(t.bytes)
        ),
    ]
}
