//! Control-API request and response types, shared by the control plane (`manager-tui
//! serve`) and its clients (the dashboard, `--once`). Times are Unix seconds.
use serde::{Deserialize, Serialize};

use crate::autoscale::demand::RateSource;
use crate::autoscale::{Phase, Policy};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    Starting,
    Healthy,
    Unhealthy,
    Draining,
    Stopped,
    /// Warm standby, booting: it will wait, not serve.
    Warming,
    /// Warm standby, ready: booted and passing health checks, out of rotation and not
    /// processing until it is promoted, which takes no boot.
    Standby,
}

impl WorkerState {
    /// Counts towards the pool's size: starting, healthy, or unhealthy but alive (not leaving).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            WorkerState::Starting | WorkerState::Healthy | WorkerState::Unhealthy
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Starting => "starting",
            WorkerState::Healthy => "healthy",
            WorkerState::Unhealthy => "unhealthy",
            WorkerState::Draining => "draining",
            WorkerState::Stopped => "stopped",
            WorkerState::Warming => "warming",
            WorkerState::Standby => "standby",
        }
    }

    /// Warm standby, booting or ready.
    pub fn is_standby(self) -> bool {
        matches!(self, WorkerState::Warming | WorkerState::Standby)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkerStatus {
    pub id: String,
    pub address: String,
    /// Process id (local provider) for operators who need to look at one worker.
    pub pid: Option<u32>,
    pub state: WorkerState,
    pub started_at: f64,
    /// Latest CPU use, 0–1 of the worker's machine.
    pub cpu: Option<f64>,
    /// Latest request rate, per second.
    pub request_rate: Option<f64>,
    /// Last 30 minutes, one point per sample: (time, CPU 0–1).
    pub cpu_series: Vec<(f64, f64)>,
    /// Last 30 minutes, one point per sample: (time, requests per second).
    pub request_series: Vec<(f64, f64)>,
    /// The same, averaged per minute (time of the minute's start).
    pub cpu_per_minute: Vec<(f64, f64)>,
    pub requests_per_minute: Vec<(f64, f64)>,
    /// Requests currently being served through the balancer.
    pub in_flight: u64,
}

impl WorkerStatus {
    /// A worker's status with its CPU (0–1) and request-rate series, latest values and
    /// per-minute means derived from them.
    #[allow(clippy::too_many_arguments)]
    pub fn from_series(
        id: &str,
        address: &str,
        pid: Option<u32>,
        state: WorkerState,
        started_at: f64,
        cpu: &crate::metrics::Series,
        requests: &crate::metrics::Series,
        in_flight: u64,
    ) -> WorkerStatus {
        WorkerStatus {
            id: id.to_owned(),
            address: address.to_owned(),
            pid,
            state,
            started_at,
            cpu: cpu.last().map(|p| p.1),
            request_rate: requests.last().map(|p| p.1),
            cpu_series: cpu.points().collect(),
            request_series: requests.points().collect(),
            cpu_per_minute: cpu.per_minute(),
            requests_per_minute: requests.per_minute(),
            in_flight,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PoolCounts {
    pub desired: u32,
    pub starting: u32,
    pub healthy: u32,
    pub unhealthy: u32,
    pub draining: u32,
    /// Warm standby workers, booting or ready; not part of the pool's size.
    #[serde(default)]
    pub standby: u32,
    /// Of those, the ones ready to be promoted.
    #[serde(default)]
    pub standby_ready: u32,
}

impl PoolCounts {
    /// The counts of `workers` by state, for a pool asked to be `desired` large.
    pub fn of(workers: &[WorkerStatus], desired: u32) -> PoolCounts {
        let count = |s: WorkerState| workers.iter().filter(|w| w.state == s).count() as u32;
        PoolCounts {
            desired,
            starting: count(WorkerState::Starting),
            healthy: count(WorkerState::Healthy),
            unhealthy: count(WorkerState::Unhealthy),
            draining: count(WorkerState::Draining),
            standby: count(WorkerState::Warming) + count(WorkerState::Standby),
            standby_ready: count(WorkerState::Standby),
        }
    }

    /// Workers that count towards the pool's size (see [`WorkerState::is_active`]).
    pub fn active(&self) -> u32 {
        self.starting + self.healthy + self.unhealthy
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AutoscalerStatus {
    pub enabled: bool,
    pub phase: Phase,
    /// Seconds until the cooldown ends or the resize times out.
    pub seconds_left: Option<f64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct CountPoint {
    pub at: i64,
    pub desired: u32,
    pub healthy: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScalingEvent {
    pub at: i64,
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Totals {
    pub accounts: u64,
    pub photos: u64,
    pub objects: u64,
    pub bytes: u64,
}

/// The flow through the backlog as the demand policy reads it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Demand {
    pub accepted_per_sec: f64,
    pub processed_per_sec: f64,
    /// Photos one worker processes per second, and where that figure comes from.
    pub rate_per_worker: f64,
    pub rate_source: RateSource,
    /// Workers the demand policy finds needed now, before its bounds.
    pub needed: u32,
}

/// Seconds from upload to processed, of the photos processed in the last minutes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct ProcessingTimes {
    pub photos: u64,
    pub p50_secs: f64,
    pub p99_secs: f64,
}

/// What waits to be processed.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Backlog {
    pub queued: u64,
    pub processing: u64,
    pub failed: u64,
    /// Seconds the oldest queued or processing photo has waited since its upload.
    pub oldest_secs: f64,
}

impl Backlog {
    /// Accepted and not yet processed.
    pub fn waiting(&self) -> u64 {
        self.queued + self.processing
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    /// Where the workers run.
    pub deployment: crate::config::ProviderKind,
    pub balancer: String,
    pub now: f64,
    pub workers: Vec<WorkerStatus>,
    pub pool: PoolCounts,
    pub policy: Policy,
    pub autoscaler: AutoscalerStatus,
    /// Worker counts of the last 30 minutes.
    pub history: Vec<CountPoint>,
    /// Newest first.
    pub events: Vec<ScalingEvent>,
    /// Photos accepted and not yet processed, and those that failed; `None` when the
    /// database could not be read.
    #[serde(default)]
    pub backlog: Option<Backlog>,
    /// `None` before the first count.
    #[serde(default)]
    pub demand: Option<Demand>,
    #[serde(default)]
    pub processing_times: Option<ProcessingTimes>,
    /// `None` when the database or store could not be read.
    pub totals: Option<Totals>,
    /// Set while launching workers fails (bad AMI, no capacity, missing permission).
    #[serde(default)]
    pub launch_problem: Option<LaunchProblem>,
    /// The local balancer's connections; `None` behind a cloud load balancer.
    #[serde(default)]
    pub front_door: Option<FrontDoor>,
    /// On AWS, where the front door is the ALB: what was turned away, from CloudWatch.
    #[serde(default)]
    pub refusals: Option<Refusals>,
}

/// What an AWS deployment turned away since the control plane started, as CloudWatch has it
/// (a minute or two behind): the uploads the workers answered and refused (5xx), and the
/// replies the ALB gave itself with 5xx (no healthy worker, a worker not answering), of
/// uploads and any other request, which no worker saw.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Refusals {
    pub uploads: u64,
    pub refused_uploads: u64,
    pub load_balancer_5xx: u64,
}

/// What the local balancer holds and has turned away since the control plane started.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FrontDoor {
    pub open_connections: u64,
    pub max_connections: u64,
    /// Connections answered 503 because `max_connections` were open.
    pub refused_connections: u64,
    /// Connections closed for sending no request head in time, or moving no byte.
    pub timed_out_connections: u64,
    /// Uploads whose body stopped arriving (408) or was malformed (400).
    pub bad_bodies: u64,
    /// Requests a worker did not answer within the worker timeout (504).
    pub worker_timeouts: u64,
    /// Uploads (the API's and the page's) that reached the balancer.
    #[serde(default)]
    pub uploads: u64,
    /// Of those, the ones answered 5xx: not accepted, whether by a worker (backlog full,
    /// database down) or by the balancer (no worker, a worker failing or too slow).
    #[serde(default)]
    pub refused_uploads: u64,
}

/// Launch failures in a row: the reconciler backs off rather than retrying every second.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LaunchProblem {
    pub error: String,
    pub failures: u32,
    /// When the next launch will be tried (Unix seconds).
    pub retry_at: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OtpRequest {
    pub email: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OtpReply {
    pub challenge: String,
    pub expires_in: u64,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyRequest {
    pub challenge: String,
    pub code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenReply {
    pub token: String,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyRequest {
    pub name: String,
    /// Days until the key stops working: 90 unless given, at most 365.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// An API key as listed: never the key itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiKeyRow {
    /// The start of the key's SHA-256 (what `DELETE /api-keys/<id>` takes).
    pub id: String,
    pub name: String,
    /// The operator who made it.
    pub email: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; the key is refused from then on.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PoolReply {
    pub desired: u32,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorReply {
    pub error: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Page<T> {
    pub total: u64,
    pub offset: u64,
    pub items: Vec<T>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountRow {
    pub id: u64,
    pub username: String,
    pub created_at: i64,
    pub photos: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PhotoRow {
    pub id: String,
    pub owner_id: u64,
    pub owner: String,
    pub file_name: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub boxes: u32,
    pub created_at: i64,
    /// The detector that found the boxes; empty for photos from before it was recorded.
    #[serde(default)]
    pub detector: String,
    /// What ran the detector's model ("OpenVINO", "rten", …); empty where `detector` is.
    #[serde(default)]
    pub runtime: String,
    #[serde(default)]
    pub state: PhotoState,
}

/// Where a photo is between its upload and its owner seeing the text found in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhotoState {
    /// Accepted (the original is stored), waiting for a processor.
    Queued,
    /// A processor holds a claim on it.
    Processing,
    /// Its annotated copy and thumbnail are stored (and what every photo from before the
    /// backlog is).
    #[default]
    Ready,
    /// Processing gave up (see `failure`).
    Failed,
}

impl PhotoState {
    pub fn as_str(self) -> &'static str {
        match self {
            PhotoState::Queued => "queued",
            PhotoState::Processing => "processing",
            PhotoState::Ready => "ready",
            PhotoState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<PhotoState> {
        [
            PhotoState::Queued,
            PhotoState::Processing,
            PhotoState::Ready,
            PhotoState::Failed,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectRow {
    pub key: String,
    pub size: u64,
}

/// Files and bytes of one kind (originals, annotated copies or thumbnails).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KindUsage {
    pub files: u64,
    pub bytes: u64,
}

/// Like the seed's "user details": photos, files and bytes per kind for one account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserUsage {
    pub id: u64,
    pub username: String,
    pub photos: u64,
    pub originals: KindUsage,
    pub annotated: KindUsage,
    pub thumbnails: KindUsage,
}

impl UserUsage {
    pub fn files(&self) -> u64 {
        self.originals.files + self.annotated.files + self.thumbnails.files
    }
    pub fn bytes(&self) -> u64 {
        self.originals.bytes + self.annotated.bytes + self.thumbnails.bytes
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeleteReply {
    pub photos: u64,
    pub objects: u64,
    pub accounts: u64,
}
