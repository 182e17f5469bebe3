//! `[generator.select]`: which of several trained candidates the run keeps.
//!
//! A GAN's fidelity scatters from training seed to training seed more than any
//! single validation set can rank reliably, so the candidates are scored on sets
//! of their own: for every validation point, `sets` fresh held-out simulations,
//! each compared with every candidate's samples (all candidates drawn from the same
//! latent seeds). A candidate's score is the mean, over those sets, of its weakest
//! statistic's pass fraction (what "every statistic passes" hinges on; for a
//! statistic of several components, such as the Minkowski functionals, the
//! weakest component's, since each is judged alone); ties go to the one whose
//! bin means agree in more statistics, then to the earlier one.
//! None of these sets is the report's held-out set, so the report judges the
//! chosen model on maps the choice never saw.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use simemu_core::seed::derive_seed;
use simemu_core::Registry;
use simemu_validate::StatRequest;

use crate::error::{io, Result};
use crate::job::{conditional_flags, generation_params, Pipeline, SimulatorSection};
use crate::{compare, generate, CompareRequest, GenerateRequest};

/// Everything the selection needs from the run.
pub(crate) struct Job<'a> {
    pub reg: &'a Registry,
    pub run_seed: u64,
    pub simulator: &'a SimulatorSection,
    /// Each validation point's full parameters.
    pub points: &'a [BTreeMap<String, f64>],
    /// Simulated samples per set, generated samples per candidate and set.
    pub counts: (usize, usize),
    /// The statistics and the field they read.
    pub statistics: (&'a [StatRequest], Option<&'a str>),
    pub sets: usize,
    /// Where the candidates generate.
    pub device: simemu_core::ComputeDevice,
}

/// `selection/selection.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Selection {
    format: String,
    rule: String,
    candidates: Vec<CandidateScore>,
    /// Index into `candidates`.
    chosen: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct CandidateScore {
    model: String,
    seed: Value,
    /// Per set, in the order (point, set): the weakest statistic's pass fraction.
    lowest_pass_fractions: Vec<f64>,
    /// Per set: statistics whose checked bin means all agree.
    statistics_with_agreeing_means: Vec<usize>,
    score: f64,
}

const RULE: &str = "highest mean over the selection sets of the weakest statistic's (or \
statistic component's) pass fraction; ties: more statistics with agreeing bin means on average, then the earlier candidate";

/// Scores `trained` (checkpoint, training-stage inputs) as the stage "select
/// generator" and returns the index of the one to keep.
pub(crate) fn choose(p: &mut Pipeline, job: &Job, trained: &[(PathBuf, Value)]) -> Result<usize> {
    let out = p.dir.join("selection");
    let (requests, field) = job.statistics;
    let inputs = serde_json::json!({
        "candidates": trained.iter().map(|(_, inputs)| inputs).collect::<Vec<_>>(),
        "sets": job.sets, "points": job.points,
        "simulator": job.simulator, "counts": job.counts,
        "statistics": requests, "field": field,
        "seed": derive_seed(job.run_seed, "selection"),
    });
    let obs = p.observer();
    p.stage("select generator", inputs, &out, |_, _| {
        score_candidates(job, trained, &out, obs)
    })?;
    let path = out.join("selection.json");
    let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
    let selection: Selection = serde_json::from_str(&text)
        .map_err(|e| simemu_core::Error::bad_file(&path, e.to_string()))?;
    if selection.candidates.len() != trained.len() || selection.chosen >= trained.len() {
        return Err(simemu_core::Error::bad_file(
            &path,
            format!(
                "scores {} candidates and chooses #{}, but the run trained {}; rerun with --force",
                selection.candidates.len(),
                selection.chosen,
                trained.len()
            ),
        )
        .into());
    }
    obs.note(&format!(
        "selected candidate {} of {} (mean lowest pass fraction {:.1}%): {}",
        selection.chosen,
        trained.len(),
        100.0 * selection.candidates[selection.chosen].score,
        out.join("selection.md").display()
    ));
    Ok(selection.chosen)
}

