//! The main screen: the workers with their sparklines, the pool and its buttons, the worker
//! count over time, storage totals, the autoscaler's sliders and the danger zone. Keys and
//! clicks act on what is drawn, through the same `layout`.
use common::api::{Status, WorkerState, WorkerStatus};
use common::autoscale::Policy;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, Gauge, GraphType, Paragraph, Sparkline};
use ratatui::Frame;

use crate::fmt::phase_text;
use crate::ui::effect::{Command, Danger, Effect, Level, Screen, TableKind};
use crate::ui::layout;
use crate::ui::sliders::SLIDERS;
use crate::ui::theme::{block, Theme};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Workers,
    Autoscaler,
}

/// Which metric the workers' large sparklines show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Cpu,
    Requests,
}

pub struct Dashboard {
    pub focus: Focus,
    pub large: Metric,
    pub selected_worker: usize,
    pub slider: usize,
    /// The policy being edited; `None` shows the live one.
    pub draft: Option<Policy>,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard {
            focus: Focus::Workers,
            large: Metric::Cpu,
            selected_worker: 0,
            slider: 0,
            draft: None,
        }
    }
}

impl Dashboard {
    /// The policy as shown: the draft being edited, else the live one.
    pub fn policy<'a>(&'a self, status: Option<&'a Status>) -> Option<&'a Policy> {
        self.draft.as_ref().or(status.map(|s| &s.policy))
    }

    /// A new status: the selection stays on a worker that exists.
    pub fn on_status(&mut self, status: &Status) {
        self.selected_worker = self
            .selected_worker
            .min(status.workers.len().saturating_sub(1));
    }

