//! What runs a detection model: rten (pure Rust, the default: nothing to install, least
//! memory), ONNX Runtime (`onnxruntime_library`: about twice as fast on these models) or
//! OpenVINO (`openvino_library`: fastest on x86), both loaded at run time from the library in
//! their PyPI wheel, which `scripts/lib/common.sh` fetches.
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rten::{Dimension, Model, RunOptions, ThreadPool};
use rten_tensor::prelude::*;
use rten_tensor::NdTensor;

use super::openvino::OpenVino;
pub use common::config::Precision;
use super::pool::Pool;
use super::DetectError;

pub enum Engine {
    Rten { model: Model, pool: Arc<ThreadPool> },
    Ort(OrtSessions),
    OpenVino(OpenVino),
}

/// Which library runs the detection model.
#[derive(Debug, Clone, PartialEq)]
pub enum Runtime {
    Rten,
    /// ONNX Runtime, from this `libonnxruntime.so`.
    OnnxRuntime(PathBuf),
    /// OpenVINO, from this `libopenvino_c.so`, in this arithmetic.
    OpenVino { library: PathBuf, precision: Precision },
}

/// How a detector may use the CPU: `per_job` threads for one photo, `jobs` photos at once
/// (a worker's `pipeline_workers`).
#[derive(Debug, Clone, Copy)]
pub struct Threads {
    pub per_job: usize,
    pub jobs: usize,
}

impl Threads {
    pub const ONE: Threads = Threads { per_job: 1, jobs: 1 };
}

/// ONNX Runtime sessions run with `&mut`: one per photo in flight, made when photos overlap,
/// sharing one copy of the prepacked weights.
pub struct OrtSessions {
    pool: Pool<ort::session::Session>,
    recipe: OrtRecipe,
}

struct OrtRecipe {
    env: &'static ort::environment::Environment,
    path: PathBuf,
    threads: usize,
    weights: ort::session::builder::PrepackedWeights,
}

impl OrtRecipe {
    fn session(&self) -> Result<ort::session::Session, ort::Error> {
        use ort::session::builder::GraphOptimizationLevel;
        ort::session::Session::builder(self.env)?
            .with_intra_threads(self.threads)?
            .with_optimization_level(GraphOptimizationLevel::All)?
            .with_prepacked_weights(&self.weights)?
            .commit_from_file(&self.path)
    }
}

impl OrtSessions {
    fn with<R>(&self, f: impl FnOnce(&mut ort::session::Session) -> R) -> Result<R, ort::Error> {
        self.pool.with(|| self.recipe.session(), f)
    }
}

/// One ONNX Runtime environment per process, from the first library path asked for.
static ORT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