fn score_candidates(
    job: &Job,
    trained: &[(PathBuf, Value)],
    out: &Path,
    obs: &dyn crate::Observer,
) -> Result<()> {
    // Whatever is there is a stale or interrupted selection: start clean.
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| io(out, e))?;
    }
    let scratch = out.join("scratch");
    let sim = job.simulator;
    let (reference_count, count) = job.counts;
    let mut lowest = vec![Vec::new(); trained.len()];
    let mut agreeing = vec![Vec::new(); trained.len()];
    let mut set_names = Vec::new();
    let conditional = conditional_flags(job.reg, trained.iter().map(|(checkpoint, _)| checkpoint))?;
    for (k, params) in job.points.iter().enumerate() {
        for j in 0..job.sets {
            let tag = format!("{k}-{j}");
            let reference = scratch.join(format!("reference-{tag}"));
            let seed = derive_seed(job.run_seed, &format!("selection-{tag}"));
            let set = (reference_count, false);
            sim.simulate_set(job.reg, params, set, seed, &reference, true, obs)?;
            let latent_seed = derive_seed(job.run_seed, &format!("selection-generate-{tag}"));
            let mut generated = Vec::new();
            for (c, ((checkpoint, _), &conditional)) in trained.iter().zip(&conditional).enumerate()
            {
                let set = scratch.join(format!("candidate-{c}-{tag}"));
                generate(
                    job.reg,
                    latent_seed,
                    &GenerateRequest {
                        checkpoint: checkpoint.clone(),
                        count,
                        params: generation_params(conditional, params),
                        out: set.clone(),
                        batch: 64,
                        label: Some(format!("candidate-{c}")),
                        force: true,
                        device: job.device,
                    },
                    obs,
                )?;
                generated.push(set);
            }
            let report = out.join(format!("report-{tag}"));
            let (statistics, field) = job.statistics;
            let lb = compare(
                job.reg,
                &CompareRequest {
                    reference: &reference,
                    candidates: &generated,
                    statistics,
                    vector_tests: &[],
                    field,
                    out: &report,
                    force: true,
                },
                obs,
            )?;
            for (c, row) in lb.rows.iter().enumerate() {
                lowest[c].push(row.lowest_pass_fraction());
                agreeing[c].push(row.statistics_with_agreeing_means());
            }
            set_names.push(format!("report-{tag}"));
            // The samples are cheap to redraw; the reports keep what was measured.
            std::fs::remove_dir_all(&scratch).map_err(|e| io(&scratch, e))?;
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let candidates: Vec<CandidateScore> = trained
        .iter()
        .zip(lowest.into_iter().zip(agreeing))
        .map(
            |((checkpoint, inputs), (lowest, agreeing))| CandidateScore {
                model: checkpoint.display().to_string(),
                seed: inputs["seed"].clone(),
                score: mean(&lowest),
                lowest_pass_fractions: lowest,
                statistics_with_agreeing_means: agreeing,
            },
        )
        .collect();
    let chosen = best(&candidates);
    let selection = Selection {
        format: "simemu-selection".into(),
        rule: RULE.into(),
        candidates,
        chosen,
    };
    simemu_core::fsutil::write_atomic(
        &out.join("selection.md"),
        markdown(&selection, &set_names).as_bytes(),
    )?;
    simemu_core::fsutil::write_json_atomic(&out.join("selection.json"), &selection)?;
    Ok(())
}

/// The index of the best candidate by [`RULE`].
fn best(candidates: &[CandidateScore]) -> usize {
    let agreeing = |c: &CandidateScore| {
        c.statistics_with_agreeing_means.iter().sum::<usize>() as f64
            / c.statistics_with_agreeing_means.len().max(1) as f64
    };
    let mut chosen = 0;
    for (i, c) in candidates.iter().enumerate().skip(1) {
        let b = &candidates[chosen];
        // Means of the same fractions summed in another order may differ in the
        // last bit; that is a tie.
        let (higher, tied) = (
            c.score - b.score > 1e-12,
            (c.score - b.score).abs() <= 1e-12,
        );
        if higher || (tied && agreeing(c) > agreeing(b)) {
            chosen = i;
        }
    }
    chosen
}

fn markdown(selection: &Selection, set_names: &[String]) -> String {
    use std::fmt::Write;
    let mut s = String::from("# Selection among training candidates\n\n");
    let _ = writeln!(s, "Rule: {}.\n", selection.rule);
    let _ = writeln!(
        s,
        "| candidate | seed | {} | score |",
        set_names.join(" | ")
    );
    let _ = writeln!(s, "|---|---|{}---|", "---|".repeat(set_names.len()));
    for (i, c) in selection.candidates.iter().enumerate() {
        let cells: Vec<String> = c
            .lowest_pass_fractions
            .iter()
            .zip(&c.statistics_with_agreeing_means)
            .map(|(f, a)| format!("{:.0}% · {a}", 100.0 * f))
            .collect();
        let mark = if i == selection.chosen {
            " **(chosen)**"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "| {i}{mark} (`{}`) | {} | {} | {:.1}% |",
            c.model,
            c.seed,
            cells.join(" | "),
            100.0 * c.score
        );
    }
    let _ = writeln!(
        s,
        "\nEach cell: the weakest statistic's pass fraction on that set · statistics whose bin means all agree (each set's report is in its directory)."
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(lowest: &[f64], agreeing: &[usize]) -> CandidateScore {
        CandidateScore {
            model: String::new(),
            seed: Value::Null,
            score: lowest.iter().sum::<f64>() / lowest.len() as f64,
            lowest_pass_fractions: lowest.to_vec(),
            statistics_with_agreeing_means: agreeing.to_vec(),
        }
    }

    #[test]
    fn the_highest_mean_weakest_pass_fraction_wins_then_agreeing_means_then_the_first() {
        let a = candidate(&[0.8, 0.9], &[4, 4]);
        let b = candidate(&[0.9, 0.9], &[2, 2]);
        let c = candidate(&[1.0, 0.7], &[4, 4]);
        assert_eq!(best(&[a, b, c]), 1);
        let a = candidate(&[0.9, 0.8], &[3, 3]);
        let b = candidate(&[0.8, 0.9], &[4, 3]);
        assert_eq!(best(&[a, b]), 1);
        let a = candidate(&[0.9, 0.8], &[3, 3]);
        let b = candidate(&[0.8, 0.9], &[3, 3]);
        assert_eq!(best(&[a, b]), 0);
    }
}
