//! What runs a detection model: rten (pure Rust, the default: nothing to install, small
//! memory) or ONNX Runtime (`onnxruntime_library`: about twice as fast on these models,
//! loaded at run time from the library in PyPI's `onnxruntime` wheel, which
//! `scripts/lib/common.sh` fetches).
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rten::{Dimension, Model, RunOptions, ThreadPool};
use rten_tensor::prelude::*;
use rten_tensor::NdTensor;

use super::DetectError;

pub enum Engine {
    Rten { model: Model, pool: Arc<ThreadPool> },
    // ONNX Runtime sessions run with `&mut`; a worker's jobs take turns on one session
    // (each job uses its own threads inside it).
    Ort(Mutex<ort::session::Session>),
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
    pub fn load(path: &Path, threads: usize, onnxruntime: Option<&PathBuf>) -> Result<Engine, DetectError> {
        let load_error = |reason: String| DetectError::Load { path: path.display().to_string(), reason };
        match onnxruntime {
            None => {
                let model = Model::load_file(path).map_err(|e| load_error(e.to_string()))?;
                Ok(Engine::Rten { model, pool: Arc::new(ThreadPool::with_num_threads(threads.max(1))) })
            }
            Some(library) => {
                use ort::session::builder::GraphOptimizationLevel;
                let env = ort_environment(library).map_err(load_error)?;
                let err = |e: ort::Error| load_error(e.to_string());
                let session = ort::session::Session::builder(env)
                    .map_err(err)?
                    .with_intra_threads(threads.max(1))
                    .map_err(|e| err(e.into()))?
                    .with_optimization_level(GraphOptimizationLevel::All)
                    .map_err(|e| err(e.into()))?
                    .commit_from_file(path)
                    .map_err(err)?;
                Ok(Engine::Ort(Mutex::new(session)))
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
            Engine::Ort(session) => {
                let session = session.lock().unwrap();
                let shape = session.inputs().first()?.dtype().tensor_shape()?.to_vec();
                match shape.as_slice() {
                    [_, _, h, w] if *h > 0 && *w > 0 => Some((*h as usize, *w as usize)),
                    _ => None,
                }
            }
        }
    }

    /// Runs the model on one NCHW tensor; returns the first output's shape and values.
    pub fn run(&self, shape: [usize; 4], data: Vec<f32>) -> Result<(Vec<usize>, Vec<f32>), DetectError> {
        let run_error = |e: String| DetectError::Run(e);
        match self {
            Engine::Rten { model, pool } => {
                let input = NdTensor::from_data(shape, data);
                let mut opts = RunOptions::default();
                opts.thread_pool = Some(pool.clone());
                // Owned, so rten can free the input (8.5 MB at 960 px) once its first layer has read it.
                let output = model.run_one(input.into(), Some(opts)).map_err(|e| run_error(e.to_string()))?;
                let output: rten_tensor::Tensor<f32> =
                    output.try_into().map_err(|e: rten::TryFromValueError| run_error(e.to_string()))?;
                Ok((output.shape().to_vec(), output.to_vec()))
            }
            Engine::Ort(session) => {
                let input = ort::value::TensorRef::from_array_view((shape, data.as_slice())).map_err(|e| run_error(e.to_string()))?;
                let mut session = session.lock().unwrap();
                let outputs = session.run(ort::inputs![input]).map_err(|e| run_error(e.to_string()))?;
                let (out_shape, values) = outputs[0].try_extract_tensor::<f32>().map_err(|e| run_error(e.to_string()))?;
                Ok((out_shape.iter().map(|d| *d as usize).collect(), values.to_vec()))
            }
        }
    }
}
