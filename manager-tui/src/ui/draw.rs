//! Drawing: every widget renders from `&App`; nothing here changes state.
use common::api::{Status, WorkerState, WorkerStatus};
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Clear, Dataset, Gauge, GraphType, Paragraph, Row, Sparkline, Table, Wrap,
};
use ratatui::Frame;

use super::app::{App, Focus, Level, LoginStep, Metric, Screen, SLIDERS};
use super::layout;
use crate::once::{clock, phase_text};

/// Colour when allowed (NO_COLOR respected), plain text otherwise.
struct Theme {
    colour: bool,
}

impl Theme {
    fn fg(&self, c: Color) -> Style {
        if self.colour { Style::default().fg(c) } else { Style::default() }
    }
    fn state(&self, s: WorkerState) -> Style {
        self.fg(match s {
            WorkerState::Healthy => Color::Green,
            WorkerState::Starting | WorkerState::Draining => Color::Yellow,
            WorkerState::Unhealthy | WorkerState::Stopped => Color::Red,
        })
    }
    fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    fn focus(&self, on: bool) -> Style {
        if on { self.fg(Color::Cyan).add_modifier(Modifier::BOLD) } else { Style::default() }
    }
}

fn block<'a>(title: impl Into<Line<'a>>) -> Block<'a> {
    Block::default().borders(Borders::ALL).title(title)
}

pub fn draw(f: &mut Frame, app: &App) {
    let theme = Theme { colour: app.colour };
    let area = f.area();
    let [header, body, message, hints] = layout::screen(area);
    draw_header(f, app, &theme, header);
    match app.screen {
        Screen::Login => draw_login(f, app, &theme, body),
        Screen::Dashboard => draw_dashboard(f, app, &theme, body),
        Screen::Table(_) => draw_table(f, app, &theme, body),
        Screen::Events => draw_events(f, app, &theme, body),
    }
    if let Some((level, text)) = &app.message {
        let style = match level {
            Level::Info => theme.fg(Color::Cyan),
            Level::Error => theme.fg(Color::Red).add_modifier(Modifier::BOLD),
        };
        f.render_widget(Paragraph::new(Line::from(Span::styled(text.as_str(), style))), message);
    }
    f.render_widget(Paragraph::new(hint_line(app)).style(theme.fg(Color::DarkGray)), hints);
    if app.help {
        draw_help(f, app, area);
    }
    if let Some(confirm) = &app.confirm {
        draw_confirm(f, &theme, confirm.action.word(), &confirm.typed, area);
    }
}

fn hint_line(app: &App) -> Line<'static> {
    let text = match app.screen {
        Screen::Login => match app.login {
            LoginStep::OfferSave { .. } => "y save token · n don't save",
            _ => "Enter submit · Esc back/quit",
        },
        Screen::Dashboard if app.focus == Focus::Autoscaler => {
            "↑↓ setting · ←→ change · Enter apply · Esc discard · a on/off · Tab workers · ? help · q quit"
        }
        Screen::Dashboard => {
            "+ grow · - shrink · t cpu/req · Tab autoscaler · 1-4 tables · e events · p pause · D X S danger · ? help · q quit"
        }
        Screen::Table(super::app::TableKind::Users) => "↑↓ move · s sort · / filter · d delete user's photos · r reload · Esc back",
        Screen::Table(_) => "↑↓ move · PgUp/PgDn · n/b next/previous page · s sort · / filter · r reload · Esc back",
        Screen::Events => "Esc back",
    };
    Line::from(text)
}

