//! rten: pure Rust, nothing to install, the least memory.
use std::path::Path;
use std::sync::Arc;

use rten::{Dimension, Model, RunOptions, ThreadPool};
use rten_tensor::prelude::*;
use rten_tensor::NdTensor;

use crate::detect::Threads;

pub struct Rten {
    model: Model,
    pool: Arc<ThreadPool>,
}

impl Rten {
    pub fn load(path: &Path, threads: Threads) -> Result<Rten, String> {
        let model = Model::load_file(path).map_err(|e| e.to_string())?;
        // Overlapping runs share the pool: sized for one job it would run them one after the
        // other, leaving the worker's other cores idle.
        let pool = ThreadPool::with_num_threads(threads.per_job.max(1) * threads.jobs.max(1));
        Ok(Rten {
            model,
            pool: Arc::new(pool),
        })
    }

    pub fn fixed_input_size(&self) -> Option<(usize, usize)> {
        let input = *self.model.input_ids().first()?;
        match self.model.node_info(input)?.shape()?.as_slice() {
            [_, _, Dimension::Fixed(h), Dimension::Fixed(w)] => Some((*h, *w)),
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
        let input = NdTensor::from_data(shape, data);
        let mut opts = RunOptions::default();
        opts.thread_pool = Some(self.pool.clone());
        // Owned, so rten can free the input (8.5 MB at 960 px) once its first layer has read it.
        let output = self
            .model
            .run_one(input.into(), Some(opts))
            .map_err(|e| e.to_string())?;
        let output: rten_tensor::Tensor<f32> = output
            .try_into()
            .map_err(|e: rten::TryFromValueError| e.to_string())?;
        Ok((output.shape().to_vec(), output.to_vec()))
    }
}