fn ort_environment(library: &Path) -> Result<&'static ort::environment::Environment, String> {
    ORT.get_or_init(|| {
        ort::init_from(library)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", library.display()))?
            .with_name("gallery")
            .build()
            .map_err(|e| format!("ONNX Runtime: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

impl Engine {
    pub fn load(path: &Path, threads: Threads, runtime: &Runtime) -> Result<Engine, DetectError> {
        let load_error = |reason: String| DetectError::Load { path: path.display().to_string(), reason };
        let per_job = threads.per_job.max(1);
        match runtime {
            Runtime::Rten => {
                let model = Model::load_file(path).map_err(|e| load_error(e.to_string()))?;
                // Overlapping runs share the pool: sized for one job it would run them one
                // after the other, leaving the worker's other cores idle.
                let pool = ThreadPool::with_num_threads(per_job * threads.jobs.max(1));
                Ok(Engine::Rten { model, pool: Arc::new(pool) })
            }
            Runtime::OpenVino { library, precision } => {
                Ok(Engine::OpenVino(OpenVino::load(library, path, threads, *precision).map_err(load_error)?))
            }
            Runtime::OnnxRuntime(library) => {
                let env = ort_environment(library).map_err(load_error)?;
                let recipe = OrtRecipe {
                    env,
                    path: path.to_path_buf(),
                    threads: per_job,
                    weights: ort::session::builder::PrepackedWeights::new(),
                };
                // The first session now, so that a bad model or library fails the worker's start.
                let first = recipe.session().map_err(|e| load_error(e.to_string()))?;
                Ok(Engine::Ort(OrtSessions { pool: Pool::new(first, threads.jobs), recipe }))
            }
        }
    }

    /// The first input's fixed spatial size (height, width), if the model declares one.
    pub fn fixed_input_size(&self) -> Option<(usize, usize)> {
        match self {
            Engine::Rten { model, .. } => {
                let input = *model.input_ids().first()?;
                match model.node_info(input)?.shape()?.as_slice() {
                    [_, _, Dimension::Fixed(h), Dimension::Fixed(w)] => Some((*h, *w)),
                    _ => None,
                }
            }
            Engine::Ort(sessions) => {
                let shape = sessions.with(|s| s.inputs().first()?.dtype().tensor_shape().map(|t| t.to_vec())).ok()??;
                match shape.as_slice() {
                    [_, _, h, w] if *h > 0 && *w > 0 => Some((*h as usize, *w as usize)),
                    _ => None,
                }
            }
            Engine::OpenVino(engine) => engine.fixed_input_size(),
        }
    }

    /// What runs the model, as people call it.
    pub fn runtime(&self) -> &'static str {
        match self {
            Engine::Rten { .. } => "rten",
            Engine::Ort(_) => "ONNX Runtime",
            Engine::OpenVino(engine) => match engine.precision() {
                Precision::F32 => "OpenVINO",
                Precision::Bf16 => "OpenVINO (bf16)",
            },
        }
    }

    /// Readies the engine for inputs of `shape` (OpenVINO compiles for it), so that a model
    /// the runtime cannot run fails the worker's start rather than its first upload.
    pub fn prepare(&self, path: &Path, shape: [usize; 4]) -> Result<(), DetectError> {
        match self {
            Engine::OpenVino(engine) => {
                engine.prepare(shape).map_err(|reason| DetectError::Load { path: path.display().to_string(), reason })
            }
            Engine::Rten { .. } | Engine::Ort(_) => Ok(()),
        }
    }

    /// Runs the model on one NCHW tensor of `shape`, which `fill` writes — every element of
    /// it: OpenVINO hands over its request's own input, still holding the previous photo, so
    /// that the photo is written once rather than built and then copied (8.5 MB at 960 px).
    /// Returns the first output's shape and values.
    pub fn run(&self, shape: [usize; 4], fill: impl FnOnce(&mut [f32])) -> Result<(Vec<usize>, Vec<f32>), DetectError> {
        let run_error = |e: String| DetectError::Run(e);
        let mut data = Vec::new();
        match self {
            Engine::Rten { model, pool } => {
                data.resize(shape.iter().product(), 0f32);
                fill(&mut data);
                let input = NdTensor::from_data(shape, data);
                let mut opts = RunOptions::default();
                opts.thread_pool = Some(pool.clone());
                // Owned, so rten can free the input (8.5 MB at 960 px) once its first layer has read it.
                let output = model.run_one(input.into(), Some(opts)).map_err(|e| run_error(e.to_string()))?;
                let output: rten_tensor::Tensor<f32> =
                    output.try_into().map_err(|e: rten::TryFromValueError| run_error(e.to_string()))?;
                Ok((output.shape().to_vec(), output.to_vec()))
            }
            Engine::Ort(sessions) => {
                data.resize(shape.iter().product(), 0f32);
                fill(&mut data);
                let input = ort::value::TensorRef::from_array_view((shape, data.as_slice())).map_err(|e| run_error(e.to_string()))?;
                let run = |session: &mut ort::session::Session| -> Result<(Vec<usize>, Vec<f32>), ort::Error> {
                    let outputs = session.run(ort::inputs![input])?;
                    let (out_shape, values) = outputs[0].try_extract_tensor::<f32>()?;
                    Ok((out_shape.iter().map(|d| *d as usize).collect(), values.to_vec()))
                };
                sessions.with(run).map_err(|e| run_error(e.to_string()))?.map_err(|e| run_error(e.to_string()))
            }
            Engine::OpenVino(engine) => engine.run(shape, fill).map_err(run_error),
        }
    }
}