fn draw_header(f: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let mut spans = vec![Span::styled("Gallery control", theme.title())];
    if let Some(s) = &app.status {
        spans.push(Span::raw(format!(" · {} · balancer {} ", s.deployment, s.balancer)));
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
            spans.push(Span::styled(" · control plane unreachable", theme.fg(Color::Red)));
        }
        if let Some(t) = app.last_refresh {
            spans.push(Span::raw(format!(" · refreshed {}", clock(t))));
        }
        if app.paused {
            spans.push(Span::styled(" · PAUSED", theme.fg(Color::Yellow).add_modifier(Modifier::BOLD)));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

fn draw_login(f: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let box_area = centered(area, 64, 9);
    let (prompt, note): (String, String) = match &app.login {
        LoginStep::Email => ("E-mail: ".into(), "A one-time code will be mailed to this operator address.".into()),
        LoginStep::Sending => ("E-mail: ".into(), "Sending the code…".into()),
        LoginStep::Code { email, deadline, .. } => (
            "Code:   ".into(),
            format!("Code sent to {email}, valid {:.0} s", (deadline - app.now).max(0.0).ceil()),
        ),
        LoginStep::Verifying => ("Code:   ".into(), "Checking the code…".into()),
        LoginStep::OfferSave { .. } => (
            String::new(),
            "Logged in. Save the token (0600, in your config directory) so `manager-tui --once` can use it? [y/N]".into(),
        ),
    };
    let mut lines = vec![Line::from(Span::styled(note, theme.fg(Color::Cyan))), Line::raw("")];
    if !prompt.is_empty() {
        lines.push(Line::from(vec![
            Span::styled(prompt, theme.title()),
            Span::raw(app.input.clone()),
            Span::styled("█", theme.fg(Color::Gray)),
        ]));
    }
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(block(" Operator login ")),
        box_area,
    );
}

fn draw_dashboard(f: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let Some(status) = &app.status else {
        let text = if app.reachable { "Loading…" } else { "The control plane cannot be reached; retrying." };
        f.render_widget(Paragraph::new(text).alignment(Alignment::Center).block(block(" Workers ")), area);
        return;
    };
    let d = layout::dashboard(area);
    draw_workers(f, app, theme, status, d.workers);
    draw_pool(f, theme, status, d.pool);
    draw_count_chart(f, status, d.chart);
    draw_totals(f, status, d.totals);
    draw_autoscaler(f, app, theme, status, d.autoscaler);
    if let Some(danger) = d.danger {
        let spans: Vec<Span> = layout::DANGER
            .iter()
            .flat_map(|(label, _)| [Span::styled(*label, theme.fg(Color::Red)), Span::raw("  ")])
            .collect();
        f.render_widget(Paragraph::new(Line::from(spans)).block(block(" Danger zone ")), danger);
    }
}

fn worker_line(theme: &Theme, w: &WorkerStatus, selected: bool) -> Line<'static> {
    let cpu = w.cpu.map(|c| format!("{:>3.0}%", c * 100.0)).unwrap_or_else(|| "   –".into());
    let req = w.request_rate.map(|r| format!("{r:>5.1}/s")).unwrap_or_else(|| "     –".into());
    let marker = if selected { "▶ " } else { "  " };
    // EC2 ids are 19 characters; their tail tells instances apart (`--once` prints them whole).
    let id = if w.id.chars().count() > 9 {
        format!("…{}", w.id.chars().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect::<String>())
    } else {
        w.id.clone()
    };
    Line::from(vec![
        Span::raw(marker),
        Span::styled(format!("{id:<9} "), theme.title()),
        Span::styled(format!("{:<10}", w.state.as_str()), theme.state(w.state)),
        Span::raw(format!("{cpu} {req}")),
    ])
}

fn draw_workers(f: &mut Frame, app: &App, theme: &Theme, status: &Status, area: Rect) {
    let metric = match app.large {
        Metric::Cpu => "CPU",
        Metric::Requests => "requests/s",
    };
    let title = Line::from(vec![
        Span::styled(format!(" Workers ({}) ", status.workers.len()), theme.focus(app.focus == Focus::Workers)),
        Span::raw(format!("· {metric}, 30 min · t toggles ")),
    ]);
    let outer = block(title);
    let inner = outer.inner(area);
    f.render_widget(outer, area);
    if status.workers.is_empty() {
        f.render_widget(Paragraph::new("No workers yet: the pool is starting, or stopped."), inner);
        return;
    }
    let row_h = layout::WORKER_ROW;
    let fits = (inner.height / row_h).max(1) as usize;
    let first = layout::first_worker(app.selected_worker, status.workers.len(), inner);
    for (i, w) in status.workers.iter().enumerate().skip(first).take(fits) {
        let y = inner.y + ((i - first) as u16) * row_h;
        let text = Rect { x: inner.x, y, width: inner.width, height: 1 };
        f.render_widget(Paragraph::new(worker_line(theme, w, i == app.selected_worker)), text);
        let (large, small) = match app.large {
            Metric::Cpu => (Metric::Cpu, Metric::Requests),
            Metric::Requests => (Metric::Requests, Metric::Cpu),
        };
        let spark = Rect { x: inner.x + 2, y: y + 1, width: inner.width.saturating_sub(2), height: row_h - 1 };
        draw_spark(f, theme, w, large, spark);
        // The other metric, small, after the text on the worker's own line.
        const TEXT: u16 = 36;
        if inner.width >= TEXT + 8 {
            draw_spark(f, theme, w, small, Rect { x: inner.x + TEXT, y, width: inner.width - TEXT, height: 1 });
        }
    }
}

