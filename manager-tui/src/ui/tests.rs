//! Snapshots of every screen on `TestBackend` (80×24 and 160×48, fixed data), and key
//! sequences driving the app against a fake API.
use common::api::{
    AccountRow, AutoscalerStatus, Backlog, CountPoint, DeleteReply, Demand, FrontDoor, KindUsage,
    ObjectRow, OtpReply, Page, PhotoRow, PhotoState, PoolCounts, PoolReply, ProcessingTimes,
    ScalingEvent, Status, TokenReply, Totals, UserUsage, WorkerState, WorkerStatus,
};
use common::autoscale::demand::RateSource;
use common::autoscale::{Phase, Policy, PolicyKind};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

use super::app::{App, Reply};
use super::draw::draw;
use super::effect::{Command, Danger, Level, Screen, TableKind};
use super::screens::dashboard::Focus;
use super::screens::login::LoginStep;
use super::screens::table::TableData;
use crate::client::ClientError;

const NOW: f64 = 1_800_000_000.0;

fn worker(i: usize, state: WorkerState) -> WorkerStatus {
    let series = |scale: f64| -> Vec<(f64, f64)> {
        (0..360)
            .map(|k| {
                (
                    NOW - 1800.0 + k as f64 * 5.0,
                    scale * (((k + i * 7) % 40) as f64 / 40.0),
                )
            })
            .collect()
    };
    let live = state != WorkerState::Starting;
    WorkerStatus {
        id: format!("local-{}", i + 1),
        address: format!("127.0.0.1:{}", 41000 + i),
        pid: Some(1000 + i as u32),
        state,
        started_at: NOW - 600.0,
        cpu: live.then_some(0.05 * (i as f64 + 1.0)),
        request_rate: live.then_some(0.5 * i as f64),
        cpu_series: if live { series(0.9) } else { Vec::new() },
        request_series: if live { series(3.0) } else { Vec::new() },
        cpu_per_minute: Vec::new(),
        requests_per_minute: Vec::new(),
        in_flight: 0,
    }
}

fn status(workers: Vec<WorkerStatus>, phase: Phase) -> Status {
    let desired = match phase {
        Phase::Resizing { target, .. } => target,
        _ => workers.len() as u32,
    };
    Status {
        deployment: common::config::ProviderKind::Local,
        balancer: "127.0.0.1:8080".into(),
        now: NOW,
        pool: PoolCounts::of(&workers, desired),
        policy: Policy::default(),
        autoscaler: AutoscalerStatus {
            enabled: true,
            phase,
            seconds_left: match phase {
                Phase::Idle => None,
                _ => Some(42.0),
            },
        },
        history: (0..30)
            .map(|m| CountPoint {
                at: (NOW - 1800.0) as i64 + m * 60,
                desired: 1 + (m as u32 / 10),
                healthy: 1 + (m as u32 / 12),
            })
            .collect(),
        events: vec![
            ScalingEvent {
                at: (NOW - 300.0) as i64,
                from: 2,
                to: 3,
                reason: "autoscaler: CPU 85% above 60%".into(),
            },
            ScalingEvent {
                at: (NOW - 900.0) as i64,
                from: 1,
                to: 2,
                reason: "operator: grow by one".into(),
            },
        ],
        workers,
        totals: Some(Totals {
            accounts: 4,
            photos: 13,
            objects: 39,
            bytes: 45_612_000,
        }),
        backlog: Some(Backlog {
            queued: 420,
            processing: 2,
            failed: 1,
            oldest_secs: 37.4,
        }),
        demand: Some(Demand {
            accepted_per_sec: 14.8,
            processed_per_sec: 5.1,
            rate_per_worker: 2.55,
            rate_source: RateSource::Measured,
            needed: 10,
        }),
        processing_times: Some(ProcessingTimes {
            photos: 312,
            p50_secs: 12.4,
            p99_secs: 35.2,
        }),
        launch_problem: None,
        front_door: Some(FrontDoor {
            open_connections: 37,
            max_connections: 4096,
            refused_connections: 0,
            timed_out_connections: 2,
            bad_bodies: 1,
            worker_timeouts: 0,
            uploads: 615,
            refused_uploads: 3,
        }),
        refusals: None,
    }
}

