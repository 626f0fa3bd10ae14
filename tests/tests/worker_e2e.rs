//! The built `gallery-server` binary over real HTTP: the load generators' API exactly as
//! curl sends it, the browser flow with cookies, graceful stop, and a restart that keeps
//! every committed photo.
use std::time::Duration;

use gallery_tests::{fresh_database, testdata, Worker};

use reqwest::multipart::{Form, Part};

const PW: &str = "pass-word-1";

fn credentials(user: &str) -> Form {
    Form::new()
        .text("username", user.to_owned())
        .text("password", PW)
}

async fn register(http: &reqwest::Client, worker: &Worker, user: &str) {
    let res = http
        .post(worker.url("/api/register"))
        .multipart(credentials(user))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "registering {user}");
}

#[tokio::test]
async fn curl_style_api_then_browser_then_restart_keeps_photos() {
    let db = fresh_database("e2e").await;
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    let mut worker = Worker::spawn(&db, data.path());
    worker.wait_healthy(&http).await;

    let res = http
        .post(worker.url("/api/register"))
        .multipart(credentials("vera"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "/api/register successful!");

    let photo = std::fs::read(testdata("photo000.jpg")).unwrap();
    let form = credentials("vera").part(
        "file",
        Part::bytes(photo.clone())
            .file_name("photo000.jpg")
            .mime_str("image/jpeg")
            .unwrap(),
    );
    let res = http
        .post(worker.url("/api/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "/api/upload successful!");

    let res = http
        .post(worker.url("/api/upload"))
        .multipart(credentials("vera"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.text().await.unwrap(), "missing field `file`");

    // Stop gracefully and start again on the same database and data directory.
    let status = worker.terminate().await;
    assert!(status.success(), "graceful shutdown: {status}");
    let mut worker = Worker::spawn(&db, data.path());
    worker.wait_healthy(&http).await;

    // Log in through the page, like a browser, and find the photo in the grid.
    let res = gallery_tests::browser_login(&http, |p| worker.url(p), "vera", PW).await;
    assert_eq!(res.status(), 200, "redirected to the grid");
    let grid = res.text().await.unwrap();
    assert!(grid.contains(">1 photo<"), "{grid}");
    let thumb = src_of(&grid);
    let res = http.get(worker.url(&thumb)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");

    let metrics = http
        .get(worker.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
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
    let out = tokio::process::Command::new(gallery_tests::env("GALLERY_LOADGEN_BIN"))
        .args([
            &worker.url("/api/upload"),
            "lg",
            PW,
            "4",
            images.path().to_str().unwrap(),
            "8",
            "--json",
        ])
        .arg(&report)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Uploaded: 8 files, responses: {'/api/upload successful!': 8}"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sent 8 · answered 8 · ok 8 · failed 0"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        (json["ok"].as_u64(), json["failed"].as_u64()),
        (Some(8), Some(0))
    );
    assert!(
        json["latency_ms"]["p99"].as_u64().unwrap() >= json["latency_ms"]["p50"].as_u64().unwrap()
    );
    let timeline = json["timeline"].as_array().unwrap();
    assert_eq!(
        timeline
            .iter()
            .map(|s| s["sent"].as_u64().unwrap())
            .sum::<u64>(),
        8
    );
    // Open loop at 4/s: 8 uploads are sent within about two seconds.
    assert!(
        timeline
            .iter()
            .filter(|s| s["sent"].as_u64().unwrap() > 0)
            .all(|s| s["second"].as_u64().unwrap() <= 2),
        "{timeline:?}"
    );

    // An unreachable server: every upload is a connection error, and the exit code says so.
    let out = std::process::Command::new(gallery_tests::env("GALLERY_LOADGEN_BIN"))
        .args([
            "http://127.0.0.1:9/api/upload",
            "lg",
            PW,
            "4",
            images.path().to_str().unwrap(),
            "2",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
}

/// A worker on a MariaDB of its own (to stop and restart), with `user` registered.
async fn worker_on_private_database(
    user: &str,
) -> (
    gallery_tests::PrivateMariaDb,
    tempfile::TempDir,
    reqwest::Client,
    Worker,
) {
    let db = gallery_tests::PrivateMariaDb::start().await;
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut worker = Worker::spawn(&db.url(), data.path());
    worker.wait_healthy(&http).await;
    register(&http, &worker, user).await;
    (db, data, http, worker)
}

/// The photos' file names, oldest first; empty while the database does not answer.
async fn file_names(url: &str) -> Vec<String> {
    use mysql_async::prelude::Queryable;
    let Ok(mut conn) = mysql_async::Conn::from_url(url).await else {
        return Vec::new();
    };
    conn.query("SELECT file_name FROM photos ORDER BY created_at")
        .await
        .unwrap_or_default()
}

/// An outage longer than an upload waits for the database (an RDS failover takes a minute or
/// two): uploads from someone the worker has seen are accepted all the same, recorded in the
/// store, and queued, dated when they were accepted, once the database is back.
#[tokio::test]
async fn uploads_during_a_database_outage_are_accepted_and_queued_when_it_is_back() {
    let (mut db, data, http, worker) = worker_on_private_database("ona").await;
    let upload = |name: &'static str| {
        let photo = std::fs::read(testdata(name)).unwrap();
        let form = credentials("ona").part("file", Part::bytes(photo).file_name(name));
        http.post(worker.url("/api/upload")).multipart(form).send()
    };
    assert_eq!(
        upload("photo004.jpg").await.unwrap().text().await.unwrap(),
        "/api/upload successful!"
    );

    db.stop().await;
    let during = std::time::SystemTime::now();
    for name in ["photo002.jpg", "photo003.jpg"] {
        let res = upload(name).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), "/api/upload successful!");
    }
    let pending = data.path().join("objects/pending");
    assert_eq!(walk(&pending).len(), 2, "recorded in the store");
    // Kept down a while longer, as a failover would be.
    tokio::time::sleep(Duration::from_secs(2)).await;
    db.restart().await;

    let names = gallery_tests::wait_until(
        "the recorded uploads queued",
        Duration::from_secs(60),
        || async {
            let names = file_names(&db.url()).await;
            (names.len() == 3).then_some(names)
        },
    )
    .await;
    assert_eq!(names, vec!["photo004.jpg", "photo002.jpg", "photo003.jpg"]);
    use mysql_async::prelude::Queryable;
    let mut conn = mysql_async::Conn::from_url(db.url()).await.unwrap();
    let accepted: Vec<i64> = conn
        .query("SELECT FLOOR(UNIX_TIMESTAMP(created_at)) FROM photos WHERE file_name <> 'photo004.jpg'")
        .await
        .unwrap();
    let outage_began = during
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Accepted within the outage's first seconds; the rows were written at least 12 s later.
    assert!(
        accepted.iter().all(|at| (at - outage_began).abs() <= 11),
        "dated when accepted, not when the database came back: {accepted:?} against {outage_began}"
    );
    let objects = data.path().join("objects");
    gallery_tests::wait_until("all three processed", Duration::from_secs(120), || {
        let found = walk(&objects).len();
        async move { (found == 9).then_some(()) }
    })
    .await;
    assert!(walk(&pending).is_empty(), "no manifest is left");
}

#[tokio::test]
async fn a_database_restart_loses_no_photo_and_an_upload_made_meanwhile_is_held_then_accepted() {
    let (mut db, data, http, worker) = worker_on_private_database("wes").await;
    let upload = |name: &'static str| {
        let photo = std::fs::read(testdata(name)).unwrap();
        let form = credentials("wes").part("file", Part::bytes(photo).file_name(name));
        http.post(worker.url("/api/upload")).multipart(form).send()
    };
    assert_eq!(
        upload("photo004.jpg").await.unwrap().text().await.unwrap(),
        "/api/upload successful!"
    );
    let objects = data.path().join("objects");
    let count_objects = || walk(&objects).len();
    let processed = |n: usize| {
        let objects = objects.clone();
        gallery_tests::wait_until(
            "the photos to be processed",
            Duration::from_secs(60),
            move || {
                let found = walk(&objects).len();
                async move { (found == n).then_some(()) }
            },
        )
    };
    processed(3).await;

    db.stop().await;
    let res = http.get(worker.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.text().await.unwrap().contains("database unavailable"));
    // The worker itself is alive: the balancer keeps it (a shared dependency is not its fault).
    assert_eq!(
        http.get(worker.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Someone the worker has not seen yet cannot be checked without the database: refused,
    // and nothing is left behind.
    let stranger = credentials("zed").part(
        "file",
        Part::bytes(std::fs::read(testdata("photo001.jpg")).unwrap()).file_name("z.jpg"),
    );
    let res = http
        .post(worker.url("/api/upload"))
        .multipart(stranger)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_server_error(), "{}", res.status());
    assert_eq!(count_objects(), 3, "a refused upload leaves nothing behind");
    // An uploader whose credentials were checked a moment ago is held while the database is
    // down, and accepted once it is back (a restart or failover costs time, not the upload).
    let held = tokio::spawn(upload("photo002.jpg"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!held.is_finished(), "the upload waits for the database");
    db.restart().await;
    let reply = held.await.unwrap().unwrap();
    assert_eq!(reply.text().await.unwrap(), "/api/upload successful!");
    // Both photos are there, the one committed before the restart included (the held one
    // inserted at once, or from its manifest if the restart outlasted the wait).
    let names = gallery_tests::wait_until("both rows", Duration::from_secs(60), || async {
        let names = file_names(&db.url()).await;
        (names.len() == 2).then_some(names)
    })
    .await;
    assert_eq!(names, vec!["photo004.jpg", "photo002.jpg"]);
    let url = worker.url("/readyz");
    gallery_tests::wait_until(
        "the worker to see the database again",
        Duration::from_secs(60),
        || {
            let req = http.get(&url).send();
            async move { req.await.ok().filter(|r| r.status() == 200).map(|_| ()) }
        },
    )
    .await;
    processed(6).await;
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

/// The candidates the test YOLO model always outputs (scripts/models/make-test-yolo.py).
fn yolo_candidates() -> (f32, Vec<(f32, f32, f32, f32, usize, f32)>) {
    let model = std::path::PathBuf::from(gallery_tests::env("GALLERY_TEST_YOLO_MODEL"));
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.with_extension("json")).unwrap())
            .unwrap();
    let f = |v: &serde_json::Value| v.as_f64().unwrap() as f32;
    let candidates = spec["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                f(&c[0]),
                f(&c[1]),
                f(&c[2]),
                f(&c[3]),
                c[4].as_u64().unwrap() as usize,
                f(&c[5]),
            )
        })
        .collect();
    (f(&spec["side"]), candidates)
}

#[tokio::test]
async fn a_yolo_model_finds_labelled_objects_which_the_annotated_copy_shows() {
    let model = gallery_tests::env("GALLERY_TEST_YOLO_MODEL");
    let photo_path = testdata("photo001.jpg");
    let photo = std::fs::read(&photo_path).unwrap();
    let original = image::load_from_memory(&photo).unwrap().to_rgb8();
    let (w, h) = original.dimensions();

    // What the model's candidates mean in this photo: letterboxed into the square input,
    // the best per class kept (the second person overlaps the first), the weak car dropped.
    let (side, candidates) = yolo_candidates();
    let scale = (side / w as f32).min(side / h as f32);
    let (pad_x, pad_y) = (
        ((side - (w as f32 * scale).round()) / 2.0).floor(),
        ((side - (h as f32 * scale).round()) / 2.0).floor(),
    );
    let to_image = |(cx, cy, bw, bh): (f32, f32, f32, f32)| {
        let x = |v: f32| ((v - pad_x) / scale).round() as u32;
        let y = |v: f32| ((v - pad_y) / scale).round() as u32;
        (
            x(cx - bw / 2.0),
            y(cy - bh / 2.0),
            x(cx + bw / 2.0),
            y(cy + bh / 2.0),
        )
    };
    let names = [(0, "person"), (16, "dog"), (1, "bicycle")];
    let expected: Vec<(String, (u32, u32, u32, u32))> = [0usize, 2, 4]
        .iter()
        .map(|&i| {
            let (cx, cy, bw, bh, class, _) = candidates[i];
            let name = names.iter().find(|(c, _)| *c == class).unwrap().1;
            (name.to_owned(), to_image((cx, cy, bw, bh)))
        })
        .collect();

    // The same on every runtime.
    let runtimes = [
        ("rten", String::new(), String::new()),
        (
            "ONNX Runtime",
            "GALLERY_ONNXRUNTIME_LIBRARY".to_owned(),
            gallery_tests::env("GALLERY_TEST_ONNXRUNTIME_LIBRARY"),
        ),
        (
            "OpenVINO",
            "GALLERY_OPENVINO_LIBRARY".to_owned(),
            gallery_tests::env("GALLERY_TEST_OPENVINO_LIBRARY"),
        ),
    ];
    for (runtime, variable, library) in &runtimes {
        let mut detect = std::process::Command::new(gallery_tests::env("GALLERY_SERVER_BIN"));
        detect
            .args(["detect", "--json", photo_path.to_str().unwrap()])
            .env("GALLERY_YOLO_MODEL_PATH", &model);
        if !variable.is_empty() {
            detect.env(variable, library);
        }
        let out = detect.output().unwrap();
        assert!(
            out.status.success(),
            "{runtime}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let found: Vec<(String, (u32, u32, u32, u32))> = found[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let n = |k: &str| d[k].as_u64().unwrap() as u32;
                (
                    d["label"].as_str().unwrap().to_owned(),
                    (n("x0"), n("y0"), n("x1"), n("y1")),
                )
            })
            .collect();
        assert_eq!(found, expected, "{runtime}");
    }

    // Through a worker: the annotated copy has the boxes and their labels drawn.
    let db = fresh_database("yolo").await;
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut worker = Worker::spawn_with(
        &db,
        data.path(),
        &[("GALLERY_YOLO_MODEL_PATH", model.clone())],
    );
    worker.wait_healthy(&http).await;
    register(&http, &worker, "yves").await;
    let form = credentials("yves").part(
        "file",
        Part::bytes(photo.clone())
            .file_name("street.jpg")
            .mime_str("image/jpeg")
            .unwrap(),
    );
    let reply: serde_json::Value = http
        .post(worker.url("/api/upload"))
        .header("Accept", "application/json")
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = reply["photo_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{reply}"))
        .to_owned();
    let login = http
        .get(worker.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = gallery_tests::hidden(&login, "csrf");
    http.post(worker.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "yves"),
            ("password", PW),
        ])
        .send()
        .await
        .unwrap();
    let url = worker.url(&format!("/photos/{id}"));
    // The page refreshes itself until the photo is processed.
    let page =
        gallery_tests::wait_until("the photo to be processed", Duration::from_secs(60), || {
            let req = http.get(&url).send();
            async move {
                Some(req.await.ok()?.text().await.ok()?).filter(|page| !page.contains("http-equiv"))
            }
        })
        .await;
    assert!(page.contains("3 objects"), "{page}");
    let annotated_src = page
        .split("<img src=\"")
        .nth(2)
        .map(|s| s[..s.find('"').unwrap()].replace("&amp;", "&"))
        .unwrap();
    let bytes = http
        .get(worker.url(&annotated_src))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let annotated = image::load_from_memory(&bytes).unwrap().to_rgb8();
    assert_eq!(annotated.dimensions(), (w, h));

    let distance = |a: &image::Rgb<u8>, b: &image::Rgb<u8>| {
        a.0.iter()
            .zip(b.0)
            .map(|(x, y)| (*x as i32 - y as i32).abs())
            .max()
            .unwrap()
    };
    let changed =
        |x: u32, y: u32| distance(annotated.get_pixel(x, y), original.get_pixel(x, y)) > 60;
    let (_, (x0, y0, x1, y1)) = expected[2]; // the bicycle, clear of the others
    assert!(
        changed(x0, (y0 + y1) / 2) && changed(x1, (y0 + y1) / 2),
        "its left and right edges are drawn"
    );
    assert!(
        !changed((x0 + x1) / 2, (y0 + y1) / 2),
        "its inside is the photo"
    );
    // Its label tab sits above the top edge: white letters among the tab's colour.
    let tab_white = (x0..x0 + 60)
        .flat_map(|x| (y0.saturating_sub(30)..y0).map(move |y| (x, y)))
        .filter(|&(x, y)| annotated.get_pixel(x, y).0.iter().all(|c| *c > 200) && changed(x, y))
        .count();
    assert!(
        tab_white > 20,
        "label letters above the bicycle: {tab_white} white pixels"
    );
    assert!(
        !changed(w - 10, 10),
        "far from every box the photo is unchanged"
    );
}

