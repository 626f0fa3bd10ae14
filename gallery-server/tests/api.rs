//! The API the load generators use, its errors, and what every refused upload leaves behind
//! (nothing).
mod support;

use rocket::http::Status;
use support::{images, testdata, Part, TestApp};

const PW: &str = "pass-word-1";

#[tokio::test]
async fn register_then_upload_stores_three_objects_and_a_row() {
    let app = TestApp::new().await;
    assert_eq!(
        app.api_register("alice", PW).await,
        (Status::Ok, "/api/register successful!".into())
    );
    let photo = std::fs::read(testdata("photo000.jpg")).unwrap();
    assert_eq!(
        app.upload_as("alice", PW, "photo000.jpg", &photo).await,
        (Status::Ok, "/api/upload successful!".into())
    );

    app.settled().await;
    let account = app.db.account_by_name("alice").await.unwrap().unwrap();
    assert!(account.password_hash.starts_with("$argon2id$"));
    let photos = app.db.photos_of(account.id, 10, 0).await.unwrap();
    assert_eq!(photos.len(), 1);
    let p = &photos[0];
    assert_eq!(
        (p.width, p.height, p.bytes),
        (1600, 1200, photo.len() as u64)
    );
    assert_eq!(
        (p.file_name.as_str(), p.content_type.as_str()),
        ("photo000.jpg", "image/jpeg")
    );
    assert!(
        p.boxes >= 2,
        "photo000 has two lines of text, found {}",
        p.boxes
    );

    let keys: Vec<String> = app
        .store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        keys,
        vec![p.annotated_key(), p.original_key(), p.thumbnail_key()]
    );
    assert_eq!(
        app.store.get(&p.original_key()).await.unwrap().unwrap(),
        photo.as_slice(),
        "original kept byte for byte"
    );
    let thumb = image::load_from_memory(&app.store.get(&p.thumbnail_key()).await.unwrap().unwrap())
        .unwrap();
    assert_eq!((thumb.width(), thumb.height()), (256, 192));
    let annotated =
        image::load_from_memory(&app.store.get(&p.annotated_key()).await.unwrap().unwrap())
            .unwrap();
    assert_eq!((annotated.width(), annotated.height()), (1600, 1200));
}

#[tokio::test]
async fn json_replies_when_asked() {
    let app = TestApp::new().await;
    app.api_register("bob", PW).await;
    let (status, json) = app
        .api_upload_json(&[
            Part::Text("username", "bob"),
            Part::Text("password", PW),
            Part::File("file", "a.jpg", &images::rgb_jpeg(64, 64)),
        ])
        .await;
    assert_eq!(status, Status::Ok);
    assert_eq!(json["ok"], true);
    let id = json["photo_id"].as_str().unwrap();
    assert!(app.db.photo(id).await.unwrap().is_some());

    let (status, json) = app
        .api_upload_json(&[
            Part::Text("username", "bob"),
            Part::Text("password", "wrong-pass"),
        ])
        .await;
    assert_eq!(status, Status::BadRequest, "{json}");
    assert_eq!(json["ok"], false);
    assert!(json["error"].as_str().unwrap().contains("file"), "{json}");
}

#[tokio::test]
async fn registration_errors_are_clear() {
    let app = TestApp::new().await;
    assert_eq!(app.api_register("carol", PW).await.0, Status::Ok);
    let cases = [
        ("carol", PW, Status::Conflict, "already taken"),
        ("", PW, Status::BadRequest, "empty"),
        (&"x".repeat(65), PW, Status::BadRequest, "at most 64"),
        ("a%2Fb", PW, Status::BadRequest, "only letters"),
        ("dave", "short", Status::BadRequest, "at least 8"),
        ("dave", "dave", Status::BadRequest, "at least 8"),
        (
            "erin",
            "erinerin",
            Status::BadRequest,
            "must not contain the username",
        ),
    ];
    for (user, pw, status, needle) in cases {
        let (got, msg) = app.api_register(user, pw).await;
        assert_eq!(got, status, "{user:?}/{pw:?}: {msg}");
        assert!(
            msg.contains(needle),
            "{user:?}/{pw:?}: {msg:?} lacks {needle:?}"
        );
        assert!(!msg.contains('\n'), "one line: {msg:?}");
    }
    let res = app
        .client
        .post("/api/register")
        .header(rocket::http::ContentType::Form)
        .body("username=frank")
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::BadRequest);
    assert!(res.into_string().await.unwrap().contains("password"));
    // A registration is a small form: one far larger is refused by its own limit, named.
    let res = app
        .client
        .post("/api/register")
        .header(rocket::http::ContentType::Form)
        .body(format!("username=gina&password={}", "p".repeat(70 * 1024)))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::PayloadTooLarge);
    let msg = res.into_string().await.unwrap();
    assert!(msg.contains("form is larger than the 64 KiB"), "{msg:?}");
    assert_eq!(
        app.db.count_rows().await.unwrap().accounts,
        1,
        "only carol exists"
    );
}

