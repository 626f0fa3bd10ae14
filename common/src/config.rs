//! One typed configuration from `gallery.toml` (or `$GALLERY_CONFIG`) plus `GALLERY_*`
//! environment variables, the latter winning.
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// A library setting's path; an empty one (GALLERY_OPENVINO_LIBRARY=) counts as unset.
pub fn library(setting: &Option<PathBuf>) -> Option<&Path> {
    setting.as_deref().filter(|p| !p.as_os_str().is_empty())
}

/// Floating-point format of detection arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    Bf16,
    /// Whichever is fastest on the CPU the worker finds: bf16 where it has bf16 units (as
    /// OpenVINO reports them), else f32; f32 on the other runtimes. The worker logs its choice.
    Auto,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `mysql://user:password@host:port/database`.
    pub database_url: String,
    /// A directory path, or `s3://bucket[/prefix]`. Defaults to `<data_dir>/objects`.
    pub store: Option<String>,
    /// Endpoint for S3-compatible servers other than AWS itself.
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    /// Where the worker keeps its secret key (and, by default, the photos).
    pub data_dir: PathBuf,
    pub address: IpAddr,
    pub port: u16,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// Largest accepted decoded width or height, in pixels.
    pub max_image_side: u32,
    /// Largest accepted decoded image, in pixels (width × height).
    pub max_image_pixels: u64,
    /// Hex or base64 secret shared by every worker of a deployment (cookies and media URLs).
    /// When unset, one is generated on first run and kept in `<data_dir>/secret.key`.
    pub secret_key: Option<String>,
    pub model_path: PathBuf,
    /// A YOLO-family ONNX model (`[1, 4 + classes, N]` output): when set, photos get labelled
    /// object boxes instead of text boxes.
    pub yolo_model_path: Option<PathBuf>,
    /// Smallest class score of a kept object, 0–1.
    pub yolo_confidence: f32,
    /// Overlap (IoU) above which the weaker of two same-class boxes is dropped.
    pub yolo_iou: f32,
    /// The ONNX Runtime library (`libonnxruntime.so.*`) to run detection models with;
    /// unset, they run on rten (pure Rust).
    pub onnxruntime_library: Option<PathBuf>,
    /// The OpenVINO C library (`libopenvino_c.so.*`, with the rest of OpenVINO's libraries
    /// beside it) to run detection models with; fastest on x86. Not with `onnxruntime_library`.
    pub openvino_library: Option<PathBuf>,
    /// The arithmetic OpenVINO detects with: `f32`, the model's own; `bf16`, about twice as
    /// fast on CPUs with bf16 units (boxes move by a few pixels, the same found:
    /// docs/bench-history.md #7); or `auto`, bf16 where the CPU has bf16 units, else f32 (what
    /// the deployment scripts set).
    pub detector_precision: Precision,
    /// Threads for detector inference inside one job.
    pub detector_threads: usize,
    /// Uploads processed at once; 0 means one per core.
    pub pipeline_workers: usize,
    /// Uploads allowed to wait for a slot to be checked (decoded) before the worker answers
    /// 503; processing waits in the backlog instead.
    pub pipeline_queue: usize,
    /// Processors taking photos from the backlog; unset, one per `pipeline_workers`. 0 makes
    /// a worker that only accepts uploads (others process them).
    pub processors: Option<usize>,
    /// Warm standby: load everything and answer health checks, but process nothing until
    /// SIGUSR1 (the control plane's promotion). Set by the local provider.
    pub standby: bool,
    /// Photos accepted and not yet processed (queued or processing) beyond which uploads are
    /// answered 503 with Retry-After: the backlog is bounded by what the store can hold.
    pub backlog_limit: u64,
    /// How long a processor's claim on a photo holds without being renewed; a worker that
    /// dies holding claims gives them back after this.
    pub processing_lease_secs: u64,
    /// Tries to process a photo (with growing pauses between) before it is marked failed.
    pub processing_attempts: u32,
    /// Lifetime of a signed or presigned media URL, in seconds.
    pub media_url_ttl_secs: u64,
    /// Photos per page in a user's grid.
    pub page_size: u32,
    /// CloudWatch namespace to publish `HttpRequestCount` and `CPUUtilization` to (the aws
    /// deployment's metrics); unset, nothing is published.
    pub metrics_namespace: Option<String>,
    /// Seconds between two CloudWatch publications (each holds one point per metric).
    pub metrics_interval_secs: u64,
    /// This worker's EC2 instance id, the metrics' `InstanceId` dimension; by default asked
    /// of the instance metadata service.
    pub instance_id: Option<String>,
    /// Peers whose `X-Forwarded-For` names the client (the deployment's balancer: the local
    /// one on loopback, an ALB inside the VPC). From anyone else the header is ignored, so
    /// a client cannot pick the address its sign-in failures are counted against.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Password hashes computed at once (19 MiB and ~30 ms of CPU each); 0 means one per
    /// core. `password_queue` more may wait; beyond, sign-ins are answered 503.
    pub password_checks: usize,
    pub password_queue: usize,
    /// Mark cookies `Secure` (browsers then send them over HTTPS only): for a deployment
    /// whose users reach it over HTTPS, as behind an ALB with a certificate.
    pub secure_cookies: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: String::new(),
            store: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            data_dir: PathBuf::from(".data"),
            address: IpAddr::from([127, 0, 0, 1]),
            port: 8000,
            max_upload_bytes: 20 * 1024 * 1024,
            max_image_side: 20_000,
            max_image_pixels: 50_000_000,
            secret_key: None,
            model_path: PathBuf::from("models/ch_PP-OCRv4_det_infer.folded.onnx"),
            yolo_model_path: None,
            yolo_confidence: 0.25,
            yolo_iou: 0.45,
            onnxruntime_library: None,
            openvino_library: None,
            detector_precision: Precision::F32,
            detector_threads: 1,
            pipeline_workers: 0,
            pipeline_queue: 16,
            processors: None,
            standby: false,
            backlog_limit: 10_000,
            processing_lease_secs: 30,
            processing_attempts: 3,
            media_url_ttl_secs: 300,
            page_size: 24,
            metrics_namespace: None,
            metrics_interval_secs: 10,
            instance_id: None,
            trusted_proxies: vec![
                "127.0.0.0/8".parse().expect("valid network"),
                "::1/128".parse().expect("valid network"),
            ],
            password_checks: 0,
            password_queue: 32,
            secure_cookies: false,
        }
    }
}

