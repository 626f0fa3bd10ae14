//! What runs a detection model: [`rten`] (pure Rust, the default: nothing to install, least
//! memory), [`ort`] (ONNX Runtime, `onnxruntime_library`: about twice as fast on these models)
//! or [`openvino`] (`openvino_library`: fastest on x86), both loaded at run time from the
//! library in their PyPI wheel, which `scripts/lib/common.sh` fetches.
use std::path::Path;

mod openvino;
mod ort;
mod rten;

use self::openvino::OpenVino;
use self::ort::OrtSessions;
use self::rten::Rten;
use super::{DetectError, Precision, Runtime, Threads};

/// One of the runtimes, loaded with a model; each is a peer module with the same four
/// operations.
pub enum Engine {
    Rten(Rten),
    Ort(OrtSessions),
    OpenVino(OpenVino),
}

impl Engine {
    pub fn load(path: &Path, threads: Threads, runtime: &Runtime) -> Result<Engine, DetectError> {
        let load_error = |reason: String| DetectError::Load {
            path: path.display().to_string(),
            reason,
        };
        match runtime {
            Runtime::Rten => Ok(Engine::Rten(Rten::load(path, threads).map_err(load_error)?)),
            Runtime::OpenVino { library, precision } => Ok(Engine::OpenVino(
                OpenVino::load(library, path, threads, *precision).map_err(load_error)?,
            )),
            Runtime::OnnxRuntime(library) => Ok(Engine::Ort(
                OrtSessions::load(library, path, threads).map_err(load_error)?,
            )),
        }
    }

    /// The first input's fixed spatial size (height, width), if the model declares one.
    pub fn fixed_input_size(&self) -> Option<(usize, usize)> {
        match self {
            Engine::Rten(engine) => engine.fixed_input_size(),
            Engine::Ort(sessions) => sessions.fixed_input_size(),
            Engine::OpenVino(engine) => engine.fixed_input_size(),
        }
    }

    /// What runs the model, as people call it.
    pub fn runtime(&self) -> &'static str {
        match self {
            Engine::Rten(_) => "rten",
            Engine::Ort(_) => "ONNX Runtime",
            Engine::OpenVino(engine) => match engine.precision() {
                Precision::Bf16 => "OpenVINO (bf16)",
                // `auto` is resolved when OpenVINO loads.
                Precision::F32 | Precision::Auto => "OpenVINO",
            },
        }
    }

    /// Readies the engine for inputs of `shape` (OpenVINO compiles for it), so that a model
    /// the runtime cannot run fails the worker's start rather than its first upload.
    pub fn prepare(&self, path: &Path, shape: [usize; 4]) -> Result<(), DetectError> {
        match self {
            Engine::OpenVino(engine) => engine.prepare(shape).map_err(|reason| DetectError::Load {
                path: path.display().to_string(),
                reason,
            }),
            Engine::Rten(_) | Engine::Ort(_) => Ok(()),
        }
    }

    /// Runs the model on one NCHW tensor of `shape`, which `fill` writes — every element of
    /// it: OpenVINO hands over its request's own input, still holding the previous photo, so
    /// that the photo is written once rather than built and then copied (8.5 MB at 960 px).
    /// Returns the first output's shape and values.
    pub fn run(
        &self,
        shape: [usize; 4],
        fill: impl FnOnce(&mut [f32]),
    ) -> Result<(Vec<usize>, Vec<f32>), DetectError> {
        match self {
            Engine::Rten(engine) => engine.run(shape, fill),
            Engine::Ort(sessions) => sessions.run(shape, fill),
            Engine::OpenVino(engine) => engine.run(shape, fill),
        }
        .map_err(DetectError::Run)
    }
}
