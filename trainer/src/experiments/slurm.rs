//! A sweep as Slurm jobs on a shared filesystem (`mixsac slurm`): Slurm schedules, `mixsac`
//! does the work. In `<sweep>/slurm/` it writes plain scripts, readable and editable by
//! hand:
//!
//! - `grid.sbatch`: a job array; task I of N runs `mixsac sweep --shard I/N --phase grid`
//!   with `--jobs $SLURM_CPUS_PER_TASK`;
//! - `best.sbatch` (specs with `rerun_best`): the same for the reruns, `--phase best`;
//! - `plot.sbatch`: `mixsac sweep --collect` (results.csv), then `mixsac plot`;
//! - `submit.sh`: submits the three, each later one with `--dependency=afterok:` on the
//!   one before, and prints their ids.
//!
//! Each task logs to `<sweep>/slurm/<job>-<array job id>_<task>.log`.
//!
//! No value can run a command: values in `#SBATCH` lines (parsed by Slurm, not by a shell)
//! are refused unless made of a small set of plain characters ([`SlurmError::Refused`]);
//! values in the shell body are written as single-quoted words by [`shell::quote`].

use crate::experiments::shell::{self, NulInValue};
use crate::experiments::sweep_dir::SweepDir;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// What each job asks of Slurm. `None` leaves the cluster's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub partition: Option<String>,
    /// Wall-time limit per task, Slurm's `[days-]hours:minutes:seconds`.
    pub time: Option<String>,
    /// Cores per task, and the runs each task trains at once.
    pub cpus_per_task: u32,
    /// Memory per task (node memory units: `4000`, `8G`).
    pub mem: Option<String>,
    pub account: Option<String>,
    /// GPUs per task of the grid and reruns (`1`, `a100:1`).
    pub gpus: Option<String>,
}

/// The jobs of one sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The sweep directory (absolute, on the filesystem the nodes share).
    pub sweep: PathBuf,
    /// The `mixsac` the nodes run (absolute, on the shared filesystem).
    pub mixsac: PathBuf,
    /// Job names start `mixsac-<name>-`.
    pub name: String,
    /// Tasks of the grid array.
    pub grid_tasks: usize,
    /// Tasks of the rerun array; 0 for a spec without reruns.
    pub best_tasks: usize,
    pub resources: Resources,
}

/// A value that cannot go into a job script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlurmError {
    #[error("{flag} {value:?} cannot go into an #SBATCH line (Slurm parses those itself): {rule}")]
    Refused {
        flag: &'static str,
        value: String,
        rule: &'static str,
    },
    #[error("{what} {path:?} is not valid UTF-8, which a job script needs")]
    NotUtf8 { what: &'static str, path: PathBuf },
    #[error(transparent)]
    Nul(#[from] NulInValue),
}

/// The files [`write_scripts`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scripts {
    pub grid: PathBuf,
    pub best: Option<PathBuf>,
    pub plot: PathBuf,
    pub submit: PathBuf,
}

/// `name` reduced to the characters a job name may hold here (others become `_`).
pub fn job_name(name: &str) -> String {
    name.chars()
        .map(|c| if plain(c) { c } else { '_' })
        .collect()
}

fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Checks a value for an `#SBATCH` line: non-empty, only `plain` characters or `extra`.
fn checked(
    flag: &'static str,
    value: &str,
    extra: &str,
    rule: &'static str,
) -> Result<String, SlurmError> {
    if value.is_empty() || !value.chars().all(|c| plain(c) || extra.contains(c)) {
        return Err(SlurmError::Refused {
            flag,
            value: value.into(),
            rule,
        });
    }
    Ok(value.into())
}