fn draw_spark(f: &mut Frame, theme: &Theme, w: &WorkerStatus, metric: Metric, area: Rect) {
    let (series, max, colour, scale) = match metric {
        Metric::Cpu => (&w.cpu_series, Some(100u64), Color::Magenta, 100.0),
        Metric::Requests => (&w.request_series, None, Color::Blue, 10.0),
    };
    // Newest sample at the right edge, like a time axis ending now.
    let width = area.width as usize;
    let values = series.iter().map(|(_, v)| (v * scale).round().max(0.0) as u64);
    let mut data: Vec<u64> = vec![0; width.saturating_sub(series.len())];
    data.extend(values.skip(series.len().saturating_sub(width)));
    let mut sparkline = Sparkline::default().data(&data).style(theme.fg(colour));
    if let Some(max) = max {
        sparkline = sparkline.max(max);
    }
    f.render_widget(sparkline, area);
}

fn draw_pool(f: &mut Frame, theme: &Theme, status: &Status, area: Rect) {
    let p = &status.pool;
    let total = (p.healthy + p.starting + p.unhealthy + p.draining).max(1);
    let outer = block(Line::from(vec![
        Span::styled(" Pool ", theme.title()),
        Span::raw(format!("desired {} · +/- ", p.desired)),
    ]));
    let inner = outer.inner(area);
    f.render_widget(outer, area);
    let [gauge, detail, buttons] = Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Length(1)]).areas(inner);
    let button = |(label, _): (&'static str, u16)| Span::styled(label, theme.fg(Color::Cyan).add_modifier(Modifier::BOLD));
    f.render_widget(
        Paragraph::new(Line::from(vec![button(layout::GROW_BUTTON), Span::raw("  "), button(layout::SHRINK_BUTTON)])),
        buttons,
    );
    let label = format!("{}/{} healthy", p.healthy, total);
    f.render_widget(
        Gauge::default().ratio(p.healthy as f64 / total as f64).label(label).gauge_style(theme.fg(Color::Green)),
        gauge,
    );
    if let Some(problem) = &status.launch_problem {
        // The operator must see why the pool is not growing, and that it is not retried hot.
        let wait = (problem.retry_at - status.now).max(0.0);
        f.render_widget(
            Paragraph::new(Line::from(Span::styled(
                format!("launch failed {}× (retry in {wait:.0} s): {}", problem.failures, problem.error),
                theme.fg(Color::Red),
            ))),
            detail,
        );
        return;
    }
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(format!("{} starting", p.starting), theme.state(WorkerState::Starting)),
            Span::raw(" · "),
            Span::styled(format!("{} unhealthy", p.unhealthy), theme.state(WorkerState::Unhealthy)),
            Span::raw(" · "),
            Span::styled(format!("{} draining", p.draining), theme.state(WorkerState::Draining)),
        ])),
        detail,
    );
}

fn draw_count_chart(f: &mut Frame, status: &Status, area: Rect) {
    let now = status.now;
    // A count holds until the next point: draw steps, not slopes.
    let steps = |value: fn(&common::api::CountPoint) -> u32, current: u32| {
        let mut out: Vec<(f64, f64)> = Vec::new();
        for p in &status.history {
            let x = (p.at as f64 - now) / 60.0;
            if let Some(&(_, prev)) = out.last() {
                out.push((x, prev));
            }
            out.push((x, value(p) as f64));
        }
        if let Some(&(_, prev)) = out.last() {
            out.push((0.0, prev));
        }
        out.push((0.0, current as f64));
        out
    };
    let desired = steps(|p| p.desired, status.pool.desired);
    let healthy = steps(|p| p.healthy, status.pool.healthy);
    let top = desired.iter().chain(&healthy).map(|p| p.1).fold(status.policy.min_workers as f64, f64::max) + 1.0;
    let datasets = vec![
        Dataset::default().name("desired").marker(symbols::Marker::Braille).graph_type(GraphType::Line).style(Style::default().fg(Color::Yellow)).data(&desired),
        Dataset::default().name("healthy").marker(symbols::Marker::Braille).graph_type(GraphType::Line).style(Style::default().fg(Color::Green)).data(&healthy),
    ];
    let chart = Chart::new(datasets)
        .block(block(" Workers, last 30 min "))
        .x_axis(Axis::default().bounds([-30.0, 0.0]).labels(["-30m", "-15m", "now"]))
        .y_axis(Axis::default().bounds([0.0, top]).labels(["0".to_string(), format!("{top:.0}")]));
    f.render_widget(chart, area);
}

fn draw_totals(f: &mut Frame, status: &Status, area: Rect) {
    let text = match &status.totals {
        Some(t) => layout::totals_lines(t).join("\n"),
        None => "storage and database totals unavailable".into(),
    };
    f.render_widget(Paragraph::new(text).block(block(" Storage & database ")), area);
}

fn slider_bar(fraction: f64, width: usize) -> String {
    let pos = ((fraction.clamp(0.0, 1.0)) * (width.saturating_sub(1)) as f64).round() as usize;
    (0..width).map(|i| if i == pos { '●' } else if i < pos { '━' } else { '─' }).collect()
}