    pub fn on_key(&mut self, key: KeyEvent, status: Option<&Status>) -> Vec<Effect> {
        let workers = status.map_or(0, |s| s.workers.len());
        let command = |c| vec![Effect::Command(c)];
        match key.code {
            KeyCode::Char('q') => return vec![Effect::Quit],
            KeyCode::Char('?') => return vec![Effect::Help],
            KeyCode::Char('p') => return vec![Effect::TogglePause],
            KeyCode::Char('r') => return vec![Effect::Refresh],
            KeyCode::Char('+' | '=') => return command(Command::Grow),
            KeyCode::Char('-') => return command(Command::Shrink),
            KeyCode::Char('t') => {
                self.large = if self.large == Metric::Cpu {
                    Metric::Requests
                } else {
                    Metric::Cpu
                };
            }
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = if self.focus == Focus::Workers {
                    Focus::Autoscaler
                } else {
                    Focus::Workers
                };
            }
            KeyCode::Up | KeyCode::Char('k') => match self.focus {
                Focus::Workers => self.selected_worker = self.selected_worker.saturating_sub(1),
                Focus::Autoscaler => self.slider = self.slider.saturating_sub(1),
            },
            KeyCode::Down | KeyCode::Char('j') => match self.focus {
                Focus::Workers => {
                    self.selected_worker = (self.selected_worker + 1).min(workers.saturating_sub(1))
                }
                Focus::Autoscaler => self.slider = (self.slider + 1).min(SLIDERS.len() - 1),
            },
            KeyCode::Left | KeyCode::Right if self.focus == Focus::Autoscaler => {
                let Some(mut policy) = self.policy(status).cloned() else {
                    return Vec::new();
                };
                let s = &SLIDERS[self.slider];
                let delta = if key.code == KeyCode::Right {
                    s.step
                } else {
                    -s.step
                };
                let v = (((s.get)(&policy) + delta) / s.step).round() * s.step;
                (s.set)(&mut policy, v.clamp(s.min, s.max));
                self.draft = Some(policy);
            }
            KeyCode::Enter if self.focus == Focus::Autoscaler => {
                if let Some(draft) = self.draft.clone() {
                    if let Err(e) = draft.validate() {
                        return vec![Effect::Message(Level::Error, e)];
                    }
                    return command(Command::SetPolicy(draft));
                }
            }
            KeyCode::Esc if self.draft.is_some() => {
                self.draft = None;
                return vec![Effect::Message(Level::Info, "changes discarded".into())];
            }
            KeyCode::Char('a') => {
                let enabled = status.is_some_and(|s| s.autoscaler.enabled);
                return command(Command::SetAutoscaler(!enabled));
            }
            KeyCode::Char('1') => return vec![Effect::Go(Screen::Table(TableKind::Accounts))],
            KeyCode::Char('2') => return vec![Effect::Go(Screen::Table(TableKind::Photos))],
            KeyCode::Char('3') => return vec![Effect::Go(Screen::Table(TableKind::Objects))],
            KeyCode::Char('4') => return vec![Effect::Go(Screen::Table(TableKind::Users))],
            KeyCode::Char('e') => return vec![Effect::Go(Screen::Events)],
            KeyCode::Char('D') => return vec![Effect::Ask(Danger::DeleteAllPhotos)],
            KeyCode::Char('X') => return vec![Effect::Ask(Danger::DeleteEverything)],
            KeyCode::Char('S') => return vec![Effect::Ask(Danger::StopEverything)],
            _ => {}
        }
        Vec::new()
    }

    /// A left click at (`col`, `row`) in the screen's `body`: buttons and rows do what their
    /// keys do.
    pub fn on_click(
        &mut self,
        col: u16,
        row: u16,
        body: Rect,
        status: Option<&Status>,
    ) -> Vec<Effect> {
        let Some(status) = status else {
            return Vec::new();
        };
        let workers = status.workers.len();
        let d = layout::dashboard(body);
        let hit = |r: Rect| layout::contains(layout::inner(r), col, row);
        let on = |start: u16, label: &str, inner: Rect| {
            col >= inner.x + start && col < inner.x + start + label.chars().count() as u16
        };
        if hit(d.workers) {
            let inner = layout::inner(d.workers);
            let index = layout::first_worker(self.selected_worker, workers, inner)
                + ((row - inner.y) / layout::WORKER_ROW) as usize;
            if index < workers {
                self.selected_worker = index;
                self.focus = Focus::Workers;
            }
        } else if hit(d.pool) {
            let inner = layout::inner(d.pool);
            if row == inner.y + 2 {
                let ((grow, gx), (shrink, sx)) = (layout::GROW_BUTTON, layout::SHRINK_BUTTON);
                if on(gx, grow, inner) {
                    return vec![Effect::Command(Command::Grow)];
                }
                if on(sx, shrink, inner) {
                    return vec![Effect::Command(Command::Shrink)];
                }
            }
        } else if hit(d.totals) {
            let Some(totals) = &status.totals else {
                return Vec::new();
            };
            let inner = layout::inner(d.totals);
            let line = (row - inner.y) as usize;
            if line > 1 {
                return Vec::new();
            }
            let text = &layout::totals_lines(totals)[line];
            let split = text.chars().position(|c| c == '·').unwrap_or(0) as u16;
            let left = col < inner.x + split;
            let kind = match (line, left) {
                (0, true) => TableKind::Accounts,
                (0, false) => TableKind::Photos,
                (_, true) => TableKind::Objects,
                (_, false) => TableKind::Users,
            };
            return vec![Effect::Go(Screen::Table(kind))];
        } else if hit(d.autoscaler) {
            let inner = layout::inner(d.autoscaler);
            let index = layout::first_slider(self.slider, inner) + (row - inner.y) as usize;
            if index >= SLIDERS.len() {
                return Vec::new();
            }
            self.focus = Focus::Autoscaler;
            self.slider = index;
            let bar_x = inner.x + layout::SLIDER_LABEL;
            let width = layout::slider_bar_width(inner);
            if col >= bar_x && col < bar_x + width {
                if let Some(mut policy) = self.policy(Some(status)).cloned() {
                    let s = &SLIDERS[index];
                    let fraction = (col - bar_x) as f64 / (width - 1).max(1) as f64;
                    let v = s.min + fraction * (s.max - s.min);
                    (s.set)(
                        &mut policy,
                        ((v / s.step).round() * s.step).clamp(s.min, s.max),
                    );
                    self.draft = Some(policy);
                }
            }
        } else if let Some(danger) = d.danger.filter(|r| hit(*r)) {
            let inner = layout::inner(danger);
            let actions = [
                Danger::DeleteAllPhotos,
                Danger::DeleteEverything,
                Danger::StopEverything,
            ];
            for ((label, x), action) in layout::DANGER.iter().zip(actions) {
                if on(*x, label, inner) {
                    return vec![Effect::Ask(action)];
                }
            }
        }
        Vec::new()
    }

    pub fn hints(&self) -> &'static str {
        match self.focus {
            Focus::Autoscaler => "↑↓ setting · ←→ change · Enter apply · Esc discard · a on/off · Tab workers · ? help · q quit",
            Focus::Workers => {
                "+ grow · - shrink · t cpu/req · Tab autoscaler · 1-4 tables · e events · p pause · D X S danger · ? help · q quit"
            }
        }
    }

    pub fn draw(
        &self,
        f: &mut Frame,
        theme: &Theme,
        area: Rect,
        status: Option<&Status>,
        reachable: bool,
    ) {
        let Some(status) = status else {
            let text = if reachable {
                "Loading…"
            } else {
                "The control plane cannot be reached; retrying."
            };
            f.render_widget(
                Paragraph::new(text)
                    .alignment(Alignment::Center)
                    .block(block(" Workers ")),
                area,
            );
            return;
        };
        let d = layout::dashboard(area);
        self.draw_workers(f, theme, status, d.workers);
        draw_pool(f, theme, status, d.pool);
        draw_count_chart(f, status, d.chart);
        draw_totals(f, status, d.totals);
        self.draw_autoscaler(f, theme, status, d.autoscaler);
        if let Some(danger) = d.danger {
            let spans: Vec<Span> = layout::DANGER
                .iter()
                .flat_map(|(label, _)| {
                    [Span::styled(*label, theme.fg(Color::Red)), Span::raw("  ")]
                })
                .collect();
            f.render_widget(
                Paragraph::new(Line::from(spans)).block(block(" Danger zone ")),
                danger,
            );
        }
    }

    fn draw_workers(&self, f: &mut Frame, theme: &Theme, status: &Status, area: Rect) {
        let metric = match self.large {
            Metric::Cpu => "CPU",
            Metric::Requests => "requests/s",
        };
        let title = Line::from(vec![
            Span::styled(
                format!(" Workers ({}) ", status.workers.len()),
                theme.focus(self.focus == Focus::Workers),
            ),
            Span::raw(format!("· {metric}, 30 min · t toggles ")),
        ]);
        let outer = block(title);
        let inner = outer.inner(area);
        f.render_widget(outer, area);
        if status.workers.is_empty() {
            f.render_widget(
                Paragraph::new("No workers yet: the pool is starting, or stopped."),
                inner,
            );
            return;
        }
        let row_h = layout::WORKER_ROW;
        let fits = (inner.height / row_h).max(1) as usize;
        let first = layout::first_worker(self.selected_worker, status.workers.len(), inner);
        for (i, w) in status.workers.iter().enumerate().skip(first).take(fits) {
            let y = inner.y + ((i - first) as u16) * row_h;
            let text = Rect {
                x: inner.x,
                y,
                width: inner.width,
                height: 1,
            };
            f.render_widget(
                Paragraph::new(worker_line(theme, w, i == self.selected_worker)),
                text,
            );
            let (large, small) = match self.large {
                Metric::Cpu => (Metric::Cpu, Metric::Requests),
                Metric::Requests => (Metric::Requests, Metric::Cpu),
            };
            let spark = Rect {
                x: inner.x + 2,
                y: y + 1,
                width: inner.width.saturating_sub(2),
                height: row_h - 1,
            };
            draw_spark(f, theme, w, large, spark);
            // The other metric, small, after the text on the worker's own line.
            const TEXT: u16 = 36;
            if inner.width >= TEXT + 8 {
                draw_spark(
                    f,
                    theme,
                    w,
                    small,
                    Rect {
                        x: inner.x + TEXT,
                        y,
                        width: inner.width - TEXT,
                        height: 1,
                    },
                );
            }
        }
    }

    fn draw_autoscaler(&self, f: &mut Frame, theme: &Theme, status: &Status, area: Rect) {
        let title = Line::from(vec![
            Span::styled(" Autoscaler ", theme.focus(self.focus == Focus::Autoscaler)),
            Span::raw(format!("{} ", phase_text(status))),
            Span::styled(
                if self.draft.is_some() {
                    "· edited, Enter applies "
                } else {
                    ""
                },
                theme.fg(Color::Yellow),
            ),
        ]);
        let outer = block(title);
        let inner = outer.inner(area);
        f.render_widget(outer, area);
        let policy = self
            .policy(Some(status))
            .cloned()
            .unwrap_or_else(|| status.policy.clone());
        let fits = inner.height as usize;
        let first = layout::first_slider(self.slider, inner);
        let bar_width = layout::slider_bar_width(inner) as usize;
        let lines: Vec<Line> = SLIDERS
            .iter()
            .enumerate()
            .skip(first)
            .take(fits)
            .map(|(i, s)| {
                let v = (s.get)(&policy);
                let selected = self.focus == Focus::Autoscaler && i == self.slider;
                let changed = (s.get)(&status.policy) != v;
                Line::from(vec![
                    Span::raw(if selected { "▶ " } else { "  " }),
                    Span::styled(format!("{:<17}", s.label), theme.focus(selected)),
                    Span::raw(slider_bar((v - s.min) / (s.max - s.min), bar_width)),
                    Span::styled(
                        format!(" {:>6}", (s.show)(v)),
                        if changed {
                            theme.fg(Color::Yellow)
                        } else {
                            Style::default()
                        },
                    ),
                ])
            })
            .collect();
        f.render_widget(Paragraph::new(lines), inner);
    }
}