/// Where the store lives, parsed from [`Config::store`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Dir(PathBuf),
    S3 { bucket: String, prefix: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads `$GALLERY_CONFIG` (default `gallery.toml`, optional) and `GALLERY_*` variables.
    pub fn load() -> Result<Config, ConfigError> {
        Self::from_figment(Self::sources())
    }

    /// The defaults, then `$GALLERY_CONFIG` (default `gallery.toml`, optional), then
    /// `GALLERY_*` variables.
    fn sources() -> Figment {
        let file = std::env::var("GALLERY_CONFIG").unwrap_or_else(|_| "gallery.toml".into());
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(file))
            .merge(Self::env())
    }

    /// The configuration the local provider's workers run with: this process's file and
    /// environment, which they inherit, with the database and data directory it gives them.
    pub fn of_local_workers(database_url: &str, data_dir: &Path) -> Result<Config, ConfigError> {
        Self::from_figment(
            Self::sources()
                .merge(Serialized::default("database_url", database_url))
                .merge(Serialized::default("data_dir", data_dir)),
        )
    }

    /// `GALLERY_<SETTING>` for each setting. Other `GALLERY_*` variables belong to scripts
    /// and tests (`GALLERY_CONFIG`, `GALLERY_DB_PORT`, …) and are not settings, so only known
    /// keys are taken here; unknown keys in the file are still an error.
    pub fn env() -> Env {
        env_for(Config::default())
    }

    pub fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(one_line(&e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError::Invalid(format!("`{key}` {why}")));
        if self.database_url.trim().is_empty() {
            return bad("database_url", "is missing (set GALLERY_DATABASE_URL, e.g. mysql://user:pass@127.0.0.1:3306/gallery)");
        }
        if !self.database_url.starts_with("mysql://") {
            return bad("database_url", "must start with mysql://");
        }
        if self.max_upload_bytes == 0 {
            return bad("max_upload_bytes", "must be greater than 0");
        }
        if self.max_image_side < 64 {
            return bad("max_image_side", "must be at least 64");
        }
        if self.max_image_pixels < 4096 {
            return bad("max_image_pixels", "must be at least 4096");
        }
        if self.media_url_ttl_secs == 0 {
            return bad("media_url_ttl_secs", "must be greater than 0");
        }
        // A presigned link dies with the role credentials that signed it, and those are
        // replaced hourly or so; the store renews them while they still outlast a link.
        if self.media_url_ttl_secs > 3600
            && matches!(self.store_location(), Ok(StoreLocation::S3 { .. }))
        {
            return bad(
                "media_url_ttl_secs",
                "must be at most 3600 with an S3 store (a presigned link cannot outlive the credentials that signed it)",
            );
        }
        if self.processing_lease_secs < 5 {
            return bad(
                "processing_lease_secs",
                "must be at least 5 (a claim is renewed every third of it)",
            );
        }
        if self.processing_attempts == 0 {
            return bad("processing_attempts", "must be at least 1");
        }
        if self.page_size == 0 || self.page_size > 500 {
            return bad("page_size", "must be between 1 and 500");
        }
        if self.detector_threads == 0 {
            return bad("detector_threads", "must be at least 1");
        }
        if !(0.0..1.0).contains(&self.yolo_confidence) || !(0.0..=1.0).contains(&self.yolo_iou) {
            return bad("yolo_confidence/yolo_iou", "must be between 0 and 1");
        }
        if self.metrics_interval_secs == 0 {
            return bad("metrics_interval_secs", "must be at least 1");
        }
        self.check_detector()?;
        self.store_location()?;
        Ok(())
    }

    /// The detection settings on their own (what `gallery-server detect` reads).
    pub fn check_detector(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError::Invalid(format!("`{key}` {why}")));
        let set = |p: &Option<PathBuf>| library(p).is_some();
        if set(&self.onnxruntime_library) && set(&self.openvino_library) {
            return bad("openvino_library", "and `onnxruntime_library` are both set: detection runs on one of them, unset the other");
        }
        if self.detector_precision == Precision::Bf16 && !set(&self.openvino_library) {
            return bad(
                "detector_precision",
                "bf16 needs `openvino_library`: only OpenVINO detects in bf16",
            );
        }
        Ok(())
    }

    pub fn store_location(&self) -> Result<StoreLocation, ConfigError> {
        match self.store.as_deref() {
            None | Some("") => Ok(StoreLocation::Dir(self.data_dir.join("objects"))),
            Some(s) if s.starts_with("s3://") => {
                let rest = &s["s3://".len()..];
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(ConfigError::Invalid(format!(
                        "`store` {s:?} names no bucket"
                    )));
                }
                let prefix = prefix.trim_matches('/');
                let prefix = if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                };
                Ok(StoreLocation::S3 {
                    bucket: bucket.into(),
                    prefix,
                })
            }
            Some(s) if s.contains("://") => Err(ConfigError::Invalid(format!(
                "`store` {s:?} is neither a directory nor s3://bucket/prefix"
            ))),
            Some(dir) => Ok(StoreLocation::Dir(PathBuf::from(dir))),
        }
    }

    pub fn pipeline_workers(&self) -> usize {
        if self.pipeline_workers > 0 {
            self.pipeline_workers
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }
    }
}