#[tokio::test]
async fn unknown_user_and_wrong_password_are_refused() {
    let app = TestApp::new().await;
    app.api_register("gina", PW).await;
    let jpeg = images::rgb_jpeg(32, 32);
    let (status, msg) = app.upload_as("nobody", PW, "a.jpg", &jpeg).await;
    assert_eq!(
        (status, msg.as_str()),
        (Status::Unauthorized, "wrong username or password")
    );
    let (status, _) = app
        .upload_as("gina", "not-her-password", "a.jpg", &jpeg)
        .await;
    assert_eq!(status, Status::Unauthorized);
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn bad_files_get_clear_errors_and_leave_nothing() {
    let app = TestApp::with(|c| c.max_upload_bytes = 1024 * 1024).await;
    app.api_register("hank", PW).await;
    let photo = std::fs::read(testdata("photo000.jpg")).unwrap();
    let big = std::fs::read(testdata("big000.jpg")).unwrap();
    assert!(big.len() > 1024 * 1024 / 2);
    let oversize = [big.as_slice(), big.as_slice()].concat();
    let mut qoi = b"qoif".to_vec();
    qoi.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 8, 3, 0]);
    let cases: Vec<(&str, Vec<u8>, Status, &str)> = vec![
        ("empty.jpg", vec![], Status::BadRequest, "empty"),
        (
            "notes.jpg",
            b"just some text, not a photo\n".to_vec(),
            Status::UnsupportedMediaType,
            "not an image",
        ),
        (
            "cut.jpg",
            photo[..photo.len() / 2].to_vec(),
            Status::BadRequest,
            "could not be decoded",
        ),
        (
            "bomb.png",
            images::png_claiming(100_000, 100_000),
            Status::PayloadTooLarge,
            "100000×100000",
        ),
        ("huge.jpg", oversize, Status::PayloadTooLarge, "1 MiB"),
        ("a.qoi", qoi, Status::UnsupportedMediaType, "not supported"),
        // Control characters in a part header are refused by the multipart parser already
        // (the worker's own check on the decoded name stays as a second line).
        (
            "del\u{7f}.jpg",
            images::rgb_jpeg(32, 32),
            Status::BadRequest,
            "malformed form",
        ),
        (
            "bell\u{7}.jpg",
            images::rgb_jpeg(32, 32),
            Status::BadRequest,
            "malformed form",
        ),
    ];
    for (name, data, status, needle) in cases {
        let (got, msg) = app.upload_as("hank", PW, name, &data).await;
        assert_eq!(got, status, "{name}: {msg}");
        assert!(msg.contains(needle), "{name}: {msg:?} lacks {needle:?}");
        assert!(!msg.contains('\n'), "{name}: one line: {msg:?}");
        app.assert_nothing_stored().await;
    }
    let (status, msg) = app
        .api_upload(&[Part::Text("username", "hank"), Part::Text("password", PW)])
        .await;
    assert_eq!(status, Status::BadRequest);
    assert_eq!(msg, "missing field `file`");
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn path_characters_in_file_names_are_kept_as_data_only() {
    let app = TestApp::new().await;
    app.api_register("ivan", PW).await;
    let (status, _) = app
        .upload_as(
            "ivan",
            PW,
            "../../etc/passwd.jpg",
            &images::rgb_jpeg(40, 30),
        )
        .await;
    assert_eq!(status, Status::Ok);
    let id = app.db.account_by_name("ivan").await.unwrap().unwrap().id;
    let p = &app.db.photos_of(id, 1, 0).await.unwrap()[0];
    assert_eq!(p.file_name, "../../etc/passwd.jpg");
    for obj in app.store.list("").await.unwrap() {
        assert!(
            obj.key.contains(&p.id) && !obj.key.contains(".."),
            "{}",
            obj.key
        );
    }
}

#[tokio::test]
async fn unusual_but_valid_images_work() {
    let app = TestApp::new().await;
    app.api_register("judy", PW).await;
    let cases: Vec<(&str, Vec<u8>, (u32, u32), &str)> = vec![
        ("cmyk.jpg", images::cmyk_jpeg(), (64, 40), "image/jpeg"),
        ("deep.png", images::png16(), (90, 60), "image/png"),
        ("gray.jpg", images::gray_jpeg(), (120, 80), "image/jpeg"),
        ("alpha.png", images::alpha_png(), (64, 48), "image/png"),
        ("pic.webp", images::webp(), (80, 50), "image/webp"),
        // Stored 200×100 but displayed rotated: the processed copies are 100×200.
        (
            "rotated.jpg",
            images::exif_rotated_jpeg(200, 100),
            (100, 200),
            "image/jpeg",
        ),
    ];
    let owner = app.db.account_by_name("judy").await.unwrap().unwrap().id;
    for (name, data, dims, content_type) in cases {
        let (status, msg) = app.upload_as("judy", PW, name, &data).await;
        assert_eq!(status, Status::Ok, "{name}: {msg}");
        app.settled().await;
        let p = app.db.photos_of(owner, 1, 0).await.unwrap().remove(0);
        assert_eq!(
            p.state,
            common::db::PhotoState::Ready,
            "{name}: {}",
            p.failure
        );
        assert_eq!(p.file_name, name);
        assert_eq!((p.width, p.height), dims, "{name}");
        assert_eq!(p.content_type, content_type, "{name}");
        let annotated =
            image::load_from_memory(&app.store.get(&p.annotated_key()).await.unwrap().unwrap())
                .unwrap();
        assert_eq!((annotated.width(), annotated.height()), dims, "{name}");
    }
}