impl Resources {
    /// The `#SBATCH` lines of these resources (GPUs only where `with_gpus`), every value
    /// checked.
    fn lines(&self, with_gpus: bool) -> Result<Vec<String>, SlurmError> {
        let mut lines = vec![format!("--cpus-per-task={}", self.cpus_per_task)];
        let optional: [(&'static str, &Option<String>, &str, &'static str); 5] = [
            (
                "--partition",
                &self.partition,
                ",",
                "letters, digits and _ . - , only",
            ),
            (
                "--time",
                &self.time,
                ":",
                "[days-]hours:minutes:seconds, digits and - : only",
            ),
            (
                "--mem",
                &self.mem,
                "",
                "a number with an optional unit K, M, G or T",
            ),
            (
                "--account",
                &self.account,
                "",
                "letters, digits and _ . - only",
            ),
            (
                "--gpus",
                &self.gpus,
                ":,",
                "letters, digits and _ . - : , only",
            ),
        ];
        for (flag, value, extra, rule) in optional {
            if let Some(value) = value {
                if flag == "--gpus" && !with_gpus {
                    continue;
                }
                let value = checked(flag, value, extra, rule)?;
                let time_ok = |v: &str| {
                    v.starts_with(|c: char| c.is_ascii_digit())
                        && v.chars()
                            .all(|c| c.is_ascii_digit() || c == ':' || c == '-')
                };
                if flag == "--time" && !time_ok(&value) {
                    return Err(SlurmError::Refused { flag, value, rule });
                }
                if flag == "--mem" && !mem_ok(&value) {
                    return Err(SlurmError::Refused { flag, value, rule });
                }
                lines.push(format!("{flag}={value}"));
            }
        }
        Ok(lines)
    }
}

fn mem_ok(value: &str) -> bool {
    let digits = value.trim_end_matches(['K', 'M', 'G', 'T']);
    !digits.is_empty()
        && digits.len() + 1 >= value.len()
        && digits.bytes().all(|b| b.is_ascii_digit())
}

fn utf8<'a>(what: &'static str, path: &'a Path) -> Result<&'a str, SlurmError> {
    path.to_str().ok_or_else(|| SlurmError::NotUtf8 {
        what,
        path: path.into(),
    })
}

/// What every job script starts with after its `#SBATCH` lines: where mixsac and the sweep
/// are, as quoted shell words.
struct Body {
    mixsac: String,
    sweep: String,
    /// The log folder for `#SBATCH --output` (checked: plain characters only).
    logs: String,
}

impl Plan {
    fn body(&self) -> Result<Body, SlurmError> {
        let sweep = utf8("the sweep directory", &self.sweep)?;
        let logs_dir = SweepDir::new(&self.sweep).slurm();
        let logs = checked(
            "--out",
            utf8("the sweep directory", &logs_dir)?,
            "/,+=@:",
            "its logs' path may hold letters, digits and / _ . - , + = @ : only; use a plainer directory",
        )?;
        Ok(Body {
            mixsac: shell::quote(utf8("--mixsac", &self.mixsac)?, "--mixsac")?,
            sweep: shell::quote(sweep, "the sweep directory")?,
            logs,
        })
    }

    /// `grid.sbatch` or `best.sbatch`: one shard of the phase per array task.
    pub fn array_script(&self, phase: &str, tasks: usize) -> Result<String, SlurmError> {
        let body = self.body()?;
        let (what, after) = if phase == "grid" {
            ("the grid", String::new())
        } else {
            (
                "the reruns of the best settings",
                "# Submit it once the grid has succeeded: sbatch --dependency=afterok:<grid job id>\n".into(),
            )
        };
        let mut s = format!(
            "#!/bin/bash\n\
             # Written by `mixsac slurm`: {what} of the sweep in {sweep}\n\
             # (spec: its spec.toml). Array task I trains part I of {tasks} (parts balanced by\n\
             # training steps), --cpus-per-task runs at a time. Finished runs are skipped and\n\
             # interrupted ones resume from their checkpoints: submitting this file again (all of it,\n\
             # or some tasks: sbatch --array=2,5 {phase}.sbatch) finishes only what is missing.\n\
             {after}",
            sweep = body.sweep,
        );
        s += &format!(
            "#SBATCH --job-name={}\n",
            job_name(&format!("mixsac-{}-{phase}", self.name))
        );
        s += &format!("#SBATCH --array=1-{tasks}\n");
        for line in self.resources.lines(true)? {
            s += &format!("#SBATCH {line}\n");
        }
        s += &format!("#SBATCH --output={}/{phase}-%A_%a.log\n", body.logs);
        s += &format!(
            "set -euo pipefail\n\
             mixsac={mixsac}\n\
             sweep={sweep}\n\
             tasks={tasks}\n\
             exec \"$mixsac\" sweep --spec \"$sweep/spec.toml\" --out \"$sweep\" --phase {phase} \\\n    \
             --shard \"$SLURM_ARRAY_TASK_ID/$tasks\" --jobs \"${{SLURM_CPUS_PER_TASK:-1}}\"\n",
            mixsac = body.mixsac,
            sweep = body.sweep,
        );
        Ok(s)
    }

