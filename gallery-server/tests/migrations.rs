//! A database made before a migration is brought up to date by the next worker to start, and
//! keeps its rows.
mod support;

use common::db::Db;
use mysql_async::prelude::Queryable;
use rocket::http::{ContentType, Status};
use support::{Part, TestApp};

/// Undoes migrations 12 to 8 (the accounts' clear mark, the learned rate, sessions,
/// case-insensitive usernames) on a fresh database.
async fn before_case_insensitive_names(conn: &mut mysql_async::Conn) {
    conn.query_drop("ALTER TABLE accounts DROP COLUMN photos_cleared_at")
        .await
        .unwrap();
    conn.query_drop("ALTER TABLE manager_settings DROP COLUMN learned_rate")
        .await
        .unwrap();
    conn.query_drop("DROP TABLE sessions").await.unwrap();
    conn.query_drop(
        "ALTER TABLE accounts DROP KEY accounts_username_key, DROP COLUMN username_key",
    )
    .await
    .unwrap();
}

/// Undoes migrations 12 to 5 (… the flow's indexes, the backlog's columns) on a fresh database.
async fn before_the_backlog(conn: &mut mysql_async::Conn) {
    before_case_insensitive_names(conn).await;
    conn.query_drop(
        "ALTER TABLE photos DROP KEY photos_created, DROP KEY photos_processed, DROP KEY photos_backlog, DROP COLUMN state, DROP COLUMN attempts, DROP COLUMN claimed_by,
         DROP COLUMN lease_until, DROP COLUMN not_before, DROP COLUMN failure, DROP COLUMN processed_at",
    )
    .await
    .unwrap();
}

/// An account made before the upgrade; its id.
async fn old_owner(conn: &mut mysql_async::Conn) -> u64 {
    conn.query_drop("INSERT INTO accounts (username, password_hash) VALUES ('old', 'x')")
        .await
        .unwrap();
    conn.query_first("SELECT id FROM accounts WHERE username = 'old'")
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn photos_from_before_the_detector_was_recorded_are_kept_with_none_recorded() {
    let app = TestApp::new().await;
    // The database as migration 2 left it, with a photo in it.
    let mut conn = app.db.conn().await.unwrap();
    before_the_backlog(&mut conn).await;
    conn.query_drop("ALTER TABLE photos DROP COLUMN runtime")
        .await
        .unwrap();
    conn.query_drop("ALTER TABLE photos DROP COLUMN detector")
        .await
        .unwrap();
    conn.query_drop("DELETE FROM schema_migrations WHERE version >= 3")
        .await
        .unwrap();
    let owner = old_owner(&mut conn).await;
    conn.exec_drop(
        "INSERT INTO photos (id, owner_id, file_name, content_type, ext, width, height, bytes, boxes)
         VALUES ('0190dddddddddddddddddddddddddddd', ?, 'old.jpg', 'image/jpeg', 'jpg', 640, 480, 1234, 3)",
        (owner,),
    )
    .await
    .unwrap();
    drop(conn);

    let db = Db::connect(&app.config.database_url).await.unwrap();
    let photo = db
        .photo("0190dddddddddddddddddddddddddddd")
        .await
        .unwrap()
        .expect("the old photo is kept");
    assert_eq!(
        (
            photo.file_name.as_str(),
            photo.width,
            photo.boxes,
            photo.detector.as_str()
        ),
        ("old.jpg", 640, 3, "")
    );
    assert_eq!(photo.runtime, "");
    assert_eq!(
        photo.state,
        common::db::PhotoState::Ready,
        "photos from before the backlog were processed in their upload"
    );
    let versions: Vec<u32> = db
        .conn()
        .await
        .unwrap()
        .query("SELECT version FROM schema_migrations ORDER BY version")
        .await
        .unwrap();
    let every: Vec<u32> = (1..=common::db::MIGRATION_COUNT).collect();
    assert_eq!(versions, every);
}

#[tokio::test]
async fn photos_described_before_the_runtime_had_its_column_get_it_from_the_description() {
    let app = TestApp::new().await;
    // The database as migration 3 left it: the runtime only inside the description.
    let mut conn = app.db.conn().await.unwrap();
    before_the_backlog(&mut conn).await;
    conn.query_drop("ALTER TABLE photos DROP COLUMN runtime")
        .await
        .unwrap();
    conn.query_drop("DELETE FROM schema_migrations WHERE version >= 4")
        .await
        .unwrap();
    let owner = old_owner(&mut conn).await;
    for (id, detector) in [
        (
            "0190aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "text (PP-OCRv4 DBNet) on OpenVINO (bf16)",
        ),
        ("0190bbbbbbbbbbbbbbbbbbbbbbbbbbbb", ""),
    ] {
        conn.exec_drop(
            "INSERT INTO photos (id, owner_id, file_name, content_type, ext, width, height, bytes, boxes, detector)
             VALUES (?, ?, 'old.jpg', 'image/jpeg', 'jpg', 640, 480, 1234, 3, ?)",
            (id, owner, detector),
        )
        .await
        .unwrap();
    }
    drop(conn);

    let db = Db::connect(&app.config.database_url).await.unwrap();
    let described = db
        .photo("0190aaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (described.detector.as_str(), described.runtime.as_str()),
        (
            "text (PP-OCRv4 DBNet) on OpenVINO (bf16)",
            "OpenVINO (bf16)"
        )
    );
    let undescribed = db
        .photo("0190bbbbbbbbbbbbbbbbbbbbbbbbbbbb")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(undescribed.runtime, "");
}

#[tokio::test]
async fn the_control_planes_records_keep_any_text_whatever_the_servers_default_charset() {
    // The test server runs without configuration: its default character set is latin1.
    let app = TestApp::new().await;
    let reason = "autoscaler: backlog 420, arrivals 14.8/s → 4 workers · Zoë’s upload";
    app.db.record_scaling_event(1, 4, reason).await.unwrap();
    let events = app.db.scaling_events(1).await.unwrap();
    assert_eq!(events[0].reason, reason);
}

#[tokio::test]
async fn accounts_whose_names_clash_by_case_keep_logging_in_and_no_new_clash_is_made() {
    let app = TestApp::new().await;
    let mut conn = app.db.conn().await.unwrap();
    before_case_insensitive_names(&mut conn).await;
    conn.query_drop("DELETE FROM schema_migrations WHERE version >= 8")
        .await
        .unwrap();
    // Two accounts the old rules let apart: each with its own password.
    for (name, password) in [("Alice", "first-alice-pw"), ("alice", "second-alice-pw")] {
        conn.exec_drop(
            "INSERT INTO accounts (username, password_hash) VALUES (?, ?)",
            (name, common::auth::hash_password(password)),
        )
        .await
        .unwrap();
    }
    drop(conn);
    // The next worker to start brings the database up to date.
    let worker = app.second_worker(|_| {}).await;
    let png = support::images::png16();

    for (typed, password) in [("Alice", "first-alice-pw"), ("alice", "second-alice-pw")] {
        let (ct, body) = support::multipart(&[
            Part::Text("username", typed),
            Part::Text("password", password),
            Part::File("file", "a.png", &png),
        ]);
        let res = worker
            .post("/api/upload")
            .header(ct)
            .body(body)
            .dispatch()
            .await;
        assert_eq!(res.status(), Status::Ok, "{typed} logs in as before");
    }
    let res = worker
        .post("/api/register")
        .header(ContentType::Form)
        .body("username=ALICE&password=third-secret-pw")
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Conflict, "a third spelling is taken");
}