#[tokio::test]
async fn health_and_metrics() {
    let app = TestApp::new().await;
    let res = app.client.get("/healthz").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    app.api_register("kim", PW).await;
    app.upload_as("kim", PW, "a.jpg", &images::rgb_jpeg(64, 48))
        .await;
    app.settled().await;
    let text = support::body(app.client.get("/metrics").dispatch().await).await;
    assert!(
        text.contains(r#"http_requests_total{method="POST",route="/api/upload",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="POST",route="/api/register",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"upload_stage_seconds_count{stage="detect"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("uploads_accepted_total 1") && text.contains("photos_processed_total 1"),
        "{text}"
    );
    assert!(
        text.contains(r#"backlog_photos{state="queued"} 0"#),
        "{text}"
    );
    assert!(text.contains("time_to_processed_seconds_count 1"), "{text}");
    assert!(text.contains("process_cpu_seconds_total"), "{text}");
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    // No processing slot at all and no queue: every upload is turned away, nothing stored.
    let app = TestApp::with(|c| {
        c.pipeline_workers = 1;
        c.pipeline_queue = 0;
    })
    .await;
    app.api_register("lee", PW).await;
    // Hold the only slot from the outside by running a job that waits for us.
    let state = app
        .client
        .rocket()
        .state::<gallery_server::AppState>()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let jobs = state.jobs.clone();
    let holder = tokio::spawn(async move { jobs.run(move || rx.recv().ok()).await.is_ok() });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (ct, body) = support::multipart(&[
            Part::Text("username", "lee"),
            Part::Text("password", PW),
            Part::File("file", "a.jpg", &images::rgb_jpeg(32, 32)),
        ]);
        let res = app
            .client
            .post("/api/upload")
            .header(ct)
            .body(body)
            .dispatch()
            .await;
        if res.status() == Status::ServiceUnavailable {
            assert_eq!(res.headers().get_one("Retry-After"), Some("5"));
            assert!(res.into_string().await.unwrap().contains("busy"));
            break;
        }
        // Until the holder is admitted, the upload itself may get the slot.
        assert!(std::time::Instant::now() < deadline, "never got a 503");
        tokio::task::yield_now().await;
    }
    tx.send(()).unwrap();
    assert!(holder.await.unwrap());
}

#[tokio::test]
async fn a_failed_row_insert_removes_the_objects_already_written() {
    let app = TestApp::new().await;
    app.api_register("una", PW).await;
    // Make the final step of the pipeline fail: the photos table is gone.
    let mut conn = app.db.conn().await.unwrap();
    use mysql_async::prelude::Queryable;
    conn.query_drop("RENAME TABLE photos TO photos_away")
        .await
        .unwrap();
    let (status, msg) = app
        .upload_as("una", PW, "a.jpg", &images::rgb_jpeg(80, 60))
        .await;
    assert_eq!(status, Status::InternalServerError);
    assert!(msg.contains("was not saved"), "{msg}");
    let objects = app.store.list("").await.unwrap();
    assert!(
        objects.is_empty(),
        "objects of the failed upload remain: {objects:?}"
    );
    conn.query_drop("RENAME TABLE photos_away TO photos")
        .await
        .unwrap();
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_form_with_the_file_before_the_credentials_is_still_accepted() {
    let app = TestApp::new().await;
    app.api_register("ivo", PW).await;
    let jpeg = images::rgb_jpeg(64, 48);
    let (status, text) = app
        .api_upload(&[
            Part::File("file", "first.jpg", &jpeg),
            Part::Text("username", "ivo"),
            Part::Text("password", PW),
        ])
        .await;
    assert_eq!(
        (status, text.as_str()),
        (Status::Ok, "/api/upload successful!")
    );
    let (status, _) = app
        .api_upload(&[
            Part::File("file", "first.jpg", &jpeg),
            Part::Text("username", "ivo"),
            Part::Text("password", "not-his-password"),
        ])
        .await;
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(app.db.count_rows().await.unwrap().photos, 1);
}
