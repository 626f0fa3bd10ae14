//! The control plane end to end: real `manager-tui serve`, real workers, real MariaDB.
//! Operator login rules; every control call refused without a token; the pool grows under
//! upload load and shrinks after it with no failed upload; a SIGKILLed worker is replaced
//! and only requests inside it may fail; a restart keeps policy, history and events.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::api::WorkerState;
use gallery_tests::{fresh_database, testdata, wait_until, ControlPlane};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;

const OPERATOR: &str = "ops@example.com";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Small windows so a test sees grow, cooldown and shrink within a minute or two.
const FAST_POLICY: &str = r#"
operators = ["ops@example.com"]
health_interval_secs = 0.5
sample_interval_secs = 1.0
otp_validity_secs = 3
otp_max_requests = 6
totals_max_age_secs = 0
[policy]
grow_cpu = 0.45
shrink_cpu = 0.15
expand_ratio = 1.5
shrink_ratio = 0.5
min_workers = 1
max_workers = 3
resize_timeout_secs = 60
cooldown_secs = 3
scale_in_window_secs = 4
grow_window_secs = 3
tolerance = 0.0
max_sample_age_secs = 5
"#;

#[tokio::test]
async fn operator_login_rules_and_token_required() {
    let db = fresh_database("otp").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cp = ControlPlane::spawn(&db, dir.path(), FAST_POLICY);
    let http = http();
    cp.wait_api(&http).await;

    // Every call but /auth/* needs a token.
    for (method, path) in [
        ("GET", "/status"),
        ("POST", "/pool/grow"),
        ("POST", "/pool/shrink"),
        ("GET", "/autoscaler"),
        ("PUT", "/autoscaler"),
        ("POST", "/autoscaler/start"),
        ("POST", "/autoscaler/stop"),
        ("POST", "/api-keys"),
        ("GET", "/api-keys"),
        ("DELETE", "/api-keys/0123456789abcdef"),
        ("POST", "/auth/logout"),
        ("POST", "/stop"),
    ] {
        let res = http
            .request(method.parse().unwrap(), cp.api(path))
            .bearer_auth("made-up")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let res = http
            .request(method.parse().unwrap(), cp.api(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a token"
        );
    }
    let mut requests = 0;

    // An address not on the allow-list gets the same reply, and no mail.
    let (status, challenge, code) = cp.request_code(&http, "intruder@example.com").await;
    requests += 1;
    assert_eq!(status, StatusCode::OK);
    assert!(challenge.is_some() && code.is_none());

    // A right code works once, only for its challenge.
    let (_, c1, code1) = cp.request_code(&http, OPERATOR).await;
    let (_, c2, _code2) = cp.request_code(&http, OPERATOR).await;
    requests += 2;
    let verify = |challenge: &str, code: &str| {
        http.post(cp.api("/auth/verify"))
            .json(&serde_json::json!({"challenge": challenge, "code": code}))
            .send()
    };
    let code1 = code1.expect("the operator got a mail");
    assert_eq!(
        verify(c2.as_deref().unwrap(), &code1)
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED,
        "other challenge"
    );
    let res = verify(c1.as_deref().unwrap(), &code1).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let token = res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        verify(c1.as_deref().unwrap(), &code1)
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED,
        "used twice"
    );
    let res = http
        .get(cp.api("/status"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // One wrong code kills the challenge: the right one no longer works.
    let (_, c3, code3) = cp.request_code(&http, OPERATOR).await;
    requests += 1;
    let code3 = code3.unwrap();
    let wrong = if code3 == "000000" {
        "000001"
    } else {
        "000000"
    };
    assert_eq!(
        verify(c3.as_deref().unwrap(), wrong)
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        verify(c3.as_deref().unwrap(), &code3)
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // A code is refused once its validity (3 s here) has passed.
    let (_, c4, code4) = cp.request_code(&http, OPERATOR).await;
    requests += 1;
    let issued = std::time::Instant::now();
    wait_until("the code to expire", Duration::from_secs(10), || {
        let expired = issued.elapsed() > Duration::from_millis(3200);
        async move { expired.then_some(()) }
    })
    .await;
    assert_eq!(
        verify(c4.as_deref().unwrap(), code4.as_deref().unwrap())
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // An API key for scripts works as a bearer token.
    let res = http
        .post(cp.api("/api-keys"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    let key = res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        http.get(cp.api("/status"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // Keys are listed without the key, and a revoked one stops working at once.
    let leaked = cp
        .make_api_key(&http, &token, serde_json::json!({"name": "leaked"}))
        .await;
    let keys: Vec<common::api::ApiKeyRow> = cp.get_json(&http, &key, "/api-keys").await;
    let names: Vec<(&str, &str)> = keys
        .iter()
        .map(|k| (k.name.as_str(), k.email.as_str()))
        .collect();
    assert_eq!(names, vec![("ci", OPERATOR), ("leaked", OPERATOR)]);
    let listing = serde_json::to_string(&keys).unwrap();
    assert!(
        !listing.contains(&leaked[3..]) && !listing.contains(&key[3..]),
        "a listing never shows a key: {listing}"
    );
    let revoke = |id: String| {
        http.delete(cp.api(&format!("/api-keys/{id}")))
            .bearer_auth(&key)
            .send()
    };
    assert_eq!(
        revoke(keys[1].id.clone()).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        http.get(cp.api("/status"))
            .bearer_auth(&leaked)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        http.get(cp.api("/status"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "other keys still work"
    );
    let again = revoke(keys[1].id.clone()).await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert!(again.text().await.unwrap().contains("no API key"));
    // Logging out ends the token the call is made with (a session's, or here a key's), only it.
    let res = http
        .post(cp.api("/api-keys"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "one-off"}))
        .send()
        .await
        .unwrap();
    let one_off = res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        http.post(cp.api("/auth/logout"))
            .bearer_auth(&one_off)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        http.get(cp.api("/status"))
            .bearer_auth(&one_off)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        http.get(cp.api("/status"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // `manager-tui --once` for scripts: text, JSON, and one-line failures.
    let once = |args: &[&str], token: Option<&str>| {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new(gallery_tests::env("GALLERY_MANAGER_BIN"));
        cmd.args(args)
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path())
            .env_remove("GALLERY_TOKEN");
        if let Some(t) = token {
            cmd.env("GALLERY_TOKEN", t);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let api = cp.api("");
    let (ok, text, _) = once(&["--once", "--api", &api], Some(&key));
    assert!(
        ok && text.contains("pool: 1 desired") && text.contains("autoscaler: on"),
        "{text}"
    );
    let (ok, json, _) = once(&["--once", "--json", "--api", &api], Some(&key));
    assert!(ok);
    let parsed: common::api::Status = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed.pool.desired, 1);
    for (args, token, needle) in [
        (
            vec!["--once", "--api", api.as_str()],
            None,
            "no operator token",
        ),
        (
            vec!["--once", "--api", api.as_str()],
            Some("forged"),
            "expired",
        ),
        (
            vec!["--once", "--api", "http://127.0.0.1:9"],
            Some(key.as_str()),
            "cannot reach the control plane",
        ),
    ] {
        let (ok, _, err) = once(&args, token);
        assert!(!ok, "{args:?} must fail");
        assert!(
            err.contains(needle) && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
    }

    // Too many code requests from one client in the window: 429.
    assert!(requests < 6);
    for _ in requests..6 {
        assert_eq!(
            cp.request_code(&http, "someone@example.com").await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        cp.request_code(&http, "someone@example.com").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A client cannot get round the limit by claiming another address in a header.
    let res = http
        .post(cp.api("/auth/otp"))
        .header("X-Real-IP", "203.0.113.9")
        .json(&serde_json::json!({ "email": "else@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_removed_operator_loses_access_and_api_keys_expire() {
    let db = fresh_database("operators").await;
    let dir = tempfile::tempdir().unwrap();
    let both = FAST_POLICY.replace(
        r#"operators = ["ops@example.com"]"#,
        r#"operators = ["ops@example.com", "leaver@example.com"]"#,
    );
    let http = http();
    let mut cp = ControlPlane::spawn(&db, dir.path(), &both);
    cp.wait_api(&http).await;
    let leaver = cp.login(&http, "leaver@example.com").await;
    let key = |token: String, body: serde_json::Value| {
        http.post(cp.api("/api-keys"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let res = key(leaver.clone(), serde_json::json!({"name": "leaver's"}))
        .await
        .unwrap();
    let reply: serde_json::Value = res.json().await.unwrap();
    let leavers_key = reply["token"].as_str().unwrap().to_owned();
    let expires = reply["expires_at"].as_i64().expect("keys expire");
    let in_days = (expires as f64 - common::clock::now()) / 86400.0;
    assert!(
        (89.9..=90.1).contains(&in_days),
        "90 days by default: {in_days}"
    );
    let res = key(
        leaver.clone(),
        serde_json::json!({"name": "forever", "expires_in_days": 4000}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let keys: Vec<common::api::ApiKeyRow> = cp.get_json(&http, &leaver, "/api-keys").await;
    let listed = keys[0].expires_at.expect("the list shows the expiry");
    assert!((listed - expires).abs() <= 2, "{listed} vs {expires}");
    cp.terminate().await;

    // The leaver is taken off the allow-list: their session and key stop working.
    let mut cp = ControlPlane::spawn(&db, dir.path(), FAST_POLICY);
    cp.wait_api(&http).await;
    for token in [&leaver, &leavers_key] {
        let res = cp.get(&http, token, "/status").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(res.text().await.unwrap().contains("no longer allowed"));
    }
    let ops = cp.login(&http, OPERATOR).await;
    let short = cp
        .make_api_key(
            &http,
            &ops,
            serde_json::json!({"name": "short", "expires_in_days": 1}),
        )
        .await;
    // A day later (moved on in the database, where expiry is decided):
    let mut conn = common::db::Db::connect(&db)
        .await
        .unwrap()
        .conn()
        .await
        .unwrap();
    use mysql_async::prelude::Queryable;
    conn.query_drop(
        "UPDATE operator_tokens SET expires_at = NOW(3) - INTERVAL 1 SECOND WHERE kind = 'api_key'",
    )
    .await
    .unwrap();
    let res = cp.get(&http, &short, "/status").await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "an expired key is refused"
    );
    cp.terminate().await;
}

/// A machine without the memory a worker may need starts none, however many the policy
/// wants, and says why.
#[tokio::test]
async fn no_worker_is_started_where_the_memory_for_one_is_missing() {
    let db = fresh_database("no_room").await;
    let dir = tempfile::tempdir().unwrap();
    let http = http();
    // More than any machine has.
    let toml = format!("local_worker_memory_mib = 1000000000\n{FAST_POLICY}");
    let mut cp = ControlPlane::spawn(&db, dir.path(), &toml);
    cp.wait_api(&http).await;
    let token = cp.login(&http, OPERATOR).await;
    let problem = wait_until(
        "the launch reported failing",
        Duration::from_secs(30),
        || async { cp.status(&http, &token).await.launch_problem },
    )
    .await;
    assert!(
        problem.error.contains("no more workers fit here"),
        "{problem:?}"
    );
    assert!(cp.status(&http, &token).await.workers.is_empty());
    cp.terminate().await;
}

/// The demand policy's reading, once the control plane has made one.
async fn demand_estimate(cp: &ControlPlane, http: &reqwest::Client) -> common::api::Demand {
    let token = cp.login(http, OPERATOR).await;
    wait_until("a demand estimate", Duration::from_secs(30), || async {
        cp.status(http, &token).await.demand
    })
    .await
}

/// The rate per worker the demand policy measured outlives a restart of the control plane:
/// one restarted in a flash crowd sizes the pool on it, not on the assumed rate.
#[tokio::test]
async fn the_measured_rate_per_worker_outlives_a_restart() {
    let db = fresh_database("learned_rate").await;
    let dir = tempfile::tempdir().unwrap();
    let http = http();
    // The demand policy's first reading of a control plane started afresh on `db`.
    let first_reading = || async {
        let mut cp = ControlPlane::spawn(&db, dir.path(), FAST_POLICY);
        cp.wait_api(&http).await;
        let demand = demand_estimate(&cp, &http).await;
        cp.terminate().await;
        demand
    };
    let first = first_reading().await;
    assert_eq!(
        first.rate_source,
        common::autoscale::demand::RateSource::Assumed
    );

    // As a control plane that had measured 3.25 photos/s per worker left it.
    let mut conn = common::db::Db::connect(&db)
        .await
        .unwrap()
        .conn()
        .await
        .unwrap();
    use mysql_async::prelude::Queryable;
    conn.query_drop("UPDATE manager_settings SET learned_rate = 3.25")
        .await
        .unwrap();
    let demand = first_reading().await;
    assert_eq!(
        demand.rate_source,
        common::autoscale::demand::RateSource::Learned
    );
    assert!((demand.rate_per_worker - 3.25).abs() < 1e-9, "{demand:?}");
}

async fn upload(http: &reqwest::Client, url: &str, photo: &[u8]) -> Result<(), String> {
    upload_by(http, url, "loader", photo).await
}

async fn upload_by(
    http: &reqwest::Client,
    url: &str,
    user: &str,
    photo: &[u8],
) -> Result<(), String> {
    let form = Form::new()
        .text("username", user.to_string())
        .text("password", "pass-word-1")
        .part("file", Part::bytes(photo.to_vec()).file_name("p.jpg"));
    match http.post(url).multipart(form).send().await {
        Ok(res) if res.status() == 200 => {
            let body = res.text().await.unwrap_or_default();
            if body == "/api/upload successful!" {
                Ok(())
            } else {
                Err(body)
            }
        }
        Ok(res) => Err(format!(
            "{} {}",
            res.status(),
            res.text().await.unwrap_or_default()
        )),
        Err(e) => Err(format!("connection: {e}")),
    }
}

#[tokio::test]
async fn pool_scales_with_load_survives_a_killed_worker_and_keeps_state_across_restarts() {
    let db = fresh_database("scale").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cp = ControlPlane::spawn(&db, dir.path(), FAST_POLICY);
    let http = http();
    cp.wait_api(&http).await;
    let token = cp.login(&http, OPERATOR).await;
    wait_until(
        "one healthy worker and its warm standby",
        Duration::from_secs(60),
        || {
            let s = cp.status(&http, &token);
            async move {
                let s = s.await;
                (s.pool.healthy == 1 && s.pool.standby_ready == 1).then_some(())
            }
        },
    )
    .await;

    let res = http
        .post(cp.lb("/api/register"))
        .multipart(
            Form::new()
                .text("username", "loader")
                .text("password", "pass-word-1"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "/api/register successful!");

    // Three clients upload through the balancer, each twice a second: accepting is fast, so
    // the pool grows on the processing the backlog needs, and the backlog stays small enough
    // to drain in seconds once the load stops.
    const CLIENTS: usize = 3;
    let photo = Arc::new(std::fs::read(testdata("photo000.jpg")).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let failures: Arc<Mutex<Vec<(std::time::Instant, String)>>> = Arc::default();
    let ok = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut loaders = Vec::new();
    for _ in 0..CLIENTS {
        let (http, url, photo, stop, failures, ok) = (
            http.clone(),
            cp.lb("/api/upload"),
            photo.clone(),
            stop.clone(),
            failures.clone(),
            ok.clone(),
        );
        loaders.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match upload(&http, &url, &photo).await {
                    Ok(()) => ok.fetch_add(1, Ordering::SeqCst),
                    Err(e) => {
                        failures
                            .lock()
                            .unwrap()
                            .push((std::time::Instant::now(), e));
                        0
                    }
                };
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }));
    }

    let grown = wait_until(
        "the pool to grow under load",
        Duration::from_secs(120),
        || {
            let s = cp.status(&http, &token);
            async move {
                let s = s.await;
                (s.pool.healthy >= 2).then_some(s)
            }
        },
    )
    .await;
    assert!(
        grown
            .events
            .iter()
            .any(|e| e.reason.starts_with("autoscaler:") && e.to > e.from),
        "{:?}",
        grown.events
    );
    // The second worker was the warm standby, started before the pool grew: promoted, not
    // launched.
    let grew_at = grown
        .events
        .iter()
        .filter(|e| e.to > e.from)
        .map(|e| e.at)
        .min()
        .unwrap() as f64;
    assert!(
        grown
            .workers
            .iter()
            .filter(|w| w.state == WorkerState::Healthy)
            .all(|w| w.started_at < grew_at + 1.0),
        "the standby serves: {:?}",
        grown
            .workers
            .iter()
            .map(|w| (&w.id, w.state, w.started_at))
            .collect::<Vec<_>>()
    );
    assert!(
        failures.lock().unwrap().is_empty(),
        "no upload fails because of a resize: {:?}",
        failures.lock().unwrap()
    );
    let busy = grown
        .workers
        .iter()
        .find(|w| w.request_series.iter().any(|p| p.1 > 0.0))
        .expect("request rates sampled");
    assert!(
        !busy.cpu_series.is_empty()
            && !busy.cpu_per_minute.is_empty()
            && !busy.requests_per_minute.is_empty()
    );

    // Kill one healthy worker outright; at most the requests inside it may fail.
    let victim = grown
        .workers
        .iter()
        .find(|w| w.state == WorkerState::Healthy)
        .unwrap()
        .clone();
    unsafe { libc::kill(victim.pid.unwrap() as i32, libc::SIGKILL) };
    let killed_at = std::time::Instant::now();
    wait_until(
        "the killed worker to be replaced",
        Duration::from_secs(90),
        || {
            let s = cp.status(&http, &token);
            let victim = victim.id.clone();
            async move {
                let s = s.await;
                (s.pool.healthy >= 2 && s.workers.iter().all(|w| w.id != victim)).then_some(())
            }
        },
    )
    .await;
    {
        let failures = failures.lock().unwrap();
        assert!(
            failures.len() <= CLIENTS,
            "only requests inside the killed worker may fail: {failures:?}"
        );
        assert!(
            failures.iter().all(|(t, _)| *t >= killed_at),
            "{failures:?}"
        );
    }
    let failed_by_kill = failures.lock().unwrap().len();

    stop.store(true, Ordering::SeqCst);
    for l in loaders {
        l.await.unwrap();
    }
    assert!(ok.load(Ordering::SeqCst) > 0);
    // The balancer counted every upload, and as not accepted only those the clients saw fail.
    let door = cp.status(&http, &token).await.front_door.unwrap();
    assert_eq!(
        door.uploads - door.refused_uploads,
        ok.load(Ordering::SeqCst) as u64,
        "{door:?}"
    );
    assert!(door.refused_uploads as usize <= failed_by_kill, "{door:?}");

    // Every accepted upload is processed, then the pool shrinks.
    wait_until(
        "the backlog to drain after the load",
        Duration::from_secs(240),
        || {
            let s = cp.status(&http, &token);
            async move {
                s.await
                    .backlog
                    .filter(|b| b.waiting() == 0 && b.failed == 0)
                    .map(|_| ())
            }
        },
    )
    .await;
    let shrunk = wait_until(
        "the pool to shrink back after the load",
        Duration::from_secs(120),
        || {
            let s = cp.status(&http, &token);
            async move {
                let s = s.await;
                let serving = s.workers.iter().filter(|w| !w.state.is_standby()).count();
                (s.pool.desired == 1 && serving == 1 && s.pool.healthy == 1).then_some(s)
            }
        },
    )
    .await;
    assert!(
        shrunk
            .events
            .iter()
            .any(|e| e.reason.starts_with("autoscaler:") && e.to < e.from),
        "{:?}",
        shrunk.events
    );
    assert!(!shrunk.history.is_empty());
    assert_eq!(
        failures.lock().unwrap().len(),
        failed_by_kill,
        "no failures outside the kill"
    );

    // The operator's policy and the history survive a restart of the control plane.
    let mut policy = shrunk.policy.clone();
    policy.max_workers = 2;
    policy.cooldown_secs = 7.0;
    let res = http
        .put(cp.api("/autoscaler"))
        .bearer_auth(&token)
        .json(&policy)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = http
        .post(cp.api("/autoscaler/stop"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let events_before = shrunk.events.len();
    let (api_port, lb_port) = (cp.api_port, cp.lb_port);
    cp.terminate().await;

    let mut cp = ControlPlane::spawn_on(&db, dir.path(), FAST_POLICY, api_port, lb_port);
    cp.wait_api(&http).await;
    let s = wait_until("the restarted pool", Duration::from_secs(60), || {
        let s = cp.status(&http, &token);
        async move {
            let s = s.await;
            (s.pool.healthy == 1).then_some(s)
        }
    })
    .await;
    assert_eq!(s.policy, policy, "policy kept");
    assert!(!s.autoscaler.enabled, "stopped autoscaler stays stopped");
    assert!(s.events.len() >= events_before, "events kept");
    assert!(
        s.workers.iter().filter(|w| !w.state.is_standby()).count() as u32 <= policy.max_workers
    );
    // The warm standby is kept beside the pool, out of its size.
    let standby = wait_until("the warm standby", Duration::from_secs(60), || {
        let s = cp.status(&http, &token);
        async move {
            s.await
                .workers
                .into_iter()
                .find(|w| w.state == WorkerState::Standby)
        }
    })
    .await;
    assert_eq!(s.policy.standby_workers, 1);
    assert!(s.pool.desired == 1 && standby.in_flight == 0);
    // The gallery is still served through the balancer, with the photos uploaded before.
    let res = http.get(cp.lb("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// A control plane on a fresh database with a healthy worker, and an operator logged in:
/// (database URL, data directory, control plane, client, token).
async fn serving(
    tag: &str,
) -> (
    String,
    tempfile::TempDir,
    ControlPlane,
    reqwest::Client,
    String,
) {
    let db = fresh_database(tag).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cp = ControlPlane::spawn(&db, dir.path(), FAST_POLICY);
    let http = http();
    cp.wait_api(&http).await;
    let token = cp.login(&http, OPERATOR).await;
    wait_until("a healthy worker", Duration::from_secs(60), || {
        let s = cp.status(&http, &token);
        async move { (s.await.pool.healthy >= 1).then_some(()) }
    })
    .await;
    (db, dir, cp, http, token)
}

#[tokio::test]
async fn tables_usage_and_deletes() {
    let (_db, dir, cp, http, token) = serving("tables").await;
    let photo = std::fs::read(testdata("photo004.jpg")).unwrap();
    for (user, n) in [("ann", 1), ("ben", 2)] {
        let form = Form::new()
            .text("username", user)
            .text("password", "pass-word-1");
        assert_eq!(
            http.post(cp.lb("/api/register"))
                .multipart(form)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        for _ in 0..n {
            let form = Form::new()
                .text("username", user)
                .text("password", "pass-word-1")
                .part("file", Part::bytes(photo.clone()).file_name("p.jpg"));
            let res = http
                .post(cp.lb("/api/upload"))
                .multipart(form)
                .send()
                .await
                .unwrap();
            assert_eq!(res.text().await.unwrap(), "/api/upload successful!");
        }
    }
    let get = |path: &str| http.get(cp.api(path)).bearer_auth(&token).send();
    // Accepted uploads are processed from the backlog: three photos, three files each.
    gallery_tests::wait_until(
        "the uploads to be processed",
        Duration::from_secs(60),
        || async {
            let objects: serde_json::Value = get("/objects").await.ok()?.json().await.ok()?;
            (objects["total"] == 9).then_some(())
        },
    )
    .await;
    let accounts: serde_json::Value = get("/accounts").await.unwrap().json().await.unwrap();
    assert_eq!(accounts["total"], 2);
    let ann = accounts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["username"] == "ann")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let photos: serde_json::Value = get("/photos?limit=2").await.unwrap().json().await.unwrap();
    assert_eq!(
        (
            photos["total"].as_u64(),
            photos["items"].as_array().unwrap().len()
        ),
        (Some(3), 2)
    );
    assert!(
        photos["items"][0]["detector"]
            .as_str()
            .is_some_and(|d| d.starts_with("text (PP-OCRv4 DBNet) on ")),
        "{photos}"
    );
    assert_eq!(photos["items"][0]["state"], "ready", "{photos}");
    let objects: serde_json::Value = get("/objects?prefix=photos/")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(objects["total"], 3);
    assert!(objects["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["size"] == photo.len() as u64));

    let users: Vec<common::api::UserUsage> = get("/users").await.unwrap().json().await.unwrap();
    let ben = users.iter().find(|u| u.username == "ben").unwrap();
    assert_eq!(
        (ben.photos, ben.files(), ben.originals.bytes),
        (2, 6, 2 * photo.len() as u64)
    );
    assert!(ben.thumbnails.bytes > 0 && ben.annotated.bytes > ben.thumbnails.bytes);
    let status = cp.status(&http, &token).await;
    assert_eq!(
        status.totals.map(|t| (t.accounts, t.photos, t.objects)),
        Some((2, 3, 9))
    );

    let del = |path: String| http.delete(cp.api(&path)).bearer_auth(&token).send();
    let reply: common::api::DeleteReply = del(format!("/users/{ann}/photos"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((reply.photos, reply.objects), (1, 3));
    let ann_usage: common::api::UserUsage = get(&format!("/users/{ann}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((ann_usage.photos, ann_usage.files()), (0, 0));
    assert_eq!(
        get("/users/999999").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    // Objects without a row: one a failed upload left an hour ago, one of an upload in flight
    // (its objects are written, its row not yet). "Delete all photos" sweeps the first and
    // must leave the second, or the row inserted a moment later would point at nothing.
    let objects_dir = dir.path().join("objects/photos");
    let leftover = objects_dir.join("0190aaaaaaaaaaaaaaaaaaaaaaaaaaaa.jpg");
    let in_flight = objects_dir.join("0190bbbbbbbbbbbbbbbbbbbbbbbbbbbb.jpg");
    std::fs::write(&leftover, b"left by a failed upload").unwrap();
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&leftover)
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    std::fs::write(&in_flight, b"being uploaded").unwrap();

    let reply: common::api::DeleteReply =
        del("/photos".into()).await.unwrap().json().await.unwrap();
    assert_eq!((reply.photos, reply.objects, reply.accounts), (2, 6 + 1, 0));
    assert!(!leftover.exists(), "the failed upload's object is swept");
    assert!(
        in_flight.exists(),
        "the object of an upload in flight is left alone"
    );
    let status = cp.status(&http, &token).await;
    assert_eq!(
        status.totals.map(|t| (t.accounts, t.photos, t.objects)),
        Some((2, 0, 1))
    );
    std::fs::remove_file(&in_flight).unwrap();

    let reply: common::api::DeleteReply = del("/everything".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply.accounts, 2);
    let accounts: serde_json::Value = get("/accounts").await.unwrap().json().await.unwrap();
    assert_eq!(accounts["total"], 0);
    // The deleted user can no longer upload.
    let form = Form::new()
        .text("username", "ben")
        .text("password", "pass-word-1")
        .part("file", Part::bytes(photo).file_name("p.jpg"));
    assert_eq!(
        http.post(cp.lb("/api/upload"))
            .multipart(form)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

/// "Delete everything" while an upload is committing its row: the upload's transaction holds
/// its owner's account row (as a photo insert's foreign-key check does) when the delete
/// starts, and inserts the photo once the delete waits. The delete must wait for it and then
/// take the new photo along, not fail because a photo still points at an account.
#[tokio::test]
async fn delete_everything_takes_along_an_upload_that_commits_under_it() {
    use mysql_async::prelude::Queryable;

    let (db, _dir, cp, http, token) = serving("race").await;
    let form = Form::new()
        .text("username", "rita")
        .text("password", "pass-word-1");
    assert_eq!(
        http.post(cp.lb("/api/register"))
            .multipart(form)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // The upload: its owner's row held in share mode, the photo not inserted yet.
    let mut upload = mysql_async::Conn::from_url(&db).await.unwrap();
    let mut tx = upload
        .start_transaction(mysql_async::TxOpts::default())
        .await
        .unwrap();
    let owner: u64 = tx
        .query_first("SELECT id FROM accounts WHERE username = 'rita' LOCK IN SHARE MODE")
        .await
        .unwrap()
        .unwrap();

    let delete = tokio::spawn({
        let (http, url, token) = (http.clone(), cp.api("/everything"), token.clone());
        async move {
            let res = http.delete(url).bearer_auth(token).send().await.unwrap();
            (res.status(), res.text().await.unwrap())
        }
    });
    // Until the delete waits on the account row.
    let database = db.rsplit_once('/').unwrap().1.to_owned();
    let mut watch = mysql_async::Conn::from_url(&db).await.unwrap();
    // A statement on the accounts still running while the upload holds one is waiting for it.
    let waiting = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ? AND COMMAND = 'Query'
                   AND (INFO LIKE 'SELECT id FROM accounts FOR UPDATE%' OR INFO LIKE 'DELETE FROM accounts%')";
    for _ in 0..200 {
        let n: u64 = watch
            .exec_first(waiting, (&database,))
            .await
            .unwrap()
            .unwrap_or(0);
        if n > 0 {
            break;
        }
        assert!(
            !delete.is_finished(),
            "the delete should wait for the upload's transaction"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let n: u64 = watch
        .exec_first(waiting, (&database,))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 1, "the delete waits on the account the upload holds");

    tx.exec_drop(
        "INSERT INTO photos (id, owner_id, file_name, content_type, ext, width, height, bytes, boxes)
         VALUES ('0190cccccccccccccccccccccccccccc', ?, 'late.jpg', 'image/jpeg', 'jpg', 10, 10, 100, 0)",
        (owner,),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let (status, body) = delete.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let reply: common::api::DeleteReply = serde_json::from_str(&body).unwrap();
    assert_eq!((reply.accounts, reply.photos), (1, 1), "{body}");
    let left: (u64, u64) = watch
        .query_first("SELECT (SELECT COUNT(*) FROM accounts), (SELECT COUNT(*) FROM photos)")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(left, (0, 0));
}

#[tokio::test]
async fn photo_links_are_answered_by_the_balancer_and_die_with_the_photo() {
    let (_db, _dir, cp, _http, _token) = serving("media").await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let photo = std::fs::read(testdata("photo004.jpg")).unwrap();
    let form = Form::new()
        .text("username", "mia")
        .text("password", "pass-word-1");
    let res = browser
        .post(cp.lb("/api/register"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    upload_by(&browser, &cp.lb("/api/upload"), "mia", &photo)
        .await
        .unwrap();
    let res = gallery_tests::browser_login(&browser, |p| cp.lb(p), "mia", "pass-word-1").await;
    assert_eq!(res.status(), 200, "logged in and sent to the gallery");
    let link = wait_until(
        "the thumbnail on the gallery page",
        Duration::from_secs(60),
        || async {
            let page = browser
                .get(cp.lb("/"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let at = page.find("/media/thumbnails/")?;
            Some(page[at..at + page[at..].find('"')?].replace("&amp;", "&"))
        },
    )
    .await;
    let res = browser.get(cp.lb(&link)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    // Rocket names itself in `Server`; an answer without it came from the balancer alone.
    assert!(res.headers().get("server").is_none(), "{:?}", res.headers());
    let thumbnail = res.bytes().await.unwrap();
    assert_eq!(&thumbnail[..2], b"\xFF\xD8", "a JPEG");
    let part = browser
        .get(cp.lb(&link))
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(&part.bytes().await.unwrap()[..], &thumbnail[..10]);
    let forged = link.replace("sig=", "sig=ab");
    assert_eq!(
        browser.get(cp.lb(&forged)).send().await.unwrap().status(),
        403
    );
    // Deleted, the photo's link finds nothing.
    let id = link
        .trim_start_matches("/media/thumbnails/")
        .split('.')
        .next()
        .unwrap()
        .to_string();
    let page = gallery_tests::page(&browser, &cp.lb(&format!("/photos/{id}"))).await;
    let res = browser
        .post(cp.lb(&format!("/photos/{id}/delete")))
        .form(&[("csrf", gallery_tests::hidden(&page, "csrf"))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        browser.get(cp.lb(&link)).send().await.unwrap().status(),
        404
    );
}