fn worker_line(theme: &Theme, w: &WorkerStatus, selected: bool) -> Line<'static> {
    let cpu = w
        .cpu
        .map(|c| format!("{:>3.0}%", c * 100.0))
        .unwrap_or_else(|| "   –".into());
    let req = w
        .request_rate
        .map(|r| format!("{r:>5.1}/s"))
        .unwrap_or_else(|| "     –".into());
    let marker = if selected { "▶ " } else { "  " };
    // EC2 ids are 19 characters; their tail tells instances apart (`--once` prints them whole).
    let id = if w.id.chars().count() > 9 {
        format!(
            "…{}",
            w.id.chars()
                .rev()
                .take(8)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<String>()
        )
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

fn draw_spark(f: &mut Frame, theme: &Theme, w: &WorkerStatus, metric: Metric, area: Rect) {
    let (series, max, colour, scale) = match metric {
        Metric::Cpu => (&w.cpu_series, Some(100u64), Color::Magenta, 100.0),
        Metric::Requests => (&w.request_series, None, Color::Blue, 10.0),
    };
    // Newest sample at the right edge, like a time axis ending now.
    let width = area.width as usize;
    let values = series
        .iter()
        .map(|(_, v)| (v * scale).round().max(0.0) as u64);
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
    let [gauge, detail, buttons] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let button = |(label, _): (&'static str, u16)| {
        Span::styled(label, theme.fg(Color::Cyan).add_modifier(Modifier::BOLD))
    };
    f.render_widget(
        Paragraph::new(Line::from(vec![
            button(layout::GROW_BUTTON),
            Span::raw("  "),
            button(layout::SHRINK_BUTTON),
        ])),
        buttons,
    );
    let label = format!("{}/{} healthy", p.healthy, total);
    f.render_widget(
        Gauge::default()
            .ratio(p.healthy as f64 / total as f64)
            .label(label)
            .gauge_style(theme.fg(Color::Green)),
        gauge,
    );
    if let Some(problem) = &status.launch_problem {
        // The operator must see why the pool is not growing, and that it is not retried hot.
        let wait = (problem.retry_at - status.now).max(0.0);
        f.render_widget(
            Paragraph::new(Line::from(Span::styled(
                format!(
                    "launch failed {}× (retry in {wait:.0} s): {}",
                    problem.failures, problem.error
                ),
                theme.fg(Color::Red),
            ))),
            detail,
        );
        return;
    }
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(
                format!("{} starting", p.starting),
                theme.state(WorkerState::Starting),
            ),
            Span::raw(" · "),
            Span::styled(
                format!("{} unhealthy", p.unhealthy),
                theme.state(WorkerState::Unhealthy),
            ),
            Span::raw(" · "),
            Span::styled(
                format!("{} draining", p.draining),
                theme.state(WorkerState::Draining),
            ),
            Span::raw(" · "),
            Span::styled(
                format!("{} standby", p.standby),
                theme.state(WorkerState::Standby),
            ),
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
    let top = desired
        .iter()
        .chain(&healthy)
        .map(|p| p.1)
        .fold(status.policy.min_workers as f64, f64::max)
        + 1.0;
    let datasets = vec![
        Dataset::default()
            .name("desired")
            .marker(symbols::Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::Yellow))
            .data(&desired),
        Dataset::default()
            .name("healthy")
            .marker(symbols::Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::Green))
            .data(&healthy),
    ];
    let chart = Chart::new(datasets)
        .block(block(" Workers, last 30 min "))
        .x_axis(
            Axis::default()
                .bounds([-30.0, 0.0])
                .labels(["-30m", "-15m", "now"]),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels(["0".to_string(), format!("{top:.0}")]),
        );
    f.render_widget(chart, area);
}

