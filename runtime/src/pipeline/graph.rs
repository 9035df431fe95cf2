//! The step graph of a validated pipeline: topological order, upstream and downstream steps,
//! roots (sources) and leaves (sinks), and the per-step settings the executor runs with.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};

use super::model::{EffectiveLimits, MountMode, Pipeline, Step};
use super::plugin_ref::PluginRef;
use super::policy::{ValidationPolicy, resolve_path};

/// A mount checked against the server's allowed roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedMount {
    /// Absolute host path, `..`-free, symlinks resolved: the path to mount.
    pub host: PathBuf,
    /// Absolute guest path.
    pub guest: String,
    /// Read-only or read-write.
    pub mode: MountMode,
}

/// One input of a step: the step it reads from, and which of that step's outputs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Input {
    /// The index of the upstream step.
    pub step: usize,
    /// Its named output (`input: STEP.OUTPUT`); `None` for the default output (`input: STEP`).
    pub output: Option<String>,
}

/// What the executor needs to run one step, beyond the [`Step`] as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedStep {
    /// The plugin reference, parsed; a [`PluginRef::Path`] is absolute (read against the base folder).
    pub plugin: PluginRef,
    /// Indices of the steps this one reads from, in the order written (a step read through two
    /// of its outputs comes twice).
    pub inputs: Vec<usize>,
    /// The output of each of [`inputs`](Self::inputs) it reads (same order): `None` for the
    /// default output, else a named one.
    pub input_outputs: Vec<Option<String>>,
    /// Indices of the steps that read from this one, in file order.
    pub outputs: Vec<usize>,
    /// The mounts, with resolved host paths.
    pub mounts: Vec<ResolvedMount>,
    /// Step limits merged over pipeline limits merged over the server defaults.
    pub limits: EffectiveLimits,
    /// Step batch size, else the pipeline's, else 1024.
    pub batch_size: u32,
}

/// A pipeline that passed [`Pipeline::validate`]: its steps form a DAG, every reference
/// resolves and every grant is allowed. Steps are addressed by id or by index into
/// [`Pipeline::steps`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedPipeline {
    pipeline: Pipeline,
    resolved: Vec<ResolvedStep>,
    order: Vec<usize>,
    index: HashMap<String, usize>,
    dead_letter: Option<PathBuf>,
}

impl ValidatedPipeline {
    /// Builds the graph; `plugins`, `inputs` and `mounts` are per step, already checked.
    pub(super) fn new(
        pipeline: Pipeline,
        policy: &ValidationPolicy,
        plugins: Vec<PluginRef>,
        inputs: Vec<Vec<Input>>,
        mounts: Vec<Vec<ResolvedMount>>,
    ) -> Self {
        let (inputs, input_outputs): (Vec<Vec<usize>>, Vec<Vec<Option<String>>>) = inputs
            .into_iter()
            .map(|ins| ins.into_iter().map(|i| (i.step, i.output)).unzip())
            .unzip();
        let mut outputs = vec![Vec::new(); pipeline.steps.len()];
        for (i, ups) in inputs.iter().enumerate() {
            for &up in ups {
                outputs[up].push(i);
            }
        }
        let order = topological_order(&inputs, &outputs);
        let resolved = pipeline
            .steps
            .iter()
            .zip(plugins)
            .zip(inputs)
            .zip(input_outputs)
            .zip(outputs)
            .zip(mounts)
            .map(
                |(((((step, plugin), inputs), input_outputs), outputs), mounts)| ResolvedStep {
                    plugin,
                    inputs,
                    input_outputs,
                    outputs,
                    mounts,
                    limits: pipeline.effective_limits(step, &policy.default_limits),
                    batch_size: pipeline.effective_batch_size(step),
                },
            )
            .collect();
        let index = pipeline
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        let dead_letter = pipeline
            .dead_letter
            .as_ref()
            .map(|d| resolve_path(&d.path, &policy.base_dir));
        ValidatedPipeline {
            pipeline,
            resolved,
            order,
            index,
            dead_letter,
        }
    }

    /// The pipeline as written.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Gives back the pipeline as written.
    pub fn into_pipeline(self) -> Pipeline {
        self.pipeline
    }

    /// The steps in file order.
    pub fn steps(&self) -> &[Step] {
        &self.pipeline.steps
    }