fn ten_workers() -> Vec<WorkerStatus> {
    (0..10)
        .map(|i| {
            let state = match i {
                7 => WorkerState::Starting,
                8 => WorkerState::Unhealthy,
                9 => WorkerState::Draining,
                _ => WorkerState::Healthy,
            };
            worker(i, state)
        })
        .collect()
}

fn app() -> App {
    let mut app = App::new("http://127.0.0.1:5000", Some("token".into()), NOW);
    app.colour = false;
    app
}

fn with_status(s: Status) -> App {
    let mut app = app();
    let balancer = s.balancer.clone();
    let probe = app.on_reply(Reply::Status(Ok(s)));
    assert_eq!(
        probe,
        vec![Command::ProbeBalancer(balancer)],
        "every refresh probes the balancer"
    );
    app.on_reply(Reply::Balancer(true));
    app
}

fn render(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, app)).unwrap();
    t.backend().to_string()
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn code(k: KeyCode) -> KeyEvent {
    KeyEvent::new(k, KeyModifiers::NONE)
}

fn typed(app: &mut App, text: &str) -> Vec<Command> {
    text.chars().flat_map(|c| app.on_key(key(c))).collect()
}

fn users_table() -> TableData {
    let u = |id, name: &str, photos| UserUsage {
        id,
        username: name.into(),
        photos,
        originals: KindUsage {
            files: photos,
            bytes: photos * 3_400_000,
        },
        annotated: KindUsage {
            files: photos,
            bytes: photos * 1_400_000,
        },
        thumbnails: KindUsage {
            files: photos,
            bytes: photos * 6_000,
        },
    };
    TableData::Users(vec![
        u(1, "a", 0),
        u(2, "donald.trump", 0),
        u(3, "exampleuser", 9),
        u(4, "corona.virus", 4),
    ])
}