    /// `plot.sbatch`: results.csv from every run's summary, then the figures.
    pub fn plot_script(&self) -> Result<String, SlurmError> {
        let body = self.body()?;
        let resources = Resources {
            cpus_per_task: 1,
            gpus: None,
            ..self.resources.clone()
        };
        let mut s = format!(
            "#!/bin/bash\n\
             # Written by `mixsac slurm`: results.csv and the figures of the sweep in\n\
             # {sweep}, once every run has finished (submit.sh makes it wait for the others).\n",
            sweep = body.sweep
        );
        s += &format!(
            "#SBATCH --job-name={}\n",
            job_name(&format!("mixsac-{}-plot", self.name))
        );
        for line in resources.lines(false)? {
            s += &format!("#SBATCH {line}\n");
        }
        s += &format!("#SBATCH --output={}/plot-%j.log\n", body.logs);
        s += &format!(
            "set -euo pipefail\n\
             mixsac={mixsac}\n\
             sweep={sweep}\n\
             \"$mixsac\" sweep --collect \"$sweep\"\n\
             \"$mixsac\" plot --sweep \"$sweep\"\n",
            mixsac = body.mixsac,
            sweep = body.sweep,
        );
        Ok(s)
    }

    /// `submit.sh`: the jobs in order, each waiting for the one before to succeed.
    pub fn submit_script(&self) -> Result<String, SlurmError> {
        let slurm = SweepDir::new(&self.sweep).slurm();
        let slurm = shell::quote(utf8("the sweep directory", &slurm)?, "the sweep directory")?;
        let mut s = format!(
            "#!/bin/bash\n\
             # Written by `mixsac slurm`: submits the sweep's jobs, each later one waiting for the\n\
             # one before to succeed (afterok), and prints one line per job: its name and id.\n\
             set -euo pipefail\n\
             slurm={slurm}\n\
             submit() {{ local out; out=$(sbatch --parsable \"$@\"); echo \"${{out%%;*}}\"; }}\n\
             grid=$(submit \"$slurm/grid.sbatch\")\n\
             echo \"grid $grid\"\n\
             last=$grid\n"
        );
        if self.best_tasks > 0 {
            s += "best=$(submit --dependency=\"afterok:$grid\" \"$slurm/best.sbatch\")\n\
                  echo \"best $best\"\n\
                  last=$best\n";
        }
        s += "plot=$(submit --dependency=\"afterok:$last\" \"$slurm/plot.sbatch\")\n\
              echo \"plot $plot\"\n";
        Ok(s)
    }
}

