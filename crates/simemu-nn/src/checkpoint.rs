//! The checkpoint directory convention every generator plugin shares, and the
//! variable bookkeeping around it.
//!
//! ```text
//! RUN_DIR/checkpoints/step-00000250/   one complete checkpoint (written atomically)
//!     state.json                       written last: a directory without it is ignored
//!     *.safetensors                    weights, optimizer moments, moving averages
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Tensor, Var};
use candle_nn::VarMap;
use simemu_core::{Error, Result};

use crate::{assign, ce, load_tensors, save_tensors, Adam, Ema};

/// The file whose presence makes a checkpoint directory complete.
pub const STATE_FILE: &str = "state.json";
/// The moving average of G's weights, beside a checkpoint's raw weights.
pub const MOVING_AVERAGE_FILE: &str = "generator_ema.safetensors";
const OPTIMIZER_FILES: [&str; 2] = ["optim_g.safetensors", "optim_d.safetensors"];

/// The directory of the checkpoint at `step` in run directory `run`.
pub fn step_dir(run: &Path, step: u64) -> PathBuf {
    run.join("checkpoints").join(format!("step-{step:08}"))
}

/// Steps of the complete checkpoints in `run`, ascending.
pub fn checkpoint_steps(run: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(run.join("checkpoints"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("step-"))
                .and_then(|n| n.parse().ok())
        })
        .filter(|s| step_dir(run, *s).join(STATE_FILE).exists())
        .collect();
    v.sort();
    v
}

/// Deletes all but the last `keep` checkpoints and the one at `protect`.
pub fn prune(run: &Path, keep: usize, protect: Option<u64>) -> Result<()> {
    simemu_core::fsutil::remove_stale_partials_in(&run.join("checkpoints"));
    let steps = checkpoint_steps(run);
    let n = steps.len();
    for (i, s) in steps.into_iter().enumerate() {
        if i + keep < n && Some(s) != protect {
            // Renamed first, so that a checkpoint is whole or gone: an
            // interrupted removal leaves a temporary name, cleaned later.
            let d = step_dir(run, s);
            let doomed = simemu_core::fsutil::partial_path(&d);
            std::fs::rename(&d, &doomed).map_err(|e| Error::io(&d, e))?;
            std::fs::remove_dir_all(&doomed).map_err(|e| Error::io(&doomed, e))?;
        }
    }
    Ok(())
}

/// Named variables of a VarMap, sorted by name.
pub fn named_vars(vm: &VarMap) -> Vec<(String, Var)> {
    let mut v: Vec<(String, Var)> = vm
        .data()
        .lock()
        .expect("varmap lock")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The variables an optimizer updates: all but BatchNorm running statistics.
pub fn trainable(vars: &[(String, Var)]) -> Vec<(String, Var)> {
    vars.iter()
        .filter(|(n, _)| !n.contains("running_"))
        .cloned()
        .collect()
}

/// Number of trainable parameters.
pub fn parameter_count(vars: &[(String, Var)]) -> usize {
    trainable(vars).iter().map(|(_, v)| v.elem_count()).sum()
}

/// The current values of `vars`, by name, for [`save_tensors`](crate::save_tensors).
pub fn tensors_of(vars: &[(String, Var)]) -> HashMap<String, Tensor> {
    vars.iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect()
}

/// Reads a checkpoint's `state.json`, refusing a corrupt one with the file named.
pub fn read_state<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<T> {
    let p = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::bad_file(&p, format!("corrupt checkpoint state: {e}")))
}

/// Writes each network's variables to `dir/NAME.safetensors`.
pub fn save_networks(dir: &Path, networks: &[(&str, &VarMap)]) -> Result<()> {
    for (name, vars) in networks {
        save_tensors(
            &dir.join(format!("{name}.safetensors")),
            &tensors_of(&named_vars(vars)),
        )?;
    }
    Ok(())
}