/// Every screen, at both sizes.
fn screens() -> Vec<(&'static str, App)> {
    let mut out = Vec::new();

    let mut login = App::new("http://127.0.0.1:5000", None, NOW);
    login.colour = false;
    typed(&mut login, "ops@example.com");
    out.push(("login_email", login));

    let mut code_entry = App::new("http://127.0.0.1:5000", None, NOW);
    code_entry.colour = false;
    typed(&mut code_entry, "ops@example.com");
    code_entry.on_key(code(KeyCode::Enter));
    code_entry.on_reply(Reply::Code(Ok(OtpReply {
        challenge: "c".into(),
        expires_in: 60,
        message: String::new(),
    })));
    code_entry.on_tick(NOW + 17.2);
    typed(&mut code_entry, "597");
    out.push(("login_code_countdown", code_entry));

    let mut expired = App::new("http://127.0.0.1:5000", None, NOW);
    expired.colour = false;
    expired.login.step = LoginStep::Code {
        challenge: "c".into(),
        email: "ops@example.com".into(),
        deadline: NOW + 60.0,
    };
    expired.on_tick(NOW + 61.0);
    out.push(("login_code_expired", expired));

    out.push((
        "dashboard_empty_pool",
        with_status(status(Vec::new(), Phase::Idle)),
    ));
    out.push((
        "dashboard_ten_workers",
        with_status(status(ten_workers(), Phase::Idle)),
    ));
    out.push((
        "dashboard_resizing",
        with_status(status(
            vec![
                worker(0, WorkerState::Healthy),
                worker(1, WorkerState::Starting),
            ],
            Phase::Resizing {
                target: 2,
                since: NOW - 10.0,
            },
        )),
    ));

    let mut unreachable = app();
    unreachable.on_reply(Reply::Status(Err(ClientError::Unreachable {
        url: "http://127.0.0.1:5000".into(),
        reason: "Connection refused".into(),
    })));
    out.push(("dashboard_unreachable", unreachable));

    let mut balancer_down = with_status(status(ten_workers()[..1].to_vec(), Phase::Idle));
    balancer_down.on_reply(Reply::Balancer(false));
    out.push(("dashboard_balancer_down", balancer_down));

    let mut requests = with_status(status(
        ten_workers()[..3].to_vec(),
        Phase::Cooldown { until: NOW + 42.0 },
    ));
    requests.on_key(key('t'));
    requests.on_key(key('p'));
    out.push(("dashboard_requests_paused", requests));

    let mut editing = with_status(status(ten_workers()[..2].to_vec(), Phase::Idle));
    editing.on_key(code(KeyCode::Tab));
    editing.on_key(code(KeyCode::Down));
    editing.on_key(code(KeyCode::Right));
    editing.on_key(code(KeyCode::Right));
    out.push(("dashboard_autoscaler_edit", editing));

    let mut confirm = with_status(status(ten_workers()[..2].to_vec(), Phase::Idle));
    confirm.on_key(key('X'));
    typed(&mut confirm, "delete every");
    out.push(("confirm_delete_everything", confirm));

    let mut help = with_status(status(ten_workers()[..2].to_vec(), Phase::Idle));
    help.on_key(key('?'));
    out.push(("help", help));

    let mut users = with_status(status(ten_workers()[..2].to_vec(), Phase::Idle));
    users.on_key(key('4'));
    users.on_reply(Reply::Table(TableKind::Users, Ok(users_table())));
    users.on_key(code(KeyCode::Down));
    out.push(("table_users", users));

    let mut accounts = with_status(status(ten_workers()[..2].to_vec(), Phase::Idle));
    accounts.on_key(key('1'));
    let rows = (1..=40)
        .map(|i| AccountRow {
            id: i,
            username: format!("user{i:02}"),
            created_at: NOW as i64 - 86400 + i as i64 * 60,
            photos: i % 7,
        })
        .collect();
    accounts.on_reply(Reply::Table(
        TableKind::Accounts,
        Ok(TableData::Accounts(Page {
            total: 40,
            offset: 0,
            items: rows,
        })),
    ));
    accounts.on_key(key('s'));
    accounts.on_key(key('s'));
    accounts.on_key(key('/'));
    typed(&mut accounts, "user1");
    out.push(("table_accounts_sorted_filtered", accounts));

    let mut photos = with_status(status(ten_workers()[..2].to_vec(), Phase::Idle));
    photos.on_key(key('2'));
    let photo = |i: u64, detector: &str| PhotoRow {
        id: format!("0190{i:02}e7b{:02}{}", i * 7, "0".repeat(21)),
        owner_id: i % 3 + 1,
        owner: format!("user{}", i % 3 + 1),
        file_name: format!("IMG_{:04}.jpg", 4000 + i),
        content_type: "image/jpeg".into(),
        width: 4032,
        height: 3024,
        bytes: 2_400_000 + i * 1000,
        boxes: (i % 9) as u32,
        created_at: NOW as i64 - 3600 + i as i64 * 60,
        detector: detector.into(),
        runtime: detector
            .rsplit_once(" on ")
            .map_or("", |(_, runtime)| runtime)
            .into(),
        // The newest are still waiting for a processor.
        state: match i {
            1 => PhotoState::Queued,
            2 => PhotoState::Processing,
            _ => PhotoState::Ready,
        },
    };
    let rows = vec![
        photo(1, ""),
        photo(2, "text (PP-OCRv4 DBNet) on rten"),
        photo(3, "text (PP-OCRv4 DBNet) on OpenVINO"),
        photo(4, "text (PP-OCRv4 DBNet) on OpenVINO (bf16)"),
    ];
    photos.on_reply(Reply::Table(
        TableKind::Photos,
        Ok(TableData::Photos(Page {
            total: 4,
            offset: 0,
            items: rows,
        })),
    ));
    out.push(("table_photos", photos));

    let mut events = with_status(status(ten_workers()[..2].to_vec(), Phase::Idle));
    events.on_key(key('e'));
    out.push(("events", events));

    // The aws deployment: instance ids, the ALB's name, and a pool that cannot grow.
    let mut aws = status(
        ten_workers()[..2].to_vec(),
        Phase::Resizing {
            target: 3,
            since: NOW - 30.0,
        },
    );
    aws.deployment = common::config::ProviderKind::Aws;
    aws.balancer = "http://gallery-alb-1234567890.eu-west-1.elb.amazonaws.com".into();
    for (w, id) in aws
        .workers
        .iter_mut()
        .zip(["i-0a1b2c3d4e5f60718", "i-0f9e8d7c6b5a43210"])
    {
        w.id = id.into();
        w.pid = None;
    }
    aws.launch_problem = Some(common::api::LaunchProblem {
        error: "RunInstances: InvalidAMIID.NotFound: The image id '[ami-0bad]' does not exist"
            .into(),
        failures: 3,
        retry_at: NOW + 7.0,
    });
    // Behind the ALB there is no front door of ours: CloudWatch's counts stand in.
    aws.front_door = None;
    aws.refusals = Some(common::api::Refusals {
        uploads: 1204,
        refused_uploads: 0,
        load_balancer_5xx: 17,
    });
    out.push(("dashboard_aws_launch_failing", with_status(aws)));
    out
}

