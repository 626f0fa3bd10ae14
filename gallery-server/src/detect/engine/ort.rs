//! ONNX Runtime (`onnxruntime_library`), loaded at run time from `libonnxruntime.so`.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::detect::pool::Pool;
use crate::detect::Threads;

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

impl OrtSessions {
    /// Makes the first session now, so that a bad model or library fails the worker's start.
    pub fn load(library: &Path, path: &Path, threads: Threads) -> Result<OrtSessions, String> {
        let env = ort_environment(library)?;
        let recipe = OrtRecipe {
            env,
            path: path.to_path_buf(),
            threads: threads.per_job.max(1),
            weights: ort::session::builder::PrepackedWeights::new(),
        };
        let first = recipe.session().map_err(|e| e.to_string())?;
        Ok(OrtSessions {
            pool: Pool::new(first, threads.jobs),
            recipe,
        })
    }

    pub fn fixed_input_size(&self) -> Option<(usize, usize)> {
        let shape = self
            .with(|s| {
                s.inputs()
                    .first()?
                    .dtype()
                    .tensor_shape()
                    .map(|t| t.to_vec())
            })
            .ok()??;
        match shape.as_slice() {
            [_, _, h, w] if *h > 0 && *w > 0 => Some((*h as usize, *w as usize)),
            _ => None,
        }
    }

    pub fn run(
        &self,
        shape: [usize; 4],
        fill: impl FnOnce(&mut [f32]),
    ) -> Result<(Vec<usize>, Vec<f32>), String> {
        let mut data = vec![0f32; shape.iter().product()];
        fill(&mut data);
        let input = ort::value::TensorRef::from_array_view((shape, data.as_slice()))
            .map_err(|e| e.to_string())?;
        let run =
            |session: &mut ort::session::Session| -> Result<(Vec<usize>, Vec<f32>), ort::Error> {
                let outputs = session.run(ort::inputs![input])?;
                let (out_shape, values) = outputs[0].try_extract_tensor::<f32>()?;
                Ok((
                    out_shape.iter().map(|d| *d as usize).collect(),
                    values.to_vec(),
                ))
            };
        self.with(run)
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}
