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