/// `gallery-server detect --json` on some test photos: per photo, the boxes.
fn detect_boxes(env_vars: &[(&str, String)]) -> Vec<Vec<(i64, i64, i64, i64)>> {
    let photos: Vec<String> = ["photo000.jpg", "photo001.jpg", "big000.jpg"]
        .iter()
        .map(|p| testdata(p).display().to_string())
        .collect();
    let out = std::process::Command::new(gallery_tests::env("GALLERY_SERVER_BIN"))
        .arg("detect")
        .arg("--json")
        .args(&photos)
        .envs(env_vars.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|boxes| {
            boxes
                .as_array()
                .unwrap()
                .iter()
                .map(|b| {
                    (
                        b["x0"].as_i64().unwrap(),
                        b["y0"].as_i64().unwrap(),
                        b["x1"].as_i64().unwrap(),
                        b["y1"].as_i64().unwrap(),
                    )
                })
                .collect()
        })
        .collect()
}

#[test]
fn onnx_runtime_and_openvino_find_the_same_text_as_rten() {
    let rten = detect_boxes(&[]);
    assert!(
        rten.iter().all(|boxes| !boxes.is_empty()),
        "every test photo has text: {rten:?}"
    );
    for (variable, library) in [
        (
            "GALLERY_ONNXRUNTIME_LIBRARY",
            "GALLERY_TEST_ONNXRUNTIME_LIBRARY",
        ),
        ("GALLERY_OPENVINO_LIBRARY", "GALLERY_TEST_OPENVINO_LIBRARY"),
    ] {
        let other = detect_boxes(&[(variable, gallery_tests::env(library))]);
        assert_eq!(rten.len(), other.len());
        for (a, b) in rten.iter().zip(&other) {
            // Two runtimes sum in different orders; a probability at the threshold may flip a
            // pixel, no more.
            assert_eq!(
                a.len(),
                b.len(),
                "{variable}: same number of boxes:\n{a:?}\n{b:?}"
            );
            for (p, q) in a.iter().zip(b) {
                let off = [
                    (p.0 - q.0).abs(),
                    (p.1 - q.1).abs(),
                    (p.2 - q.2).abs(),
                    (p.3 - q.3).abs(),
                ];
                assert!(off.iter().all(|d| *d <= 3), "{variable}: {p:?} vs {q:?}");
            }
        }
    }
}

/// Sends an upload's head and its first bytes, then stops sending; what the worker answers.
async fn stalled_upload(worker: &Worker, username: &str, password: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let boundary = "stalled-upload-boundary";
    let fields = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\n{username}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n{password}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n\r\n"
    );
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nHost: gallery\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\n\r\n",
        fields.len() + 15 * 1024 * 1024
    );
    let address = worker
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(fields.as_bytes()).await.unwrap();
    stream.write_all(&[0xFF, 0xD8, 0xFF]).await.unwrap();
    let mut reply = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut reply))
        .await
        .expect("an answer before the file is sent")
        .unwrap();
    String::from_utf8_lossy(&reply[..n]).into_owned()
}

#[tokio::test]
async fn a_wrong_password_is_refused_before_the_file_is_sent() {
    let db = fresh_database("early").await;
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut worker = Worker::spawn(&db, data.path());
    worker.wait_healthy(&http).await;
    register(&http, &worker, "wren").await;

    let reply = stalled_upload(&worker, "wren", "not-the-password").await;
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    assert!(reply.contains("wrong username or password"), "{reply}");
    let reply = stalled_upload(&worker, "nobody-at-all", "whatever-pw").await;
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
}