/// `GALLERY_<KEY>` for the keys `defaults` has, and no other `GALLERY_*` variable.
fn env_for<T: Serialize>(defaults: T) -> Env {
    let known: Vec<String> = match serde_json::to_value(defaults) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => unreachable!("configurations serialise to objects"),
    };
    Env::prefixed("GALLERY_").filter(move |key| known.iter().any(|k| key == k.as_str()))
}

fn one_line(e: &figment::Error) -> String {
    e.to_string().replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figment(toml: &str) -> Figment {
        Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(toml))
    }

    #[test]
    fn missing_database_url_is_named() {
        let err = Config::from_figment(figment("")).unwrap_err().to_string();
        assert!(err.contains("database_url"), "{err}");
    }

    #[test]
    fn bad_types_and_unknown_keys_are_named() {
        let err = Config::from_figment(figment("database_url='mysql://x'\nport='eighty'"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("port"), "{err}");
        let err = Config::from_figment(figment("database_url='mysql://x'\nprot=80"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("prot"), "{err}");
    }

    #[test]
    fn s3_links_last_no_longer_than_role_credentials() {
        let long = "database_url='mysql://x'\nmedia_url_ttl_secs=7200";
        assert!(Config::from_figment(figment(long)).is_ok(), "signed by us");
        let err = Config::from_figment(figment(&format!("{long}\nstore='s3://b/p'")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("media_url_ttl_secs"), "{err}");
    }

    #[test]
    fn one_detection_library_at_most() {
        let both = "database_url='mysql://x'\nonnxruntime_library='/a/libonnxruntime.so'\nopenvino_library='/b/libopenvino_c.so'";
        let err = Config::from_figment(figment(both)).unwrap_err().to_string();
        assert!(
            err.contains("openvino_library") && err.contains("onnxruntime_library"),
            "{err}"
        );
        // An empty one is unset, as GALLERY_ONNXRUNTIME_LIBRARY= is meant to be.
        let one = "database_url='mysql://x'\nonnxruntime_library=''\nopenvino_library='/b/libopenvino_c.so'";
        assert!(Config::from_figment(figment(one)).is_ok());
    }

    #[test]
    fn bf16_is_for_openvino_only() {
        let err = Config::from_figment(figment(
            "database_url='mysql://x'\ndetector_precision='bf16'",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("detector_precision") && err.contains("openvino_library"),
            "{err}"
        );
        let ok = "database_url='mysql://x'\ndetector_precision='bf16'\nopenvino_library='/b/libopenvino_c.so'";
        assert_eq!(
            Config::from_figment(figment(ok))
                .unwrap()
                .detector_precision,
            Precision::Bf16
        );
        // `auto` is what the deployment scripts set, whatever the runtime: f32 where only f32 runs.
        let auto = "database_url='mysql://x'\ndetector_precision='auto'";
        assert_eq!(
            Config::from_figment(figment(auto))
                .unwrap()
                .detector_precision,
            Precision::Auto
        );
        let err = Config::from_figment(figment(
            "database_url='mysql://x'\ndetector_precision='f16'",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("detector_precision") || err.contains("f16"),
            "{err}"
        );
    }

    #[test]
    fn environment_sets_known_keys_and_leaves_others_alone() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("GALLERY_DATABASE_URL", "mysql://u:p@h/db");
            jail.set_env("GALLERY_PORT", "9000");
            jail.set_env("GALLERY_DB_PORT", "3307");
            jail.set_env("GALLERY_SERVER_BIN", "/x");
            let c = Config::from_figment(
                Figment::from(Serialized::defaults(Config::default())).merge(Config::env()),
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(
                (c.database_url.as_str(), c.port),
                ("mysql://u:p@h/db", 9000)
            );
            jail.set_env("GALLERY_TRUSTED_PROXIES", r#"["172.31.0.0/16"]"#);
            let c = Config::from_figment(
                Figment::from(Serialized::defaults(Config::default())).merge(Config::env()),
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(
                c.trusted_proxies,
                vec!["172.31.0.0/16".parse::<ipnet::IpNet>().unwrap()],
                "the AWS kit's setting (the VPC) replaces loopback"
            );
            jail.set_env("GALLERY_PORT", "nine");
            let err = Config::from_figment(
                Figment::from(Serialized::defaults(Config::default())).merge(Config::env()),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("PORT") || err.contains("port"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn store_locations() {
        let c = Config::from_figment(figment("database_url='mysql://x'\ndata_dir='/d'")).unwrap();
        assert_eq!(
            c.store_location().unwrap(),
            StoreLocation::Dir("/d/objects".into())
        );
        let c =
            Config::from_figment(figment("database_url='mysql://x'\nstore='s3://b/p/q/'")).unwrap();
        assert_eq!(
            c.store_location().unwrap(),
            StoreLocation::S3 {
                bucket: "b".into(),
                prefix: "p/q/".into()
            }
        );
        let c = Config::from_figment(figment("database_url='mysql://x'\nstore='s3://b'")).unwrap();
        assert_eq!(
            c.store_location().unwrap(),
            StoreLocation::S3 {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        assert!(Config::from_figment(figment("database_url='mysql://x'\nstore='s3://'")).is_err());
        assert!(Config::from_figment(figment("database_url='mysql://x'\nstore='gs://b'")).is_err());
    }
}

/// Where a deployment's workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Worker processes on this machine, behind the control plane's own balancer.
    Local,
    /// EC2 instances behind an ALB.
    Aws,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Local => "local",
            ProviderKind::Aws => "aws",
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The control plane's configuration: `manager.toml` (or `$GALLERY_MANAGER_CONFIG`) plus the
/// `GALLERY_*` variables that name its settings. Workers it launches inherit its
/// environment, so one `GALLERY_DATABASE_URL` serves both.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagerConfig {
    pub database_url: String,
    pub provider: ProviderKind,
    pub data_dir: PathBuf,
    pub control_address: IpAddr,
    pub control_port: u16,
    pub balancer_address: IpAddr,
    pub balancer_port: u16,
    /// Client connections the local balancer holds open at once; one more is answered 503
    /// and closed. Clamped at start to what the process's file limit allows.
    pub balancer_max_connections: usize,
    /// A client must send a whole request head within this time (also how long an idle
    /// keep-alive connection stays open), and an upload's body may make no progress for
    /// `balancer_body_timeout_secs` (408). A connection that moves no byte for
    /// `balancer_idle_timeout_secs` while nothing waits on a worker is closed.
    pub balancer_header_timeout_secs: f64,
    pub balancer_body_timeout_secs: f64,
    pub balancer_idle_timeout_secs: f64,
    /// A worker that has not answered a request within this time gets it cancelled (504).
    pub balancer_worker_timeout_secs: f64,
    /// The `gallery-server` binary; by default the one beside `manager-tui`.
    pub worker_bin: Option<PathBuf>,
    /// `local`: the memory one worker process may come to hold (its model and runtime at
    /// rest, photos decoding under load); no worker is started while the machine has less
    /// available, whatever the autoscaler wants.
    pub local_worker_memory_mib: u64,
    pub health_interval_secs: f64,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
    pub sample_interval_secs: f64,
    /// How often the autoscaler counts the backlog and the flow through it, and decides.
    pub decide_interval_secs: f64,
    /// How long a draining worker may finish its requests before it is told to stop.
    pub drain_timeout_secs: f64,
    /// A worker not healthy this long after launch is replaced.
    pub start_timeout_secs: f64,
    /// Operator e-mail addresses allowed to log in.
    pub operators: Vec<String>,
    pub otp_validity_secs: u64,
    pub token_ttl_secs: u64,
    /// One-time-password requests allowed per address and per client in `otp_window_secs`.
    pub otp_max_requests: u32,
    pub otp_window_secs: u64,
    /// How long the store's object count and size are reused before it is listed again
    /// (listing a bucket of millions of objects takes thousands of requests).
    pub totals_max_age_secs: f64,
    /// Starting policy; once the operator changes it, the stored one wins.
    pub policy: crate::autoscale::Policy,
    /// Sender of operator codes with SES v2 (a verified identity). The aws provider mails
    /// through SES; the local one writes to `<data_dir>/outbox`.
    pub mail_from: Option<String>,
    /// `aws`: the deployment's region (written by the kit); unset, the standard chain's.
    pub aws_region: Option<String>,
    /// `aws`: the target group of the ALB the workers serve behind.
    pub aws_target_group_arn: Option<String>,
    /// `aws`: launch template id (`lt-…`) or name for new workers. Without one, the image
    /// and the settings below describe them.
    pub aws_launch_template: Option<String>,
    pub aws_image_id: Option<String>,
    pub aws_instance_type: String,
    /// Subnets to spread new workers over (round robin).
    pub aws_subnets: Vec<String>,
    pub aws_security_groups: Vec<String>,
    /// A file whose contents become the instances' user data (scripts/aws/user-data.sh).
    pub aws_user_data_file: Option<PathBuf>,
    /// Instance profile name or ARN for the workers (their CloudWatch and S3 permissions).
    pub aws_instance_profile: Option<String>,
    /// Port the workers listen on, registered with the target group.
    pub aws_worker_port: u16,
    /// Value of the `gallery:deployment` tag on this deployment's instances: the control
    /// plane manages those and only those, and adopts them after a restart.
    pub aws_deployment: String,
    /// Public URL shown to the operator; by default the ALB's DNS name.
    pub aws_public_url: Option<String>,
    /// CloudWatch namespace the workers publish to (their `metrics_namespace`).
    pub metrics_namespace: String,
    /// `aws`: seconds between two reads of the workers' metrics for the CPU policy and the
    /// charts. GetMetricData is billed per metric read: every 10 s it costs about $8 per worker
    /// a month, every 60 s a sixth of that. The demand policy's signals (backlog, arrivals,
    /// rate per worker) come from the database, not from here.
    pub metrics_read_interval_secs: f64,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            database_url: String::new(),
            provider: ProviderKind::Local,
            data_dir: PathBuf::from(".data"),
            control_address: IpAddr::from([127, 0, 0, 1]),
            control_port: 5000,
            balancer_address: IpAddr::from([127, 0, 0, 1]),
            balancer_port: 8080,
            balancer_max_connections: 4096,
            balancer_header_timeout_secs: 10.0,
            balancer_body_timeout_secs: 30.0,
            balancer_idle_timeout_secs: 30.0,
            balancer_worker_timeout_secs: 300.0,
            worker_bin: None,
            local_worker_memory_mib: 512,
            health_interval_secs: 2.0,
            unhealthy_threshold: 2,
            healthy_threshold: 2,
            sample_interval_secs: 5.0,
            decide_interval_secs: 2.0,
            drain_timeout_secs: 30.0,
            start_timeout_secs: 120.0,
            operators: Vec::new(),
            otp_validity_secs: 60,
            token_ttl_secs: 12 * 3600,
            otp_max_requests: 5,
            otp_window_secs: 600,
            totals_max_age_secs: 30.0,
            policy: crate::autoscale::Policy::default(),
            mail_from: None,
            aws_region: None,
            aws_target_group_arn: None,
            aws_launch_template: None,
            aws_image_id: None,
            aws_instance_type: "t3.small".into(),
            aws_subnets: Vec::new(),
            aws_security_groups: Vec::new(),
            aws_user_data_file: None,
            aws_instance_profile: None,
            aws_worker_port: 8000,
            aws_deployment: "gallery".into(),
            aws_public_url: None,
            metrics_namespace: "Gallery".into(),
            metrics_read_interval_secs: 60.0,
        }
    }
}

impl ManagerConfig {
    pub fn load() -> Result<ManagerConfig, ConfigError> {
        let file =
            std::env::var("GALLERY_MANAGER_CONFIG").unwrap_or_else(|_| "manager.toml".into());
        Self::from_figment(
            Figment::from(Serialized::defaults(ManagerConfig::default()))
                .merge(Toml::file(file))
                .merge(Self::env()),
        )
    }

    pub fn env() -> Env {
        env_for(ManagerConfig::default())
    }

    pub fn from_figment(figment: Figment) -> Result<ManagerConfig, ConfigError> {
        let config: ManagerConfig = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(one_line(&e)))?;
        let bad = |key: &str, why: &str| Err(ConfigError::Invalid(format!("`{key}` {why}")));
        if config.database_url.trim().is_empty() {
            return bad("database_url", "is missing (set GALLERY_DATABASE_URL)");
        }
        if config.health_interval_secs <= 0.0
            || config.sample_interval_secs <= 0.0
            || config.decide_interval_secs <= 0.0
        {
            return bad(
                "health_interval_secs/sample_interval_secs/decide_interval_secs",
                "must be greater than 0",
            );
        }
        if [
            config.balancer_header_timeout_secs,
            config.balancer_body_timeout_secs,
            config.balancer_idle_timeout_secs,
            config.balancer_worker_timeout_secs,
        ]
        .iter()
        .any(|t| t.is_nan() || *t <= 0.0)
            || config.balancer_max_connections == 0
        {
            return bad(
                "balancer_*",
                "timeouts and the connection limit must be greater than 0",
            );
        }
        if config.unhealthy_threshold == 0 || config.healthy_threshold == 0 {
            return bad(
                "healthy_threshold/unhealthy_threshold",
                "must be at least 1",
            );
        }
        if let Some(bad_mail) = config.operators.iter().find(|m| !m.contains('@')) {
            return Err(ConfigError::Invalid(format!(
                "`operators`: {bad_mail:?} is not an e-mail address"
            )));
        }
        config
            .policy
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("`policy`: {e}")))?;
        if config.provider == ProviderKind::Aws {
            if config
                .aws_target_group_arn
                .as_deref()
                .unwrap_or("")
                .is_empty()
            {
                return bad(
                    "aws_target_group_arn",
                    "is required with provider = \"aws\" (scripts/aws/bootstrap prints it)",
                );
            }
            if config.aws_launch_template.is_none() && config.aws_image_id.is_none() {
                return bad(
                    "aws_launch_template",
                    "or `aws_image_id` is required with provider = \"aws\"",
                );
            }
            if !config.operators.is_empty() && config.mail_from.as_deref().unwrap_or("").is_empty()
            {
                return bad(
                    "mail_from",
                    "is required with provider = \"aws\": operator codes are sent with SES from it",
                );
            }
            if config.metrics_namespace.trim().is_empty() {
                return bad("metrics_namespace", "must not be empty");
            }
        }
        Ok(config)
    }
}
