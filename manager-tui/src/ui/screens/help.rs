//! Every key, over whatever screen is showing; any key closes it.
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use crate::ui::theme::{block, centered};

pub fn draw(f: &mut Frame, area: Rect) {
    let text = vec![
        Line::from(Span::styled(
            "Keys",
            Style::default().add_modifier(Modifier::BOLD),
        )),
        Line::raw("+ / -      grow / shrink the pool by one worker"),
        Line::raw("t          show CPU or request rate large"),
        Line::raw("Tab        move between workers and autoscaler"),
        Line::raw("↑ ↓ ← →    select; change an autoscaler setting"),
        Line::raw("Enter/Esc  apply / discard autoscaler changes"),
        Line::raw("a          start or stop the autoscaler"),
        Line::raw("1 2 3 4    accounts, photos, objects, per-user usage"),
        Line::raw("e          scaling events"),
        Line::raw("p / r      pause refreshing / refresh now"),
        Line::raw("D X S      delete all photos / everything / stop all"),
        Line::raw("q          quit          (any key closes this help)"),
    ];
    let area = centered(area, 58, text.len() as u16 + 2);
    f.render_widget(Clear, area);
    f.render_widget(Paragraph::new(text).block(block(" Help ")), area);
}