/// Writes the scripts of `plan` into `<sweep>/slurm/` (executable), after checking every
/// value; nothing is written if one is refused.
pub fn write_scripts(plan: &Plan) -> Result<Scripts> {
    let grid_text = plan.array_script("grid", plan.grid_tasks)?;
    let best_text = (plan.best_tasks > 0)
        .then(|| plan.array_script("best", plan.best_tasks))
        .transpose()?;
    let plot_text = plan.plot_script()?;
    let submit_text = plan.submit_script()?;
    let dir = SweepDir::new(&plan.sweep).slurm();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let write = |name: &str, text: &str| -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(path)
    };
    let best = match &best_text {
        Some(text) => Some(write("best.sbatch", text)?),
        None => {
            let _ = std::fs::remove_file(dir.join("best.sbatch"));
            None
        }
    };
    Ok(Scripts {
        grid: write("grid.sbatch", &grid_text)?,
        best,
        plot: write("plot.sbatch", &plot_text)?,
        submit: write("submit.sh", &submit_text)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            sweep: "/shared/sweeps/tiny".into(),
            mixsac: "/shared/bin/mixsac".into(),
            name: "tiny".into(),
            grid_tasks: 3,
            best_tasks: 2,
            resources: Resources {
                cpus_per_task: 4,
                partition: Some("cpu,long".into()),
                time: Some("1-02:00:00".into()),
                mem: Some("8G".into()),
                account: Some("rl-lab".into()),
                gpus: Some("a100:1".into()),
            },
        }
    }

    #[test]
    fn the_grid_script_reads_as_documented() {
        let text = plan().array_script("grid", 3).unwrap();
        let expected = "#SBATCH --job-name=mixsac-tiny-grid\n\
            #SBATCH --array=1-3\n\
            #SBATCH --cpus-per-task=4\n\
            #SBATCH --partition=cpu,long\n\
            #SBATCH --time=1-02:00:00\n\
            #SBATCH --mem=8G\n\
            #SBATCH --account=rl-lab\n\
            #SBATCH --gpus=a100:1\n\
            #SBATCH --output=/shared/sweeps/tiny/slurm/grid-%A_%a.log\n\
            set -euo pipefail\n\
            mixsac='/shared/bin/mixsac'\n\
            sweep='/shared/sweeps/tiny'\n\
            tasks=3\n\
            exec \"$mixsac\" sweep --spec \"$sweep/spec.toml\" --out \"$sweep\" --phase grid \\\n    \
            --shard \"$SLURM_ARRAY_TASK_ID/$tasks\" --jobs \"${SLURM_CPUS_PER_TASK:-1}\"\n";
        assert!(
            text.starts_with("#!/bin/bash\n# Written by `mixsac slurm`"),
            "{text}"
        );
        assert!(text.ends_with(expected), "{text}");
        let plot = plan().plot_script().unwrap();
        assert!(
            plot.contains("#SBATCH --cpus-per-task=1\n") && !plot.contains("--gpus"),
            "{plot}"
        );
        let submit = plan().submit_script().unwrap();
        assert!(
            submit.contains("--dependency=\"afterok:$grid\" \"$slurm/best.sbatch\""),
            "{submit}"
        );
        assert!(
            submit.contains("--dependency=\"afterok:$last\" \"$slurm/plot.sbatch\""),
            "{submit}"
        );
    }

    #[test]
    fn odd_values_for_sbatch_lines_are_refused_by_name() {
        let hostile = [
            "a b",
            "a;b",
            "$(touch x)",
            "`x`",
            "a'b",
            "a\"b",
            "a\nb",
            "a#b",
            "",
            "a\\b",
            "%x",
        ];
        for value in hostile {
            for flag in ["--partition", "--time", "--mem", "--account", "--gpus"] {
                let mut p = plan();
                let v = Some(value.to_string());
                match flag {
                    "--partition" => p.resources.partition = v,
                    "--time" => p.resources.time = v,
                    "--mem" => p.resources.mem = v,
                    "--account" => p.resources.account = v,
                    _ => p.resources.gpus = v,
                }
                let err = p.array_script("grid", 3).unwrap_err();
                assert!(
                    matches!(&err, SlurmError::Refused { flag: f, value: v, .. } if f == &flag && v == value),
                    "{flag} {value:?}: {err:?}"
                );
            }
            if value.is_empty() {
                continue;
            }
            let mut p = plan();
            p.sweep = format!("/shared/{value}/x").into();
            assert!(
                matches!(
                    p.array_script("grid", 3),
                    Err(SlurmError::Refused { flag: "--out", .. })
                ),
                "{value:?}"
            );
        }
        for (flag, value) in [
            ("--mem", "8GB"),
            ("--mem", "G"),
            ("--time", "-1"),
            ("--time", "a"),
            ("--time", "1a"),
        ] {
            let mut p = plan();
            match flag {
                "--mem" => p.resources.mem = Some(value.into()),
                _ => p.resources.time = Some(value.into()),
            }
            assert!(p.array_script("grid", 3).is_err(), "{flag} {value}");
        }
        assert_eq!(job_name("a b;$(x)'.toml"), "a_b___x__.toml");
    }
}