/// Loads each network's variables from `dir/NAME.safetensors` into existing
/// networks (refusing missing, mis-shaped or non-finite tensors).
pub fn load_networks(dir: &Path, networks: &[(&str, &VarMap)]) -> Result<()> {
    for (name, vars) in networks {
        assign(
            &named_vars(vars),
            &load_tensors(&dir.join(format!("{name}.safetensors")))?,
            name,
        )?;
    }
    Ok(())
}

/// Writes a GAN's training state besides its networks: both Adam states (G's, D's)
/// and the moving average of G's weights, if there is one.
pub fn save_optimizers(
    dir: &Path,
    (opt_g, opt_d): (&Adam, &Adam),
    ema: Option<&Ema>,
) -> Result<()> {
    for (file, opt) in OPTIMIZER_FILES.iter().zip([opt_g, opt_d]) {
        save_tensors(
            &dir.join(file),
            &opt.state().map_err(ce("optimizer state"))?,
        )?;
    }
    if let Some(ema) = ema {
        save_tensors(
            &dir.join(MOVING_AVERAGE_FILE),
            &ema.state().map_err(ce("moving average"))?,
        )?;
    }
    Ok(())
}

/// Restores what [`save_optimizers`] wrote.
pub fn load_optimizers(
    dir: &Path,
    (opt_g, opt_d): (&mut Adam, &mut Adam),
    ema: Option<&mut Ema>,
) -> Result<()> {
    for (file, opt) in OPTIMIZER_FILES.iter().zip([opt_g, opt_d]) {
        opt.load_state(&load_tensors(&dir.join(file))?)?;
    }
    if let Some(ema) = ema {
        ema.load_state(&load_tensors(&dir.join(MOVING_AVERAGE_FILE))?)?;
    }
    Ok(())
}

/// Sets G's variables to the moving average saved in checkpoint `dir`, when it has
/// one: the weights that generate.
pub fn load_moving_average(dir: &Path, g_vars: &VarMap) -> Result<()> {
    let path = dir.join(MOVING_AVERAGE_FILE);
    if path.exists() {
        assign(
            &named_vars(g_vars),
            &load_tensors(&path)?,
            "generator moving average",
        )?;
    }
    Ok(())
}

/// The rows of a training log (a CSV whose first column is the step) up to and
/// including `step`, without the header: what a run resumed at `step` keeps.
pub fn log_rows_up_to(path: &Path, step: u64) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .skip(1)
                .filter(|l| {
                    l.split(',')
                        .next()
                        .and_then(|s| s.parse::<u64>().ok())
                        .is_some_and(|s| s <= step)
                })
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Writes a training log atomically: `header`, then one line per row.
pub fn write_log(path: &Path, header: &str, rows: &[String]) -> Result<()> {
    let mut text = format!("{header}\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    simemu_core::fsutil::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_complete_checkpoints_count_and_pruning_keeps_the_protected_one() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        for step in [10, 20, 30, 40] {
            std::fs::create_dir_all(step_dir(run, step)).unwrap();
            if step != 40 {
                std::fs::write(step_dir(run, step).join(STATE_FILE), "{}").unwrap();
            }
        }
        // 40 has no state.json: an interrupted write.
        assert_eq!(checkpoint_steps(run), [10, 20, 30]);
        prune(run, 1, Some(10)).unwrap();
        assert_eq!(checkpoint_steps(run), [10, 30]);
    }

    #[test]
    fn a_resumed_log_keeps_the_rows_up_to_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("training.csv");
        assert!(log_rows_up_to(&log, 5).is_empty(), "no log yet");
        let rows: Vec<String> = ["10,0.5", "20,0.4", "30,0.3"].map(String::from).to_vec();
        write_log(&log, "step,loss", &rows).unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "step,loss\n10,0.5\n20,0.4\n30,0.3\n"
        );
        assert_eq!(log_rows_up_to(&log, 20), rows[..2]);
    }
}