fn draw_autoscaler(f: &mut Frame, app: &App, theme: &Theme, status: &Status, area: Rect) {
    let title = Line::from(vec![
        Span::styled(" Autoscaler ", theme.focus(app.focus == Focus::Autoscaler)),
        Span::raw(format!("{} ", phase_text(status))),
        Span::styled(if app.draft.is_some() { "· edited, Enter applies " } else { "" }, theme.fg(Color::Yellow)),
    ]);
    let outer = block(title);
    let inner = outer.inner(area);
    f.render_widget(outer, area);
    let policy = app.policy().cloned().unwrap_or_else(|| status.policy.clone());
    let fits = inner.height as usize;
    let first = layout::first_slider(app.slider, inner);
    let bar_width = layout::slider_bar_width(inner) as usize;
    let lines: Vec<Line> = SLIDERS
        .iter()
        .enumerate()
        .skip(first)
        .take(fits)
        .map(|(i, s)| {
            let v = (s.get)(&policy);
            let selected = app.focus == Focus::Autoscaler && i == app.slider;
            let changed = (s.get)(&status.policy) != v;
            Line::from(vec![
                Span::raw(if selected { "▶ " } else { "  " }),
                Span::styled(format!("{:<17}", s.label), theme.focus(selected)),
                Span::raw(slider_bar((v - s.min) / (s.max - s.min), bar_width)),
                Span::styled(format!(" {:>6}", (s.show)(v)), if changed { theme.fg(Color::Yellow) } else { Style::default() }),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

fn draw_table(f: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let Screen::Table(kind) = app.screen else { return };
    let t = &app.table;
    let mut title = if t.total > t.rows.len() as u64 {
        format!(" {} (rows {}–{} of {}", kind.title(), t.offset + 1, t.offset + t.rows.len() as u64, t.total)
    } else {
        format!(" {} ({} in all", kind.title(), t.total)
    };
    if !t.filter.is_empty() || t.filtering {
        title.push_str(&format!(", filter “{}”{}", t.filter, if t.filtering { "▏" } else { "" }));
    }
    if let Some((col, desc)) = t.sort {
        title.push_str(&format!(", by {} {}", t.header.get(col).unwrap_or(&""), if desc { "↓" } else { "↑" }));
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
            let style = if i == t.selected { Style::default().add_modifier(Modifier::REVERSED) } else { Style::default() };
            Row::new(cells.iter().map(|c| Cell::from(c.clone()))).style(style)
        })
        .collect();
    let widths: Vec<Constraint> = t
        .header
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let longest = t.rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0).max(t.header[i].len());
            Constraint::Length(longest.min(40) as u16)
        })
        .collect();
    let header = Row::new(t.header.iter().map(|h| Cell::from(*h))).style(theme.title());
    let body = if visible.is_empty() {
        Table::new(vec![Row::new(vec![Cell::from("nothing to show")])], [Constraint::Min(10)])
    } else {
        Table::new(rows, widths).header(header).column_spacing(2)
    };
    f.render_widget(body.block(block(title)), area);
}

fn draw_events(f: &mut Frame, app: &App, _theme: &Theme, area: Rect) {
    let events = app.status.as_ref().map(|s| s.events.as_slice()).unwrap_or_default();
    let rows: Vec<Row> = events
        .iter()
        .map(|e| Row::new(vec![clock(e.at as f64), format!("{} → {}", e.from, e.to), e.reason.clone()]))
        .collect();
    let table = if rows.is_empty() {
        Table::new(vec![Row::new(vec!["no scaling events yet"])], [Constraint::Min(10)])
    } else {
        Table::new(rows, [Constraint::Length(8), Constraint::Length(8), Constraint::Min(20)])
            .header(Row::new(vec!["time", "size", "reason"]).style(Style::default().add_modifier(Modifier::BOLD)))
    };
    f.render_widget(table.block(block(" Scaling events (newest first) ")), area);
}

fn draw_help(f: &mut Frame, _app: &App, area: Rect) {
    let text = vec![
        Line::from(Span::styled("Keys", Style::default().add_modifier(Modifier::BOLD))),
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

fn draw_confirm(f: &mut Frame, theme: &Theme, word: &str, typed: &str, area: Rect) {
    let area = centered(area, 60, 7);
    let text = vec![
        Line::from(Span::styled("This cannot be undone.", theme.fg(Color::Red).add_modifier(Modifier::BOLD))),
        Line::from(format!("Type “{word}” and press Enter (Esc cancels):")),
        Line::raw(""),
        Line::from(vec![Span::raw("> "), Span::raw(typed.to_owned()), Span::raw("█")]),
    ];
    f.render_widget(Clear, area);
    f.render_widget(Paragraph::new(text).block(block(" Confirm ")), area);
}