#[test]
fn snapshots_of_every_screen() {
    for (name, app) in screens() {
        insta::assert_snapshot!(format!("{name}_80x24"), render(&app, 80, 24));
        insta::assert_snapshot!(format!("{name}_160x48"), render(&app, 160, 48));
    }
}

#[test]
fn tiny_terminal_does_not_panic() {
    for (_, app) in screens() {
        for (w, h) in [(20, 5), (1, 1), (40, 10)] {
            render(&app, w, h);
        }
    }
}

/// A control plane in memory: answers commands the way the real one would.
struct FakeApi {
    code: &'static str,
    status: Status,
    log: Vec<Command>,
}

impl FakeApi {
    fn new() -> Self {
        FakeApi {
            code: "123456",
            status: status(vec![worker(0, WorkerState::Healthy)], Phase::Idle),
            log: Vec::new(),
        }
    }

    fn answer(&mut self, cmd: &Command) -> Reply {
        self.log.push(cmd.clone());
        match cmd {
            Command::RequestCode(_) => Reply::Code(Ok(OtpReply {
                challenge: "ch1".into(),
                expires_in: 60,
                message: String::new(),
            })),
            Command::Verify { challenge, code } if challenge == "ch1" && code == self.code => {
                Reply::Token(Ok(TokenReply {
                    token: "tok".into(),
                    expires_at: None,
                }))
            }
            Command::Verify { .. } => Reply::Token(Err(ClientError::Unauthorized(
                "the code is wrong or has expired; ask for a new one".into(),
            ))),
            Command::Refresh => Reply::Status(Ok(self.status.clone())),
            Command::ProbeBalancer(_) => Reply::Balancer(true),
            Command::Grow | Command::Shrink => {
                let d =
                    self.status.pool.desired as i64 + if *cmd == Command::Grow { 1 } else { -1 };
                if d < 1 {
                    return Reply::Pool(Err(ClientError::Api {
                        status: 409,
                        message: "the pool is at its minimum of 1 workers".into(),
                    }));
                }
                self.status.pool.desired = d as u32;
                Reply::Pool(Ok(PoolReply {
                    desired: d as u32,
                    message: format!("resizing the pool to {d} workers"),
                }))
            }
            Command::SetPolicy(p) => {
                self.status.policy = p.clone();
                Reply::Policy(Ok(p.clone()))
            }
            Command::SetAutoscaler(on) => {
                self.status.autoscaler.enabled = *on;
                Reply::Pool(Ok(PoolReply {
                    desired: self.status.pool.desired,
                    message: "ok".into(),
                }))
            }
            Command::LoadTable(TableKind::Objects, offset) => {
                let items = (*offset..(*offset + 200).min(450))
                    .map(|i| ObjectRow {
                        key: format!("photos/{i:04}.jpg"),
                        size: i * 10,
                    })
                    .collect();
                Reply::Table(
                    TableKind::Objects,
                    Ok(TableData::Objects(Page {
                        total: 450,
                        offset: *offset,
                        items,
                    })),
                )
            }
            Command::LoadTable(kind, _) => Reply::Table(*kind, Ok(users_table())),
            Command::Danger(d @ Danger::StopEverything) => {
                let _ = d;
                Reply::Stopped(Ok(PoolReply {
                    desired: 0,
                    message: "stopping".into(),
                }))
            }
            Command::Danger(d) => Reply::Deleted(
                *d,
                Ok(DeleteReply {
                    photos: 13,
                    objects: 39,
                    accounts: 0,
                }),
            ),
            Command::SaveToken(_) => Reply::Notice(Level::Info, "saved".into()),
        }
    }

