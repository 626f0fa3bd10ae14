//! Detection on OpenVINO (`openvino_library`: `libopenvino_c.so` out of PyPI's `openvino`
//! wheel, which `scripts/lib/common.sh` fetches). On this project's CPUs it runs PP-OCRv4 at
//! full precision 1.7–2.2× faster than ONNX Runtime with the same thread (measured,
//! docs/bench-history.md).
//!
//! The model is compiled for each input shape it meets, not once with free height and width:
//! a shape-specific graph runs ~20 % faster and holds less memory than the dynamic one after
//! a few shapes (the dynamic graph keeps buffers for every shape it has seen). Photos come in
//! few shapes — a camera's landscape and portrait — so the last few compiled shapes are kept;
//! a new shape costs one compile (~0.25 s).
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openvino::{
    Core, DeviceType, ElementType, Model, PartialShape, PropertyKey, RwPropertyKey, Tensor,
};

use crate::detect::pool::Pool;
use crate::detect::{Precision, Threads};

/// Compiled shapes kept at once: each holds its graph and, once run, its buffers (~110 MB at
/// 960 × 736 per photo in flight).
const SHAPES_KEPT: usize = 2;

pub struct OpenVino {
    compiler: Mutex<Compiler>,
    /// The input's spatial size as the model file declares it, if fixed.
    declared: Option<(usize, usize)>,
    jobs: usize,
    /// Most recently used last.
    shapes: Mutex<Vec<Arc<Compiled>>>,
    precision: Precision,
}

/// What compiles: the core with the CPU's settings and the model as read, reshaped per compile.
struct Compiler {
    core: Core,
    model: Model,
}

struct Compiled {
    shape: [usize; 4],
    /// One request per photo in flight: OpenVINO runs them on separate streams. Declared
    /// before the model so that they are dropped first.
    requests: Pool<openvino::InferRequest>,
    model: Mutex<openvino::CompiledModel>,
}

/// The library this process loaded: one per process (its functions are global), kept only
/// once loaded, so a failed path can be corrected by a later load.
static LOADED: Mutex<Option<PathBuf>> = Mutex::new(None);

fn load_library(library: &Path) -> Result<(), String> {
    let mut loaded = LOADED.lock().unwrap();
    match loaded.as_deref() {
        Some(path) if path == library => Ok(()),
        Some(path) => Err(format!(
            "cannot load OpenVINO from {}: this process already runs the one in {}",
            library.display(),
            path.display()
        )),
        None => {
            openvino_sys::library::load_from(library)
                .map_err(|e| format!("cannot load OpenVINO from {}: {e}", library.display()))?;
            *loaded = Some(library.to_path_buf());
            Ok(())
        }
    }
}

