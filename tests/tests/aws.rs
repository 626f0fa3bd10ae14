//! The aws deployment against an AWS emulator (moto): the control plane's real SDK clients
//! launch, register, drain, terminate and adopt EC2 workers; operator codes go through SES;
//! worker metrics go through CloudWatch and drive the autoscaler.
use std::time::{Duration, Instant};

use common::api::{Status, WorkerState};
mod aws_emulator;

use aws_emulator::{Deployment, Moto};
use gallery_tests::{fresh_database, wait_until, ControlPlane, Worker};

const OPERATOR: &str = "ops@example.com";

fn start(db: &str, dir: &std::path::Path, toml: &str, moto: &Moto, api_port: u16) -> ControlPlane {
    ControlPlane::spawn_with(
        db,
        dir,
        toml,
        api_port,
        gallery_tests::free_port(),
        &moto.client_env(),
    )
}

/// Logs in with the code SES delivered to the operator.
async fn login(cp: &ControlPlane, moto: &Moto, http: &reqwest::Client) -> String {
    let before = moto.sent_mail().await.len();
    let res = http
        .post(cp.api("/auth/otp"))
        .json(&serde_json::json!({ "email": OPERATOR }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let challenge = res.json::<serde_json::Value>().await.unwrap()["challenge"]
        .as_str()
        .unwrap()
        .to_owned();
    let (to, subject, body) = wait_until(
        "the code to be sent with SES",
        Duration::from_secs(10),
        || async { moto.sent_mail().await.into_iter().nth(before) },
    )
    .await;
    assert_eq!(to, vec![OPERATOR.to_owned()]);
    assert!(subject.starts_with("Gallery operator code"), "{subject}");
    let at = body.find("control plane is ").expect("code in the mail") + "control plane is ".len();
    let code = &body[at..at + 6];
    let res = http
        .post(cp.api("/auth/verify"))
        .json(&serde_json::json!({ "challenge": challenge, "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn status(cp: &ControlPlane, http: &reqwest::Client, token: &str) -> Status {
    cp.status(http, token).await
}

/// Grows or shrinks the pool by one through the control API.
async fn resize(cp: &ControlPlane, http: &reqwest::Client, token: &str, how: &str) {
    let res = http
        .post(cp.api(&format!("/pool/{how}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

fn healthy_ids(s: &Status) -> Vec<String> {
    let mut ids: Vec<String> = s
        .workers
        .iter()
        .filter(|w| w.state == WorkerState::Healthy)
        .map(|w| w.id.clone())
        .collect();
    ids.sort();
    ids
}

/// An emulator, a deployment in it and a control plane scaling it between 1 and 4 workers
/// with `standby` warm standby instances, logged in.
struct Pool {
    moto: Moto,
    deployment: Deployment,
    db: String,
    dir: tempfile::TempDir,
    toml: String,
    api_port: u16,
    cp: ControlPlane,
    http: reqwest::Client,
    token: String,
}

impl Pool {
    async fn start(db_tag: &str, standby: u32) -> Pool {
        let moto = Moto::start(&[]).await;
        let deployment = Deployment::create(&moto).await;
        let db = fresh_database(db_tag).await;
        let dir = tempfile::tempdir().unwrap();
        let toml = deployment.manager_toml(
            "ami-12c6146b",
            &format!("[policy]\nmin_workers = 1\nmax_workers = 4\ncooldown_secs = 1\nstandby_workers = {standby}\n"),
        );
        let api_port = gallery_tests::free_port();
        let mut cp = start(&db, dir.path(), &toml, &moto, api_port);
        let http = reqwest::Client::new();
        cp.wait_api(&http).await;
        let token = login(&cp, &moto, &http).await;
        Pool {
            moto,
            deployment,
            db,
            dir,
            toml,
            api_port,
            cp,
            http,
            token,
        }
    }
}

#[tokio::test]
async fn workers_are_launched_registered_drained_terminated_and_adopted_after_a_restart() {
    let Pool {
        moto,
        deployment,
        db,
        dir,
        toml,
        api_port,
        cp,
        http,
        token,
    } = Pool::start("aws_pool", 0).await;

    // Scale out to two: instances tagged, running, registered and healthy.
    resize(&cp, &http, &token, "grow").await;
    let s = wait_until("two healthy workers", Duration::from_secs(30), || async {
        let s = status(&cp, &http, &token).await;
        (healthy_ids(&s).len() == 2).then_some(s)
    })
    .await;
    assert_eq!(s.deployment, common::config::ProviderKind::Aws);
    assert_eq!(
        s.balancer,
        format!("http://{}", deployment.alb_dns),
        "the ALB is where users go"
    );
    let ids = healthy_ids(&s);
    assert!(ids.iter().all(|id| id.starts_with("i-")), "{ids:?}");
    let running: Vec<(String, String)> = ids
        .iter()
        .map(|id| (id.clone(), "running".to_owned()))
        .collect();
    assert_eq!(moto.instances("test").await, running);
    let registered: Vec<(String, String)> = ids
        .iter()
        .map(|id| (id.clone(), "healthy".to_owned()))
        .collect();
    assert_eq!(moto.targets(&deployment.target_group).await, registered);

    // Scale in by one: the newest is deregistered, then terminated; the other keeps serving.
    resize(&cp, &http, &token, "shrink").await;
    let gone = wait_until(
        "one instance terminated",
        Duration::from_secs(30),
        || async {
            let instances = moto.instances("test").await;
            let terminated: Vec<String> = instances
                .iter()
                .filter(|(_, state)| state == "terminated" || state == "shutting-down")
                .map(|(id, _)| id.clone())
                .collect();
            (terminated.len() == 1).then(|| terminated[0].clone())
        },
    )
    .await;
    let kept: Vec<String> = ids.iter().filter(|id| **id != gone).cloned().collect();
    assert_eq!(kept.len(), 1);
    let targets = moto.targets(&deployment.target_group).await;
    assert_eq!(
        targets,
        vec![(kept[0].clone(), "healthy".to_owned())],
        "the terminated worker was deregistered"
    );
    wait_until(
        "the pool to show one healthy worker",
        Duration::from_secs(10),
        || async {
            let s = status(&cp, &http, &token).await;
            (healthy_ids(&s) == kept && s.workers.len() == 1).then_some(())
        },
    )
    .await;

    // Instances of another deployment, or of nobody, share the account: never ours to manage.
    for tag in [Some("other"), None] {
        let mut run = moto
            .ec2()
            .run_instances()
            .image_id("ami-12c6146b")
            .min_count(1)
            .max_count(1);
        if let Some(value) = tag {
            run = run.tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                    .tags(
                        aws_sdk_ec2::types::Tag::builder()
                            .key("gallery:deployment")
                            .value(value)
                            .build(),
                    )
                    .build(),
            );
        }
        run.send().await.unwrap();
    }

    // A restart of the control plane leaves the worker serving and adopts it: no launch.
    cp.terminate().await;
    assert_eq!(
        moto.instances("test")
            .await
            .iter()
            .filter(|(_, s)| s == "running")
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>(),
        kept,
        "stopping the control plane does not stop cloud workers"
    );
    let mut cp = start(&db, dir.path(), &toml, &moto, api_port);
    cp.wait_api(&http).await;
    let token = login(&cp, &moto, &http).await;
    let s = wait_until(
        "the adopted worker to be listed healthy",
        Duration::from_secs(20),
        || async {
            let s = status(&cp, &http, &token).await;
            (!healthy_ids(&s).is_empty()).then_some(s)
        },
    )
    .await;
    assert_eq!(healthy_ids(&s), kept);
    assert_eq!(
        s.workers.len(),
        1,
        "only this deployment's instances are adopted: {:?}",
        s.workers
    );
    assert_eq!(s.pool.desired, 1, "the desired size survived the restart");
    // Give the reconciler several rounds to (wrongly) launch; the instance list must not grow,
    // and the other instances are left running.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        assert_eq!(
            moto.instances("test").await.len(),
            2,
            "no instance launched after adoption"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let others = moto.instances("other").await;
    assert_eq!(
        others.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
        vec!["running"],
        "{others:?}"
    );
}

#[tokio::test]
async fn worker_metrics_go_through_cloudwatch_and_drive_the_autoscaler() {
    let moto = Moto::start(&[]).await;
    let deployment = Deployment::create(&moto).await;
    let db = fresh_database("aws_metrics").await;
    let dir = tempfile::tempdir().unwrap();
    let toml = deployment.manager_toml(
        "ami-12c6146b",
        "[policy]\nkind = \"cpu\"\nmin_workers = 1\nmax_workers = 3\ngrow_cpu = 0.6\nshrink_cpu = 0.05\ncooldown_secs = 5\ngrow_window_secs = 5\nstandby_workers = 0\n",
    );
    let mut cp = start(&db, dir.path(), &toml, &moto, gallery_tests::free_port());
    let http = reqwest::Client::new();
    cp.wait_api(&http).await;
    // No earlier than the control plane's own start.
    let started = std::time::SystemTime::now();
    let token = login(&cp, &moto, &http).await;
    let id = wait_until("one healthy worker", Duration::from_secs(30), || async {
        healthy_ids(&status(&cp, &http, &token).await)
            .into_iter()
            .next()
    })
    .await;

    // Before the worker publishes anything, EC2's own CPU metric stands in.
    let ec2_metric = aws_sdk_cloudwatch::types::MetricDatum::builder()
        .metric_name("CPUUtilization")
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("InstanceId")
                .value(&id)
                .build(),
        )
        .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from(
            std::time::SystemTime::now() - Duration::from_secs(15),
        ))
        .value(42.0)
        .unit(aws_sdk_cloudwatch::types::StandardUnit::Percent)
        .build();
    moto.cloudwatch()
        .put_metric_data()
        .namespace("AWS/EC2")
        .metric_data(ec2_metric)
        .send()
        .await
        .unwrap();
    let cpu = wait_until(
        "EC2's CPU figure for the worker",
        Duration::from_secs(30),
        || async {
            status(&cp, &http, &token)
                .await
                .workers
                .iter()
                .find(|w| w.id == id)
                .and_then(|w| w.cpu)
        },
    )
    .await;
    assert!((cpu - 0.42).abs() < 1e-6, "{cpu}");

    // A real worker, told it is that instance, publishes its requests to CloudWatch.
    let worker_dir = tempfile::tempdir().unwrap();
    let mut env = moto.client_env();
    env.push(("GALLERY_METRICS_NAMESPACE", "GalleryTest".into()));
    env.push(("GALLERY_METRICS_INTERVAL_SECS", "1".into()));
    env.push(("GALLERY_INSTANCE_ID", id.clone()));
    let mut worker = Worker::spawn_with(&cp.database_url, worker_dir.path(), &env);
    worker.wait_healthy(&http).await;
    let served = wait_until(
        "the worker's request rate to reach the control plane",
        Duration::from_secs(45),
        || async {
            for _ in 0..20 {
                let res = http.get(worker.url("/login")).send().await.unwrap();
                assert_eq!(res.status(), 200);
            }
            let s = status(&cp, &http, &token).await;
            let w = s.workers.iter().find(|w| w.id == id)?;
            w.request_rate.filter(|r| *r > 0.0)
        },
    )
    .await;
    assert!(served > 0.0);
    let exit = worker.terminate().await;
    assert!(exit.success(), "{exit}");

    // Now the instance reports 95 % CPU, as a worker under load would: the pool grows.
    let cloudwatch = moto.cloudwatch();
    let load = tokio::spawn({
        let id = id.clone();
        async move {
            let publisher = common::cloudwatch::Publisher::new(cloudwatch, "GalleryTest", &id);
            loop {
                publisher
                    .publish(
                        std::time::SystemTime::now(),
                        common::cloudwatch::Point {
                            requests: 10.0,
                            cpu_percent: 95.0,
                            uploads: 4.0,
                            refused_uploads: 1.0,
                        },
                    )
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    });
    let s = wait_until(
        "the autoscaler to grow the pool",
        Duration::from_secs(60),
        || async {
            let s = status(&cp, &http, &token).await;
            (s.pool.desired >= 2).then_some(s)
        },
    )
    .await;
    // The uploads the worker counted, and those it refused, reach the status.
    let refusals = wait_until(
        "the workers' upload counts to reach the status",
        Duration::from_secs(60),
        || async {
            let r = status(&cp, &http, &token).await.refusals?;
            (r.uploads >= 4 && r.refused_uploads >= 1).then_some(r)
        },
    )
    .await;
    assert!(refusals.refused_uploads <= refusals.uploads, "{refusals:?}");
    load.abort();
    let event = s.events.first().expect("a scaling event");
    assert!(event.reason.starts_with("autoscaler"), "{}", event.reason);
    assert_eq!((event.from, event.to), (1, s.pool.desired));
    let w = s.workers.iter().find(|w| w.id == id).unwrap();
    assert!(w.cpu.unwrap() > 0.6, "{:?}", w.cpu);
    wait_until(
        "a second instance to run",
        Duration::from_secs(30),
        || async {
            let running = moto
                .instances("test")
                .await
                .iter()
                .filter(|(_, s)| s == "running")
                .count();
            (running >= 2).then_some(())
        },
    )
    .await;

    // The ALB's own 5xx replies (no worker saw them) are counted from its metric, by the
    // minute, once the minute is over: one that ended after the control plane started.
    let dimension = deployment
        .load_balancer_arn
        .split_once(":loadbalancer/")
        .unwrap()
        .1
        .to_owned();
    let unix = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let minute_start = (unix(std::time::SystemTime::now()) / 60.0).floor() * 60.0;
    // The minute before this one, if it ended after the control plane started; else this
    // one, which the control plane counts once it is over.
    let minute = if minute_start > unix(started) {
        minute_start - 60.0
    } else {
        minute_start
    };
    moto.cloudwatch()
        .put_metric_data()
        .namespace("AWS/ApplicationELB")
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("HTTPCode_ELB_5XX_Count")
                .dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name("LoadBalancer")
                        .value(&dimension)
                        .build(),
                )
                .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs_f64(
                    minute + 5.0,
                ))
                .value(7.0)
                .unit(aws_sdk_cloudwatch::types::StandardUnit::Count)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let r = wait_until(
        "the ALB's 5xx replies to reach the status",
        Duration::from_secs(90),
        || async {
            let r = status(&cp, &http, &token).await.refusals?;
            (r.load_balancer_5xx > 0).then_some(r)
        },
    )
    .await;
    assert_eq!(r.load_balancer_5xx, 7, "counted once: {r:?}");
}

#[tokio::test]
async fn a_failing_launch_is_reported_and_retried_with_backoff() {
    // The emulator rejects images it does not know, as AWS does.
    let moto = Moto::start(&[("MOTO_ENABLE_AMI_VALIDATION", "true")]).await;
    let deployment = Deployment::create(&moto).await;
    let db = fresh_database("aws_launch").await;
    let dir = tempfile::tempdir().unwrap();
    let toml = deployment.manager_toml(
        "ami-00000000000bad",
        "[policy]\nmin_workers = 1\nmax_workers = 2\nstandby_workers = 0\n",
    );
    let mut cp = start(&db, dir.path(), &toml, &moto, gallery_tests::free_port());
    let http = reqwest::Client::new();
    cp.wait_api(&http).await;
    let token = login(&cp, &moto, &http).await;

    let first = wait_until(
        "the launch failure to be reported",
        Duration::from_secs(20),
        || async { status(&cp, &http, &token).await.launch_problem },
    )
    .await;
    assert!(
        first.error.contains("RunInstances") && first.error.contains("ami-00000000000bad"),
        "{}",
        first.error
    );
    // Time three failures from the moment one is seen happening: backing off 2 s, then 4 s
    // (or more) puts at least 6 s between failures k and k + 2; a hot loop (the reconciler
    // wakes every second) would take about 2.
    let failures = |at_least: u32| {
        let (cp, http, token) = (&cp, &http, &token);
        async move {
            wait_until(
                &format!("launch failure {at_least}"),
                Duration::from_secs(60),
                || async {
                    status(cp, http, token)
                        .await
                        .launch_problem
                        .filter(|p| p.failures >= at_least)
                },
            )
            .await
        }
    };
    let k = failures(first.failures + 1).await;
    let seen = Instant::now();
    let later = failures(k.failures + 2).await;
    assert!(
        seen.elapsed() >= Duration::from_secs(5),
        "failures {} to {} within {:?}: not backing off",
        k.failures,
        later.failures,
        seen.elapsed()
    );
    assert!(
        later.retry_at > status(&cp, &http, &token).await.now,
        "the next try is in the future"
    );
    assert!(
        moto.instances("test").await.is_empty(),
        "nothing was launched"
    );
    let once = std::process::Command::new(gallery_tests::env("GALLERY_MANAGER_BIN"))
        .args(["--once", "--api", &cp.api("")])
        .env("GALLERY_TOKEN", &token)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&once.stdout);
    assert!(
        text.contains("launch: failed") && text.contains("ami-00000000000bad"),
        "{text}"
    );
}

/// AWS's warm pools, by the control plane: a standby instance boots once (registered, so the
/// ALB's checks say when its first boot is done), is taken out of rotation and stopped; to
/// grow, it is started instead of a launch, and a new one warms in its place. A restarted
/// control plane adopts the stopped one as standby.
#[tokio::test]
async fn a_stopped_standby_instance_is_started_in_place_of_a_launch() {
    let Pool {
        moto,
        deployment,
        db,
        dir,
        toml,
        api_port,
        cp,
        http,
        token,
    } = Pool::start("aws_warm_pool", 1).await;

    let standby_of = |s: &Status| -> Vec<String> {
        s.workers
            .iter()
            .filter(|w| w.state == WorkerState::Standby)
            .map(|w| w.id.clone())
            .collect()
    };
    let s = wait_until(
        "a worker serving and a standby instance stopped",
        Duration::from_secs(60),
        || async {
            let s = status(&cp, &http, &token).await;
            (healthy_ids(&s).len() == 1 && standby_of(&s).len() == 1).then_some(s)
        },
    )
    .await;
    let standby = standby_of(&s)[0].clone();
    let serving = healthy_ids(&s)[0].clone();
    let mut expected = vec![
        (serving.clone(), "running".to_owned()),
        (standby.clone(), "stopped".to_owned()),
    ];
    expected.sort();
    assert_eq!(moto.instances("test").await, expected);
    assert_eq!(
        moto.targets(&deployment.target_group).await,
        vec![(serving.clone(), "healthy".to_owned())],
        "the stopped standby serves nobody"
    );
    assert_eq!((s.pool.standby, s.pool.standby_ready), (1, 1));

    // Grow by one: the stopped instance is started, registered and serves; nothing else is
    // launched for it. A new standby warms in its place.
    resize(&cp, &http, &token, "grow").await;
    let s = wait_until(
        "the standby serving and a new one stopped",
        Duration::from_secs(60),
        || async {
            let s = status(&cp, &http, &token).await;
            (healthy_ids(&s).len() == 2 && standby_of(&s).len() == 1).then_some(s)
        },
    )
    .await;
    let mut both = vec![serving.clone(), standby.clone()];
    both.sort();
    assert_eq!(healthy_ids(&s), both, "started, not launched");
    let replacement = standby_of(&s)[0].clone();
    assert!(!both.contains(&replacement));
    assert_eq!(moto.instances("test").await.len(), 3);
    cp.terminate().await;

    // A restarted control plane adopts the pool and its stopped standby; it launches nothing.
    let mut cp = start(&db, dir.path(), &toml, &moto, api_port);
    cp.wait_api(&http).await;
    let token = login(&cp, &moto, &http).await;
    let s = wait_until("the pool adopted", Duration::from_secs(30), || async {
        let s = status(&cp, &http, &token).await;
        (healthy_ids(&s).len() == 2 && standby_of(&s) == vec![replacement.clone()]).then_some(s)
    })
    .await;
    assert_eq!(s.pool.desired, 2);
    assert_eq!(moto.instances("test").await.len(), 3, "nothing launched");
}

/// Runs one of the deployment kit's scripts against the emulator: whether it succeeded, and
/// what it printed.
fn kit_result(moto: &Moto, script: &str, args: &[&str]) -> (bool, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    run(
        std::process::Command::new(root.join("scripts/aws").join(script)).args(args),
        moto,
    )
}

fn run(command: &mut std::process::Command, moto: &Moto) -> (bool, String) {
    let out = command
        .envs(moto.client_env())
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_PAGER", "")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn kit(moto: &Moto, script: &str, args: &[&str]) -> String {
    let (ok, text) = kit_result(moto, script, args);
    assert!(ok, "scripts/aws/{script} failed:\n{text}");
    text
}

/// The AWS CLI against the emulator, for what the SDK clients here do not cover.
fn aws_cli(moto: &Moto, args: &[&str]) -> String {
    let (ok, text) = run(std::process::Command::new("aws").args(args), moto);
    assert!(ok, "aws {args:?} failed:\n{text}");
    text
}

/// An emulator for the kit, the directory it writes to, and a release for it to upload.
async fn kit_emulator() -> (Moto, tempfile::TempDir, std::path::PathBuf) {
    let moto = Moto::start(&[]).await;
    let out = tempfile::tempdir().unwrap();
    let release = out.path().join("release.tar.gz");
    std::fs::write(&release, b"not a real release; the emulator boots nothing").unwrap();
    (moto, out, release)
}

#[tokio::test]
async fn the_bootstrap_makes_a_deployment_the_control_plane_runs_and_teardown_removes_it() {
    let (moto, out, release) = kit_emulator().await;
    let certificate = aws_cli(
        &moto,
        &[
            "acm",
            "request-certificate",
            "--domain-name",
            "gallery.example.com",
            "--query",
            "CertificateArn",
            "--output",
            "text",
        ],
    );
    let database_url = "mysql://gallery:secret@db.example:3306/gallery".to_owned();
    let mut args = vec![
        "--region",
        "us-east-1",
        "--deployment",
        "kit",
        "--instance-type",
        "t3.small",
        "--database-url",
        &database_url,
        "--mail-from",
        "gallery@example.com",
        "--operator",
        OPERATOR,
        "--release",
        release.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ];
    let (ok, text) = kit_result(&moto, "bootstrap", &args);
    assert!(
        !ok && text.contains("--certificate-arn") && text.contains("--http-only"),
        "plain HTTP only when asked for:\n{text}"
    );
    args.extend(["--certificate-arn", certificate.trim()]);
    let printed = kit(&moto, "bootstrap", &args);
    for made in [
        "BUCKET",
        "TARGET_GROUP",
        "ALB",
        "LISTENER",
        "LAUNCH_TEMPLATE",
        "WORKER_SG",
        "CONTROL_POLICY",
        "LOG_GROUP",
    ] {
        assert!(
            printed.contains(&format!("made {made}")),
            "{made} missing from:\n{printed}"
        );
    }
    // HTTPS with the certificate, plain HTTP redirected to it, the workers' internals not
    // routed from the Internet.
    let elb = moto.elb();
    let albs = elb.describe_load_balancers().send().await.unwrap();
    let alb = albs.load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_owned();
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(&alb)
        .send()
        .await
        .unwrap();
    let https = listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(443))
        .expect("an HTTPS listener");
    assert_eq!(https.protocol().map(|p| p.as_str()), Some("HTTPS"));
    assert_eq!(
        https.certificates()[0].certificate_arn(),
        Some(certificate.trim())
    );
    let http = listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(80))
        .expect("an HTTP listener");
    assert_eq!(
        http.default_actions()[0].r#type().map(|t| t.as_str()),
        Some("redirect")
    );
    let rules = elb
        .describe_rules()
        .listener_arn(https.listener_arn().unwrap())
        .send()
        .await
        .unwrap();
    for internal in ["/metrics", "/readyz"] {
        assert!(
            rules.rules().iter().any(|r| {
                r.conditions()
                    .iter()
                    .any(|c| c.values().contains(&internal.to_owned()))
                    && r.actions()[0].r#type().map(|t| t.as_str()) == Some("fixed-response")
            }),
            "{internal} is answered by the ALB, not a worker: {rules:?}"
        );
    }

    // A database the kit cannot find: it says what to open.
    assert!(
        printed.contains("db.example is no RDS instance") && printed.contains("port 3306"),
        "{printed}"
    );

    // Workers boot the newest Amazon Linux at each launch, a burstable type in standard
    // credits, and ship their logs to a group that outlives them.
    let template: serde_json::Value = serde_json::from_str(&aws_cli(
        &moto,
        &[
            "ec2",
            "describe-launch-template-versions",
            "--launch-template-name",
            "kit-worker",
            "--query",
            "LaunchTemplateVersions[0].LaunchTemplateData",
            "--output",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(
        template["ImageId"],
        "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    );
    assert_eq!(template["CreditSpecification"]["CpuCredits"], "standard");
    let user_data = {
        use std::io::Write as _;
        let mut decode = std::process::Command::new("base64")
            .arg("-d")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        decode
            .stdin
            .take()
            .unwrap()
            .write_all(template["UserData"].as_str().unwrap().as_bytes())
            .unwrap();
        String::from_utf8(decode.wait_with_output().unwrap().stdout).unwrap()
    };
    assert!(
        user_data.contains(r#"LOG_GROUP=/gallery/kit"#)
            && user_data.contains("amazon-cloudwatch-agent"),
        "{user_data}"
    );
    let groups = aws_cli(
        &moto,
        &[
            "logs",
            "describe-log-groups",
            "--log-group-name-prefix",
            "/gallery/kit",
            "--query",
            "logGroups[].[logGroupName,retentionInDays]",
            "--output",
            "text",
        ],
    );
    assert_eq!(
        groups.split_whitespace().collect::<Vec<_>>(),
        ["/gallery/kit", "30"]
    );
    // The sending domain is set up for DKIM, not the bare address alone.
    aws_cli(
        &moto,
        &[
            "sesv2",
            "get-email-identity",
            "--email-identity",
            "example.com",
        ],
    );

    let toml = std::fs::read_to_string(out.path().join("manager.toml")).unwrap();
    assert!(
        toml.contains(r#"aws_region = "us-east-1""#),
        "the region is the deployment's, not whatever the operator's default is:\n{toml}"
    );
    assert!(
        !toml.contains("secret"),
        "no secret in the generated configuration:\n{toml}"
    );

    // The generated configuration runs a pool: a worker from the launch template, registered.
    let db = fresh_database("aws_kit").await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = moto.client_env();
    env.push((
        "GALLERY_CONFIG",
        out.path().join("gallery.toml").to_str().unwrap().to_owned(),
    ));
    let mut cp = ControlPlane::spawn_with(
        &db,
        dir.path(),
        &toml,
        gallery_tests::free_port(),
        gallery_tests::free_port(),
        &env,
    );
    let http = reqwest::Client::new();
    cp.wait_api(&http).await;
    let token = login(&cp, &moto, &http).await;
    let s = wait_until("a healthy worker", Duration::from_secs(30), || async {
        let s = status(&cp, &http, &token).await;
        (healthy_ids(&s).len() == 1).then_some(s)
    })
    .await;
    let id = healthy_ids(&s)[0].clone();
    let described = moto
        .ec2()
        .describe_instances()
        .instance_ids(&id)
        .send()
        .await
        .unwrap();
    let instance = &described.reservations()[0].instances()[0];
    let template = instance
        .tags()
        .iter()
        .find(|t| t.key() == Some("aws:ec2launchtemplate:id"))
        .and_then(|t| t.value());
    assert!(
        template.is_some_and(|t| toml.contains(t)),
        "launched from the bootstrap's template: {template:?}"
    );
    let tg = toml
        .lines()
        .find_map(|l| l.strip_prefix("aws_target_group_arn = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    // (A warm standby instance may be registered too while it boots.)
    assert!(
        moto.targets(&tg)
            .await
            .contains(&(id.clone(), "healthy".to_owned())),
        "{:?}",
        moto.targets(&tg).await
    );
    cp.terminate().await;

    // The control plane's policy attached where the README says, and a parameter someone
    // removed by hand already: teardown detaches the one and passes over the other.
    aws_cli(&moto, &["iam", "create-user", "--user-name", "operator"]);
    let policy = std::fs::read_to_string(out.path().join("resources.env"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CONTROL_POLICY=").map(str::to_owned))
        .unwrap();
    aws_cli(
        &moto,
        &[
            "iam",
            "attach-user-policy",
            "--user-name",
            "operator",
            "--policy-arn",
            &policy,
        ],
    );
    aws_cli(
        &moto,
        &["ssm", "delete-parameter", "--name", "/kit/secret_key"],
    );

    // Teardown removes the pool and everything made, but keeps the photos.
    let printed = kit(&moto, "teardown", &["--out", out.path().to_str().unwrap()]);
    assert!(printed.contains("already gone PARAMETER"), "{printed}");
    assert!(printed.contains("removed CONTROL_POLICY"), "{printed}");
    // Run again (as after a teardown that stopped half-way): everything is already gone.
    std::fs::rename(
        out.path().join("resources.env.removed"),
        out.path().join("resources.env"),
    )
    .unwrap();
    let again = kit(&moto, "teardown", &["--out", out.path().to_str().unwrap()]);
    for name in [
        "LAUNCH_TEMPLATE",
        "CONTROL_POLICY",
        "WORKER_ROLE",
        "SECURITY_GROUP",
        "LOG_GROUP",
    ] {
        assert!(
            again.contains(&format!("already gone {name}")),
            "{name} is not removed twice:\n{again}"
        );
    }
    assert!(
        moto.instances("kit")
            .await
            .iter()
            .all(|(_, s)| s == "terminated"),
        "{:?}",
        moto.instances("kit").await
    );
    assert!(elb
        .describe_load_balancers()
        .send()
        .await
        .unwrap()
        .load_balancers()
        .is_empty());
    assert!(elb
        .describe_target_groups()
        .send()
        .await
        .unwrap()
        .target_groups()
        .is_empty());
    let templates = moto.ec2().describe_launch_templates().send().await.unwrap();
    assert!(templates.launch_templates().is_empty());
    let buckets = reqwest::get(format!("{}/moto-api/data.json", moto.endpoint()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(buckets.contains("kit-photos-"), "the photo bucket is kept");
    let groups = aws_cli(
        &moto,
        &[
            "logs",
            "describe-log-groups",
            "--log-group-name-prefix",
            "/gallery/kit",
            "--query",
            "logGroups[].logGroupName",
            "--output",
            "text",
        ],
    );
    assert!(groups.trim().is_empty(), "{groups}");
}

/// An RDS database in a security group of its own: the bootstrap finds it by the URL's host
/// and lets the workers in on its port; teardown takes only that rule away. (Apart from the
/// kit's main test: the emulator's state dump, which reads its mail, fails once RDS is used.)
#[tokio::test]
async fn the_workers_are_let_into_an_rds_database_and_out_again() {
    let (moto, out, release) = kit_emulator().await;
    // The operator's database: an RDS instance in a security group of its own.
    let vpc = aws_cli(
        &moto,
        &[
            "ec2",
            "describe-vpcs",
            "--filters",
            "Name=is-default,Values=true",
            "--query",
            "Vpcs[0].VpcId",
            "--output",
            "text",
        ],
    );
    let db_sg = aws_cli(
        &moto,
        &[
            "ec2",
            "create-security-group",
            "--group-name",
            "database",
            "--description",
            "the operator's database",
            "--vpc-id",
            vpc.trim(),
            "--query",
            "GroupId",
            "--output",
            "text",
        ],
    )
    .trim()
    .to_owned();
    let endpoint = moto.endpoint();
    let db_host = aws_cli(
        &moto,
        &[
            "rds",
            // The CLI's rds commands pass over AWS_ENDPOINT_URL.
            "--endpoint-url",
            &endpoint,
            "create-db-instance",
            "--db-instance-identifier",
            "gallery-db",
            "--engine",
            "mysql",
            "--db-instance-class",
            "db.t3.micro",
            "--allocated-storage",
            "20",
            "--master-username",
            "admin",
            "--master-user-password",
            "not-a-real-one",
            "--vpc-security-group-ids",
            &db_sg,
            "--query",
            "DBInstance.Endpoint.Address",
            "--output",
            "text",
        ],
    )
    .trim()
    .to_owned();
    let database_url = format!("mysql://gallery:p%40ss@{db_host}:3306/gallery");
    let printed = kit(
        &moto,
        "bootstrap",
        &[
            "--region",
            "us-east-1",
            "--deployment",
            "rdskit",
            "--database-url",
            &database_url,
            "--mail-from",
            "gallery@example.com",
            "--operator",
            OPERATOR,
            "--release",
            release.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--http-only",
        ],
    );
    assert!(printed.contains("made DATABASE_INGRESS"), "{printed}");
    let resources = std::fs::read_to_string(out.path().join("resources.env")).unwrap();
    let worker_sg = resources
        .lines()
        .find_map(|l| l.strip_prefix("WORKER_SG="))
        .unwrap()
        .to_owned();
    let database_ingress = || {
        aws_cli(
            &moto,
            &[
                "ec2",
                "describe-security-groups",
                "--group-ids",
                &db_sg,
                "--query",
                "SecurityGroups[0].IpPermissions[?FromPort==`3306`].UserIdGroupPairs[].GroupId",
                "--output",
                "text",
            ],
        )
    };
    assert_eq!(database_ingress().trim(), worker_sg);

    let printed = kit(&moto, "teardown", &["--out", out.path().to_str().unwrap()]);
    assert!(printed.contains("removed DATABASE_INGRESS"), "{printed}");
    assert_eq!(database_ingress().trim(), "", "the workers' way in is gone");
    assert!(
        printed
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["removed", "SECURITY_GROUP", worker_sg.as_str()]),
        "the workers' group, no longer named by the database's, is deleted:\n{printed}"
    );
}

#[test]
fn the_release_tarball_is_roots_and_open_to_the_service_whoever_packed_it() {
    use std::os::unix::fs::PermissionsExt;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A staging directory as mktemp and a umask of 077 leave it.
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(stage.join("models")).unwrap();
    std::fs::write(stage.join("gallery-server"), b"#!/bin/sh\n").unwrap();
    std::fs::write(stage.join("models/m.onnx"), b"model").unwrap();
    for (path, mode) in [
        ("", 0o700),
        ("models", 0o700),
        ("gallery-server", 0o700),
        ("models/m.onnx", 0o600),
    ] {
        std::fs::set_permissions(stage.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let tarball = dir.path().join("release.tar.gz");
    let packed = std::process::Command::new(root.join("scripts/aws/pack-release"))
        .args([&stage, &tarball])
        .status()
        .unwrap();
    assert!(packed.success());
    let listing = std::process::Command::new("tar")
        .args(["-tvzf", tarball.to_str().unwrap()])
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    let entries: Vec<(&str, &str, &str)> = listing
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0], f[1], *f.last().unwrap())
        })
        .collect();
    assert_eq!(
        entries,
        vec![
            ("drwxr-xr-x", "0/0", "./"),
            ("-rwxr-xr-x", "0/0", "./gallery-server"),
            ("drwxr-xr-x", "0/0", "./models/"),
            ("-rw-r--r--", "0/0", "./models/m.onnx"),
        ],
        "{listing}"
    );
}

#[test]
fn the_control_plane_may_tag_instances_only_as_it_launches_them_or_mark_them_draining() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("scripts/aws/iam/control-plane.json")).unwrap(),
    )
    .unwrap();
    let actions = |s: &serde_json::Value| -> Vec<String> {
        match &s["Action"] {
            serde_json::Value::String(a) => vec![a.clone()],
            serde_json::Value::Array(a) => {
                a.iter().map(|v| v.as_str().unwrap().to_owned()).collect()
            }
            _ => vec![],
        }
    };
    let tagging: Vec<&serde_json::Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| actions(s).iter().any(|a| a == "ec2:CreateTags"))
        .collect();
    assert!(!tagging.is_empty());
    for s in tagging {
        assert_eq!(
            actions(s),
            vec!["ec2:CreateTags"],
            "tagging stands alone: {s}"
        );
        let c = &s["Condition"];
        let on_launch = c["StringEquals"]["ec2:CreateAction"] == "RunInstances";
        let draining_only = c["ForAllValues:StringEquals"]["aws:TagKeys"]
            == serde_json::json!(["gallery:draining-since"])
            && c["StringEquals"]["aws:ResourceTag/gallery:deployment"].is_string();
        assert!(
            on_launch || draining_only,
            "CreateTags only on launch, or only the draining mark on this deployment's instances: {s}"
        );
    }
}

#[test]
fn the_kits_iam_policies_pass_an_audit_that_catches_a_wrong_one() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let lint = root.join("scripts/aws/lint-policies");
    let out = std::process::Command::new(&lint).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the kit's policies:\n{text}");
    assert!(
        text.contains("control-plane.json: no findings")
            && text.contains("worker.json: no findings"),
        "{text}"
    );

    // The audit can fail: a misspelt action, and a condition key the action does not have.
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.json");
    std::fs::write(
        &wrong,
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "arn:aws:s3:::${BUCKET}/photos/*"},
            {"Effect": "Allow", "Action": "ec2:TerminateInstances",
             "Resource": "arn:aws:ec2:${REGION}:${ACCOUNT}:instance/*",
             "Condition": {"StringEquals": {"ses:FromAddress": "${MAIL_FROM}"}}}]}"#,
    )
    .unwrap();
    let out = std::process::Command::new(&lint)
        .arg(&wrong)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("UNKNOWN_ACTION") && text.contains("UNKNOWN_CONDITION_FOR_ACTION"),
        "{text}"
    );
}

/// The release `scripts/test` built with `scripts/aws/build-release`, as the bootstrap ships it.
#[test]
fn the_shipped_release_loads_with_amazon_linux_2023s_glibc_and_runs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let release = std::env::var("GALLERY_TEST_RELEASE").expect(
        "GALLERY_TEST_RELEASE: the tarball of scripts/aws/build-release (scripts/test sets it)",
    );
    let dir = tempfile::tempdir().unwrap();
    let unpacked = std::process::Command::new("tar")
        .args(["--no-same-owner", "-xzf", &release, "-C"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(unpacked.success());
    let check = |binary: &std::path::Path, max: &str| {
        let out = std::process::Command::new(root.join("scripts/aws/check-glibc"))
            .arg(binary)
            .arg(max)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let worker = dir.path().join("gallery-server");
    let (ok, text) = check(&worker, "2.34");
    assert!(ok, "{text}");
    for lib in std::fs::read_dir(dir.path().join("lib/openvino")).unwrap() {
        let lib = lib.unwrap().path();
        let (ok, text) = check(&lib, "2.34");
        assert!(ok, "{text}");
    }
    // The check refuses what needs more than it allows, naming the symbols.
    let (ok, text) = check(&worker, "2.16");
    assert!(!ok && text.contains("needs GLIBC_2."), "{text}");

    // The binary zig linked runs (here, on a newer glibc, as on the workers' older one).
    let out = std::process::Command::new(&worker)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && help.contains("serve"), "{help}");
    assert!(dir
        .path()
        .join("models/ch_PP-OCRv4_det_infer.folded.onnx")
        .is_file());
}

/// The worker's systemd unit, as the user data writes it: `Key=value` lines.
fn worker_unit() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let script = std::fs::read_to_string(root.join("scripts/aws/user-data.sh")).unwrap();
    let unit = script
        .split_once("<<'UNIT'\n")
        .and_then(|(_, rest)| rest.split_once("\nUNIT\n"))
        .expect("the unit's here-document in user-data.sh")
        .0;
    unit.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The unit's sandbox, reproduced with bubblewrap: the whole system read-only under
/// `ProtectSystem=strict`, writable only where `ReadWritePaths` says (the data directory,
/// which `data_dir` stands in for), a private `/tmp` only with `PrivateTmp=true`.
#[tokio::test]
async fn the_worker_takes_uploads_inside_its_units_sandbox() {
    let unit = worker_unit();
    let setting = |key: &str| {
        unit.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let user_data = std::fs::read_to_string(root.join("scripts/aws/user-data.sh")).unwrap();
    assert!(
        user_data.contains(&format!("GALLERY_DATA_DIR={}\n", setting("ReadWritePaths"))),
        "the writable path is the worker's data directory"
    );
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let mut sandbox: Vec<String> = ["bwrap", "--die-with-parent"].map(String::from).to_vec();
    let whole = if setting("ProtectSystem") == "strict" {
        "--ro-bind"
    } else {
        "--bind"
    };
    sandbox.extend([whole, "/", "/", "--dev", "/dev", "--proc", "/proc"].map(String::from));
    if setting("PrivateTmp") == "true" {
        sandbox.extend(["--tmpfs", "/tmp", "--tmpfs", "/var/tmp"].map(String::from));
    }
    sandbox.extend(["--bind".to_owned(), data_dir.clone(), data_dir.clone()]);
    // The model, read-only as in /opt/gallery (here it may live under the hidden /tmp).
    let model_dir = std::path::Path::new(&gallery_tests::env("GALLERY_MODEL_PATH"))
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    sandbox.extend(["--ro-bind".to_owned(), model_dir.clone(), model_dir]);

    let db = fresh_database("sandbox").await;
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut worker = Worker::spawn_in(&sandbox, &db, data.path(), &[]);
    worker.wait_healthy(&http).await;
    let form = || {
        reqwest::multipart::Form::new()
            .text("username", "sam")
            .text("password", "pass-word-1")
    };
    let res = http
        .post(worker.url("/api/register"))
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let photo = std::fs::read(gallery_tests::testdata("photo000.jpg")).unwrap();
    let part = || {
        reqwest::multipart::Part::bytes(photo.clone())
            .file_name("photo000.jpg")
            .mime_str("image/jpeg")
            .unwrap()
    };
    let res = http
        .post(worker.url("/api/upload"))
        .multipart(form().part("file", part()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    // The page's form is spooled to the temporary directory before it is read.
    let res = gallery_tests::browser_login(&http, |p| worker.url(p), "sam", "pass-word-1").await;
    assert_eq!(res.status(), 200);
    let upload_page = gallery_tests::page(&http, &worker.url("/upload")).await;
    let csrf = gallery_tests::hidden(&upload_page, "csrf");
    let res = http
        .post(worker.url("/upload"))
        .multipart(
            reqwest::multipart::Form::new()
                .text("csrf", csrf)
                .part("file", part()),
        )
        .send()
        .await
        .unwrap();
    let landed = res.url().path().to_owned();
    let text = res.text().await.unwrap();
    assert!(landed.starts_with("/photos/"), "{landed}: {text}");
    let photo_page = worker.url(&landed);
    let page = wait_until(
        "the photo processed inside the sandbox",
        Duration::from_secs(120),
        || {
            let http = &http;
            let photo_page = &photo_page;
            async move {
                let page = gallery_tests::page(http, photo_page).await;
                assert!(!page.contains(r#"data-state="failed""#), "{page}");
                page.contains("With the ").then_some(page)
            }
        },
    )
    .await;
    assert!(page.contains("photo000.jpg"), "{page}");
}