    /// Feeds commands to the fake and its replies back until nothing is left to do.
    fn settle(&mut self, app: &mut App, mut pending: Vec<Command>) {
        while let Some(cmd) = pending.pop() {
            let reply = self.answer(&cmd);
            pending.extend(app.on_reply(reply));
        }
    }

    fn keys(&mut self, app: &mut App, keys: &[KeyEvent]) {
        for k in keys {
            let cmds = app.on_key(*k);
            self.settle(app, cmds);
        }
    }
}

#[test]
fn login_wrong_code_returns_to_email_then_right_code_logs_in_and_saves() {
    let mut api = FakeApi::new();
    let mut app = App::new("x", None, NOW);
    let cmds = typed(&mut app, "ops@example.com");
    assert!(cmds.is_empty());
    api.keys(&mut app, &[code(KeyCode::Enter)]);
    assert_eq!(
        api.log,
        vec![Command::RequestCode("ops@example.com".into())]
    );
    assert!(matches!(app.login.step, LoginStep::Code { .. }));
    // Letters are ignored in the code field.
    typed(&mut app, "12a3b456");
    assert_eq!(app.login.input, "123456");
    api.code = "654321";
    api.keys(&mut app, &[code(KeyCode::Enter)]);
    assert_eq!(app.login.step, LoginStep::Email);
    assert!(
        app.message
            .as_ref()
            .unwrap()
            .1
            .contains("wrong or has expired"),
        "{:?}",
        app.message
    );
    assert_eq!(app.screen, Screen::Login);

    typed(&mut app, "ops@example.com");
    api.keys(&mut app, &[code(KeyCode::Enter)]);
    for c in "654321".chars() {
        api.keys(&mut app, &[key(c)]);
    }
    api.keys(&mut app, &[code(KeyCode::Enter)]);
    assert!(matches!(app.login.step, LoginStep::OfferSave { .. }));
    api.keys(&mut app, &[key('y')]);
    assert_eq!(app.screen, Screen::Dashboard);
    assert_eq!(app.token.as_deref(), Some("tok"));
    assert!(api.log.contains(&Command::SaveToken("tok".into())));
    assert!(
        app.status.is_some(),
        "the dashboard loaded right after login"
    );
}

#[test]
fn an_unanswered_code_expires_on_the_countdown() {
    let mut api = FakeApi::new();
    let mut app = App::new("x", None, NOW);
    typed(&mut app, "ops@example.com");
    api.keys(&mut app, &[code(KeyCode::Enter)]);
    assert!(app.on_tick(NOW + 59.0).is_empty());
    assert!(matches!(app.login.step, LoginStep::Code { .. }));
    app.on_tick(NOW + 60.5);
    assert_eq!(app.login.step, LoginStep::Email);
    assert!(app.message.as_ref().unwrap().1.contains("expired"));
}

#[test]
fn grow_and_shrink_reach_the_api_and_refresh() {
    let mut api = FakeApi::new();
    let mut app = app();
    let start = app.start();
    api.settle(&mut app, start);
    api.keys(&mut app, &[key('+'), key('+')]);
    assert_eq!(app.status.as_ref().unwrap().pool.desired, 3);
    api.keys(&mut app, &[key('-'), key('-'), key('-')]);
    assert_eq!(app.status.as_ref().unwrap().pool.desired, 1);
    assert!(
        app.message.as_ref().unwrap().1.contains("minimum"),
        "{:?}",
        app.message
    );
    assert_eq!(api.log.iter().filter(|c| **c == Command::Grow).count(), 2);
}