fn ov_error(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The arithmetic to run in: as configured, or for `auto`, bf16 where OpenVINO finds bf16
/// units on this CPU (AVX512-BF16 or AMX: about twice as fast there, the same boxes found)
/// and f32 elsewhere, where bf16 would be emulated and slower. Logged with the CPU.
fn choose(core: &Core, asked: Precision) -> Precision {
    let cpu = DeviceType::CPU;
    let name = core
        .get_property(&cpu, &PropertyKey::DeviceFullName)
        .unwrap_or_else(|_| "an unnamed CPU".into());
    let capabilities = core
        .get_property(&cpu, &PropertyKey::DeviceCapabilities)
        .unwrap_or_default();
    let has_bf16 = capabilities.split_whitespace().any(|c| c == "BF16");
    let chosen = match asked {
        Precision::Auto if has_bf16 => Precision::Bf16,
        Precision::Auto => Precision::F32,
        other => other,
    };
    let why = match (asked, has_bf16) {
        (Precision::Auto, true) => "auto: the CPU has bf16 units",
        (Precision::Auto, false) => "auto: the CPU has no bf16 units",
        (Precision::Bf16, false) => {
            "configured, though the CPU has no bf16 units (emulated, slower)"
        }
        _ => "configured",
    };
    tracing::info!(cpu = %name, %capabilities, precision = ?chosen, reason = why, "detector precision chosen");
    chosen
}

impl OpenVino {
    pub fn load(
        library: &Path,
        model_path: &Path,
        threads: Threads,
        precision: Precision,
    ) -> Result<OpenVino, String> {
        load_library(library)?;
        let mut core = Core::new().map_err(ov_error)?;
        let jobs = threads.jobs.max(1);
        let cpu = DeviceType::CPU;
        let precision = choose(&core, precision);
        let settings = [
            (
                RwPropertyKey::InferenceNumThreads,
                (threads.per_job.max(1) * jobs).to_string(),
            ),
            (RwPropertyKey::NumStreams, jobs.to_string()),
            // Asked for either way: on CPUs with bf16 units OpenVINO would otherwise pick bf16,
            // which moves scores and so boxes (docs/bench-history.md #6).
            (
                RwPropertyKey::HintInferencePrecision,
                match precision {
                    Precision::Bf16 => "bf16".into(),
                    Precision::F32 | Precision::Auto => "f32".into(),
                },
            ),
            // Several workers share one machine in the local deployment: threads pinned to the
            // same cores by each would queue there while other cores idle.
            (RwPropertyKey::HintEnableCpuPinning, "false".into()),
        ];
        for (key, value) in &settings {
            core.set_property(&cpu, key, value).map_err(ov_error)?;
        }
        let path = model_path.to_str().ok_or("the model path is not UTF-8")?;
        let model = core.read_model_from_file(path, "").map_err(ov_error)?;
        // Read now: every compile reshapes the model to the photo's size.
        let shape = model
            .get_input_by_index(0)
            .and_then(|input| input.get_partial_shape())
            .map_err(ov_error)?;
        let declared = match shape.get_dimensions() {
            [_, _, h, w] if !h.is_dynamic() && !w.is_dynamic() => {
                Some((h.get_min() as usize, w.get_min() as usize))
            }
            _ => None,
        };
        Ok(OpenVino {
            compiler: Mutex::new(Compiler { core, model }),
            declared,
            jobs,
            shapes: Mutex::new(Vec::new()),
            precision,
        })
    }

    /// The first input's fixed spatial size (height, width), if the model declares one.
    pub fn fixed_input_size(&self) -> Option<(usize, usize)> {
        self.declared
    }

    /// The arithmetic asked for (what a CPU honours is logged at each compile).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Runs the model on one NCHW tensor that `fill` writes into the request's own input;
    /// returns the first output's shape and values.
    pub fn run(
        &self,
        shape: [usize; 4],
        fill: impl FnOnce(&mut [f32]),
    ) -> Result<(Vec<usize>, Vec<f32>), String> {
        let compiled = self.compiled(shape)?;
        let infer =
            |request: &mut openvino::InferRequest| -> Result<(Vec<usize>, Vec<f32>), String> {
                let mut input = request.get_input_tensor().map_err(ov_error)?;
                fill(input.get_data_mut::<f32>().map_err(ov_error)?);
                request.infer().map_err(ov_error)?;
                let output: Tensor = request.get_output_tensor_by_index(0).map_err(ov_error)?;
                let kind = output.get_element_type().map_err(ov_error)?;
                if kind != ElementType::F32 {
                    return Err(format!("the model's first output is {kind:?}, not f32"));
                }
                let dims = output
                    .get_shape()
                    .map_err(ov_error)?
                    .get_dimensions()
                    .iter()
                    .map(|d| *d as usize)
                    .collect();
                Ok((dims, output.get_data::<f32>().map_err(ov_error)?.to_vec()))
            };
        let make = || {
            compiled
                .model
                .lock()
                .unwrap()
                .create_infer_request()
                .map_err(ov_error)
        };
        compiled.requests.with(make, infer)?
    }

    /// Compiles for `shape` now rather than on its first photo.
    pub fn prepare(&self, shape: [usize; 4]) -> Result<(), String> {
        self.compiled(shape).map(drop)
    }

    /// The model compiled for `shape`: kept, or compiled now (dropping the least recently
    /// used shape beyond `SHAPES_KEPT`; photos running on it keep it until they finish).
    fn compiled(&self, shape: [usize; 4]) -> Result<Arc<Compiled>, String> {
        {
            let mut shapes = self.shapes.lock().unwrap();
            if let Some(at) = shapes.iter().position(|c| c.shape == shape) {
                let compiled = shapes.remove(at);
                shapes.push(compiled.clone());
                return Ok(compiled);
            }
        }
        // One compile at a time, outside the shapes' lock so that kept shapes still run.
        let mut compiler = self.compiler.lock().unwrap();
        if let Some(compiled) = self
            .shapes
            .lock()
            .unwrap()
            .iter()
            .find(|c| c.shape == shape)
        {
            return Ok(compiled.clone());
        }
        let dims: Vec<i64> = shape.iter().map(|d| *d as i64).collect();
        let Compiler { core, model } = &mut *compiler;
        model
            .reshape_single_input(&PartialShape::new_static(4, &dims).map_err(ov_error)?)
            .map_err(ov_error)?;
        let mut model = core
            .compile_model(model, DeviceType::CPU)
            .map_err(ov_error)?;
        // What OpenVINO settled on, which a CPU without bf16 units may not honour.
        let precision = model
            .get_property(&PropertyKey::Rw(RwPropertyKey::HintInferencePrecision))
            .map(|p| p.into_owned());
        tracing::info!(
            ?shape,
            precision = precision.as_deref().unwrap_or("?"),
            "OpenVINO compiled the detector for an input shape"
        );
        let first = model.create_infer_request().map_err(ov_error)?;
        let compiled = Arc::new(Compiled {
            shape,
            model: Mutex::new(model),
            requests: Pool::new(first, self.jobs),
        });
        let mut shapes = self.shapes.lock().unwrap();
        shapes.push(compiled.clone());
        if shapes.len() > SHAPES_KEPT {
            shapes.remove(0);
        }
        Ok(compiled)
    }
}
