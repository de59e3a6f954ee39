//! `mixsac inspect`: the header of a policy file, checked by policy-core.

use anyhow::{Context, Result};
use policy_core::format::{self, Header};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The policy file.
    file: PathBuf,
}

pub fn run(Args { file: path }: Args) -> Result<()> {
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let (header, weights) = format::parse(&bytes).with_context(|| format!("{}", path.display()))?;
    print!(
        "{}",
        describe(
            &path.display().to_string(),
            bytes.len(),
            &header,
            weights.len() / 4
        )
    );
    Ok(())
}

fn describe(path: &str, file_len: usize, h: &Header, weights: usize) -> String {
    let kind = match (h.components, h.squash) {
        (1, true) => "squashed Gaussian",
        (1, false) => "Gaussian",
        (_, true) => "squashed Gaussian mixture",
        (_, false) => "Gaussian mixture",
    };
    let hidden: Vec<String> = h.hidden.iter().map(usize::to_string).collect();
    format!(
        "file:          {path} ({file_len} bytes, format version {})\n\
         policy:        {kind}, {} component(s)\n\
         network:       obs {} -> hidden {} ({:?}) -> action {}\n\
         log-std clamp: [{}, {}]\n\
         action low:    {:?}\n\
         action high:   {:?}\n\
         parameters:    {weights}\n",
        format::FORMAT_VERSION,
        h.components,
        h.obs_dim,
        hidden.join("x"),
        h.activation,
        h.action_dim,
        h.log_std_min,
        h.log_std_max,
        h.action_low.to_vec(),
        h.action_high.to_vec(),
    )
}