#[test]
fn sliders_edit_a_draft_that_is_validated_before_it_is_sent() {
    let mut api = FakeApi::new();
    let mut app = app();
    let start = app.start();
    api.settle(&mut app, start);
    // Tab to the autoscaler; the first slider is the policy (demand): one step left is the
    // CPU step policy.
    api.keys(
        &mut app,
        &[
            code(KeyCode::Tab),
            code(KeyCode::Left),
            code(KeyCode::Enter),
        ],
    );
    assert_eq!(app.status.as_ref().unwrap().policy.kind, PolicyKind::Cpu);
    // Four down is the grow threshold (60 %).
    let mut keys = vec![code(KeyCode::Down); 4];
    keys.extend([code(KeyCode::Right), code(KeyCode::Enter)]);
    api.keys(&mut app, &keys);
    assert_eq!(app.status.as_ref().unwrap().policy.grow_cpu, 0.65);
    assert!(app.dashboard.draft.is_none());
    // Push the shrink threshold above the grow threshold: refused locally, nothing sent.
    let sent = api.log.len();
    let mut keys = vec![code(KeyCode::Down)];
    keys.extend(std::iter::repeat_n(code(KeyCode::Right), 14));
    keys.push(code(KeyCode::Enter));
    api.keys(&mut app, &keys);
    assert_eq!(api.log.len(), sent, "an invalid policy is not sent");
    assert!(
        app.message
            .as_ref()
            .unwrap()
            .1
            .contains("above the shrink threshold"),
        "{:?}",
        app.message
    );
    api.keys(&mut app, &[code(KeyCode::Esc)]);
    assert!(app.dashboard.draft.is_none());
}

#[test]
fn dangerous_actions_need_their_name_typed() {
    let mut api = FakeApi::new();
    let mut app = app();
    let start = app.start();
    api.settle(&mut app, start);
    api.keys(&mut app, &[key('D')]);
    assert!(app.confirm.is_some());
    for c in "delete photos".chars() {
        api.keys(&mut app, &[key(c)]);
    }
    api.keys(&mut app, &[code(KeyCode::Enter)]);
    assert!(app.confirm.is_some(), "wrong words keep the dialog open");
    assert!(!api.log.iter().any(|c| matches!(c, Command::Danger(_))));
    api.keys(&mut app, &[code(KeyCode::Esc)]);
    assert!(app.confirm.is_none());

    api.keys(&mut app, &[key('D')]);
    for c in "delete all photos".chars() {
        api.keys(&mut app, &[key(c)]);
    }
    api.keys(&mut app, &[code(KeyCode::Enter)]);
    assert!(api.log.contains(&Command::Danger(Danger::DeleteAllPhotos)));
    assert!(app
        .message
        .as_ref()
        .unwrap()
        .1
        .contains("deleted 13 photos"));

    // A user's photos from the usage table.
    api.keys(
        &mut app,
        &[key('4'), code(KeyCode::Down), code(KeyCode::Down), key('d')],
    );
    for c in "delete".chars() {
        api.keys(&mut app, &[key(c)]);
    }
    api.keys(&mut app, &[code(KeyCode::Enter)]);
    assert!(
        api.log
            .contains(&Command::Danger(Danger::DeleteUserPhotos(3))),
        "{:?}",
        api.log
    );
}

#[test]
fn an_expired_token_sends_the_operator_back_to_login() {
    let mut app = app();
    app.on_reply(Reply::Status(Err(ClientError::Unauthorized(
        "the token is unknown or has expired; log in again".into(),
    ))));
    assert_eq!(app.screen, Screen::Login);
    assert!(app.token.is_none());
    assert!(
        app.on_tick(NOW + 100.0).is_empty(),
        "no refresh without a token"
    );
}

#[test]
fn refresh_runs_on_ticks_unless_paused_and_never_twice_at_once() {
    let mut app = app();
    assert_eq!(app.start(), vec![Command::Refresh]);
    assert!(
        app.on_tick(NOW + 10.0).is_empty(),
        "one refresh in flight at a time"
    );
    // The reply arrives at NOW + 10; the next refresh is due 3 s later.
    app.on_reply(Reply::Status(Ok(status(Vec::new(), Phase::Idle))));
    assert!(app.on_tick(NOW + 11.0).is_empty());
    assert_eq!(app.on_tick(NOW + 13.5), vec![Command::Refresh]);
    app.on_reply(Reply::Status(Ok(status(Vec::new(), Phase::Idle))));
    app.on_key(key('p'));
    assert!(app.on_tick(NOW + 60.0).is_empty(), "paused");
}