    /// The index of the step with this id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.index_of(id).map(|i| &self.pipeline.steps[i])
    }

    /// The resolved settings of the step at `index`.
    pub fn resolved(&self, index: usize) -> Option<&ResolvedStep> {
        self.resolved.get(index)
    }

    /// The resolved settings of every step, by index.
    pub fn resolved_steps(&self) -> &[ResolvedStep] {
        &self.resolved
    }

    /// Step indices such that every step comes after all of its inputs; among steps that are
    /// ready at the same time, file order.
    pub fn topological_indices(&self) -> &[usize] {
        &self.order
    }

    /// The steps such that every step comes after all of its inputs (see
    /// [`topological_indices`](Self::topological_indices)).
    pub fn topological_order(&self) -> Vec<&Step> {
        self.by_index(&self.order)
    }

    /// The steps `id` reads from, in the order written; empty for a root or an unknown id.
    pub fn upstream(&self, id: &str) -> Vec<&Step> {
        self.edges(id, |r| &r.inputs)
    }

    /// The steps that read from `id`, in file order; empty for a leaf or an unknown id.
    pub fn downstream(&self, id: &str) -> Vec<&Step> {
        self.edges(id, |r| &r.outputs)
    }

    /// The steps that read from no other step (sources), in file order.
    pub fn roots(&self) -> Vec<&Step> {
        self.filtered(|r| r.inputs.is_empty())
    }

    /// The steps no other step reads from (sinks), in file order. A single-step pipeline's step
    /// is both a root and a leaf.
    pub fn leaves(&self) -> Vec<&Step> {
        self.filtered(|r| r.outputs.is_empty())
    }

    /// The limits step `id` runs with: step overrides, then pipeline limits, then the server
    /// defaults of the policy it was validated with.
    pub fn effective_limits(&self, id: &str) -> Option<EffectiveLimits> {
        self.index_of(id).map(|i| self.resolved[i].limits)
    }

    /// The batch size step `id` runs with.
    pub fn batch_size(&self, id: &str) -> Option<u32> {
        self.index_of(id).map(|i| self.resolved[i].batch_size)
    }

    /// The dead-letter file, absolute, if the pipeline names one.
    pub fn dead_letter_path(&self) -> Option<&Path> {
        self.dead_letter.as_deref()
    }

    fn by_index(&self, indices: &[usize]) -> Vec<&Step> {
        indices.iter().map(|&i| &self.pipeline.steps[i]).collect()
    }

    fn edges(&self, id: &str, pick: impl Fn(&ResolvedStep) -> &Vec<usize>) -> Vec<&Step> {
        match self.index_of(id) {
            Some(i) => self.by_index(pick(&self.resolved[i])),
            None => Vec::new(),
        }
    }

    fn filtered(&self, keep: impl Fn(&ResolvedStep) -> bool) -> Vec<&Step> {
        self.pipeline
            .steps
            .iter()
            .zip(&self.resolved)
            .filter(|(_, r)| keep(r))
            .map(|(s, _)| s)
            .collect()
    }
}

/// Kahn's algorithm, taking the lowest ready index first. Assumes no cycle.
fn topological_order(inputs: &[Vec<usize>], outputs: &[Vec<usize>]) -> Vec<usize> {
    let mut waiting: Vec<usize> = inputs.iter().map(Vec::len).collect();
    let mut ready: BinaryHeap<Reverse<usize>> = waiting
        .iter()
        .enumerate()
        .filter(|(_, n)| **n == 0)
        .map(|(i, _)| Reverse(i))
        .collect();
    let mut order = Vec::with_capacity(inputs.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &down in &outputs[i] {
            waiting[down] -= 1;
            if waiting[down] == 0 {
                ready.push(Reverse(down));
            }
        }
    }
    order
}

/// Finds cycles among `n` steps whose upstream indices are `inputs` (self-references and
/// unknown ids already left out). Each cycle is a list of indices in data-flow order, starting
/// at its lowest index; a cycle sharing a step with one already found is not reported.
pub(super) fn find_cycles(n: usize, inputs: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut outputs = vec![Vec::new(); n];
    for (i, ups) in inputs.iter().enumerate() {
        for &up in ups {
            outputs[up].push(i);
        }
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; n];
    let mut reported = vec![false; n];
    let mut cycles = Vec::new();
    for start in 0..n {
        if mark[start] != Mark::New {
            continue;
        }
        mark[start] = Mark::OnPath;
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some(top) = path.last_mut() {
            let (node, next) = *top;
            let Some(&child) = outputs[node].get(next) else {
                mark[node] = Mark::Done;
                path.pop();
                continue;
            };
            top.1 += 1;
            match mark[child] {
                Mark::New => {
                    mark[child] = Mark::OnPath;
                    path.push((child, 0));
                }
                Mark::OnPath => {
                    let from = path.iter().position(|&(s, _)| s == child).unwrap_or(0);
                    let mut cycle: Vec<usize> = path[from..].iter().map(|&(s, _)| s).collect();
                    if cycle.iter().all(|&s| !reported[s]) {
                        cycle.iter().for_each(|&s| reported[s] = true);
                        let lowest = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
                        cycle.rotate_left(lowest);
                        cycles.push(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
    }
    cycles
}