fn draw_totals(f: &mut Frame, status: &Status, area: Rect) {
    let mut text = match &status.totals {
        Some(t) => layout::totals_lines(t).join("\n"),
        None => "storage and database totals unavailable\n".into(),
    };
    text.push('\n');
    text.push_str(&match &status.backlog {
        // Short enough for a half-width panel; `--once` gives queued and processing apart.
        Some(b) if b.waiting() > 0 => format!(
            "backlog {} · {} failed · oldest {:.0} s",
            b.waiting(),
            b.failed,
            b.oldest_secs
        ),
        Some(b) => format!("backlog empty · {} failed", b.failed),
        None => "backlog unavailable".into(),
    });
    if let Some(d) = &status.demand {
        text.push_str(&format!(
            "\nin {:.1}/s · out {:.1}/s · {:.1}/s per worker",
            d.accepted_per_sec, d.processed_per_sec, d.rate_per_worker
        ));
    }
    if let Some(t) = &status.processing_times {
        text.push_str(&format!(
            "\nto processed p50 {:.0} s · p99 {:.0} s",
            t.p50_secs, t.p99_secs
        ));
    }
    // The local balancer's side: what users were turned away, which the backlog never sees.
    if let Some(d) = &status.front_door {
        let turned_away = d.refused_connections + d.timed_out_connections + d.worker_timeouts;
        text.push_str(&format!(
            "\nuploads {} · {} not accepted · {} connections turned away",
            d.uploads, d.refused_uploads, turned_away
        ));
    }
    // Behind an ALB, CloudWatch's counts instead (a minute or two behind).
    if let Some(r) = &status.refusals {
        text.push_str(&format!(
            "\nuploads {} · {} not accepted · ALB 5xx {}",
            r.uploads, r.refused_uploads, r.load_balancer_5xx
        ));
    }
    f.render_widget(
        Paragraph::new(text).block(block(" Storage & database ")),
        area,
    );
}

fn slider_bar(fraction: f64, width: usize) -> String {
    let pos = ((fraction.clamp(0.0, 1.0)) * (width.saturating_sub(1)) as f64).round() as usize;
    (0..width)
        .map(|i| {
            if i == pos {
                '●'
            } else if i < pos {
                '━'
            } else {
                '─'
            }
        })
        .collect()
}