#[test]
fn tables_page_through_the_rows() {
    let mut api = FakeApi::new();
    let mut app = app();
    let start = app.start();
    api.settle(&mut app, start);
    api.keys(&mut app, &[key('3')]);
    assert_eq!(app.table.rows.len(), 200);
    assert!(render(&app, 100, 30).contains("Objects (rows 1–200 of 450"));
    api.keys(&mut app, &[key('n'), key('n')]);
    assert_eq!((app.table.offset, app.table.rows.len()), (400, 50));
    assert_eq!(app.table.rows[0][0].to_string(), "photos/0400.jpg");
    api.keys(&mut app, &[key('n')]);
    assert_eq!(app.table.offset, 400, "no page after the last");
    api.keys(&mut app, &[key('b')]);
    assert_eq!(app.table.offset, 200);
    assert!(api
        .log
        .contains(&Command::LoadTable(TableKind::Objects, 200)));
}

/// Where `text` is drawn: (column, row) of its first character.
fn locate(app: &App, w: u16, h: u16, text: &str) -> (u16, u16) {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, app)).unwrap();
    let buffer = t.backend().buffer().clone();
    for y in 0..h {
        let line: String = (0..w)
            .map(|x| buffer[(x, y)].symbol().chars().next().unwrap_or(' '))
            .collect();
        if let Some(byte) = line.find(text) {
            return (line[..byte].chars().count() as u16, y);
        }
    }
    panic!("{text:?} is not on screen");
}

#[test]
fn clicks_on_what_is_drawn_do_what_the_keys_do() {
    let area = ratatui::layout::Rect::new(0, 0, 160, 48);
    let mut app = with_status(status(ten_workers()[..4].to_vec(), Phase::Idle));
    let (x, y) = locate(&app, 160, 48, "[ + grow ]");
    assert_eq!(app.on_click(x + 2, y, area), vec![Command::Grow]);
    let (x, y) = locate(&app, 160, 48, "[ - shrink ]");
    assert_eq!(app.on_click(x + 5, y, area), vec![Command::Shrink]);

    let (x, y) = locate(&app, 160, 48, "local-3");
    assert!(app.on_click(x, y, area).is_empty());
    assert_eq!(app.dashboard.selected_worker, 2);

    let (x, y) = locate(&app, 160, 48, "photos");
    assert_eq!(
        app.on_click(x, y, area),
        vec![Command::LoadTable(TableKind::Photos, 0)]
    );
    app.on_key(code(KeyCode::Esc));

    // A click on a slider's bar sets the value where it was clicked.
    let (x, y) = locate(&app, 160, 48, "expand ratio");
    app.on_click(x + 60, y, area);
    assert_eq!(app.dashboard.focus, Focus::Autoscaler);
    assert_eq!(app.dashboard.slider, 6);
    let expand = app.dashboard.draft.as_ref().expect("a draft").expand_ratio;
    assert!(expand > 1.5, "{expand}");

    let (x, y) = locate(&app, 160, 48, "[X] delete everything");
    app.on_click(x + 3, y, area);
    assert_eq!(
        app.confirm.as_ref().map(|c| c.action),
        Some(Danger::DeleteEverything)
    );
    assert!(
        app.on_click(0, 0, area).is_empty(),
        "clicks do nothing while confirming"
    );
}

#[test]
fn clicking_a_table_row_selects_it() {
    let area = ratatui::layout::Rect::new(0, 0, 100, 30);
    let mut app = with_status(status(Vec::new(), Phase::Idle));
    app.on_key(key('4'));
    app.on_reply(Reply::Table(TableKind::Users, Ok(users_table())));
    let (x, y) = locate(&app, 100, 30, "corona.virus");
    app.on_click(x, y, area);
    assert_eq!(app.table.selected, 3);
}
