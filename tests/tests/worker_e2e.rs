//! The built `gallery-server` binary over real HTTP: the load generators' API exactly as
//! curl sends it, the browser flow with cookies, graceful stop, and a restart that keeps
//! every committed photo.
use std::time::Duration;

use gallery_tests::{fresh_database, testdata, Worker};

use reqwest::multipart::{Form, Part};

const PW: &str = "pass-word-1";

fn credentials(user: &str) -> Form {
    Form::new().text("username", user.to_owned()).text("password", PW)
}

#[tokio::test]
async fn curl_style_api_then_browser_then_restart_keeps_photos() {
    let db = fresh_database("e2e").await;
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder().cookie_store(true).timeout(Duration::from_secs(60)).build().unwrap();

    let mut worker = Worker::spawn(&db, data.path());
    worker.wait_healthy(&http).await;

    let res = http.post(worker.url("/api/register")).multipart(credentials("vera")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "/api/register successful!");

    let photo = std::fs::read(testdata("photo000.jpg")).unwrap();
    let form = credentials("vera").part("file", Part::bytes(photo.clone()).file_name("photo000.jpg").mime_str("image/jpeg").unwrap());
    let res = http.post(worker.url("/api/upload")).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "/api/upload successful!");

    let res = http.post(worker.url("/api/upload")).multipart(credentials("vera")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.text().await.unwrap(), "missing field `file`");

    // Stop gracefully and start again on the same database and data directory.
    let status = worker.terminate().await;
    assert!(status.success(), "graceful shutdown: {status}");
    let mut worker = Worker::spawn(&db, data.path());
    worker.wait_healthy(&http).await;

    // Log in through the page, like a browser, and find the photo in the grid.
    let login = http.get(worker.url("/login")).send().await.unwrap().text().await.unwrap();
    let token = hidden(&login, "csrf");
    let res = http
        .post(worker.url("/login"))
        .form(&[("csrf", token.as_str()), ("username", "vera"), ("password", PW)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "redirected to the grid");
    let grid = res.text().await.unwrap();
    assert!(grid.contains(">1 photo<"), "{grid}");
    let thumb = src_of(&grid);
    let res = http.get(worker.url(&thumb)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");

    let metrics = http.get(worker.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
}

fn hidden(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

fn src_of(html: &str) -> String {
    let at = html.find("<img src=\"").unwrap() + 10;
    html[at..at + html[at..].find('"').unwrap()].replace("&amp;", "&")
}

#[tokio::test]
async fn loadgen_uploads_at_the_requested_rate_and_reports() {
    let db = fresh_database("loadgen").await;
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut worker = Worker::spawn(&db, data.path());
    worker.wait_healthy(&http).await;
    let images = tempfile::tempdir().unwrap();
    for name in ["photo004.jpg", "photo002.jpg"] {
        std::fs::copy(testdata(name), images.path().join(name)).unwrap();
    }
    let report = data.path().join("report.json");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([&worker.url("/api/upload"), "lg", PW, "4", images.path().to_str().unwrap(), "8", "--json"])
        .arg(&report)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Uploaded: 8 files, responses: {'/api/upload successful!': 8}"), "{stdout}");
    assert!(stdout.contains("sent 8 · answered 8 · ok 8 · failed 0"), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!((json["ok"].as_u64(), json["failed"].as_u64()), (Some(8), Some(0)));
    assert!(json["latency_ms"]["p99"].as_u64().unwrap() >= json["latency_ms"]["p50"].as_u64().unwrap());
    let timeline = json["timeline"].as_array().unwrap();
    assert_eq!(timeline.iter().map(|s| s["sent"].as_u64().unwrap()).sum::<u64>(), 8);
    // Open loop at 4/s: 8 uploads are sent within about two seconds.
    assert!(timeline.iter().filter(|s| s["sent"].as_u64().unwrap() > 0).all(|s| s["second"].as_u64().unwrap() <= 2), "{timeline:?}");

    // An unreachable server: every upload is a connection error, and the exit code says so.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["http://127.0.0.1:9/api/upload", "lg", PW, "4", images.path().to_str().unwrap(), "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
}

#[tokio::test]
async fn a_database_restart_loses_no_committed_photo_and_the_worker_recovers() {
    let mut db = gallery_tests::PrivateMariaDb::start().await;
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let mut worker = Worker::spawn(&db.url(), data.path());
    worker.wait_healthy(&http).await;
    let upload = |name: &'static str| {
        let photo = std::fs::read(testdata(name)).unwrap();
        let form = credentials("wes").part("file", Part::bytes(photo).file_name(name));
        http.post(worker.url("/api/upload")).multipart(form).send()
    };
    http.post(worker.url("/api/register")).multipart(credentials("wes")).send().await.unwrap();
    assert_eq!(upload("photo004.jpg").await.unwrap().text().await.unwrap(), "/api/upload successful!");
    let objects = data.path().join("objects");
    let count_objects = || walk(&objects).len();
    assert_eq!(count_objects(), 3);

    db.stop().await;
    let res = http.get(worker.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.text().await.unwrap().contains("database unavailable"));
    let res = upload("photo002.jpg").await.unwrap();
    assert!(res.status().is_server_error(), "{}", res.status());
    assert_eq!(count_objects(), 3, "a refused upload leaves nothing behind");

    db.restart().await;
    let url = worker.url("/healthz");
    gallery_tests::wait_until("the worker to see the database again", Duration::from_secs(60), || {
        let req = http.get(&url).send();
        async move { req.await.ok().filter(|r| r.status() == 200).map(|_| ()) }
    })
    .await;
    assert_eq!(upload("photo002.jpg").await.unwrap().text().await.unwrap(), "/api/upload successful!");
    // Both photos are there, the one committed before the restart included.
    let mut conn = mysql_async::Conn::from_url(db.url()).await.unwrap();
    use mysql_async::prelude::Queryable;
    let names: Vec<String> = conn.query("SELECT file_name FROM photos ORDER BY created_at").await.unwrap();
    assert_eq!(names, vec!["photo004.jpg", "photo002.jpg"]);
    assert_eq!(count_objects(), 6);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == ".tmp") {
            continue;
        }
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
