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
