//! `mixsac inspect`: the header of a policy file, checked by policy-core.

use anyhow::{Context, Result};
use policy_core::format::{self, BlockKind, Encoding, Header};
use policy_core::int8::Params;
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
            header.weight_count()
        )
    );
    if header.encoding == Encoding::Int8 {
        print!(
            "{}",
            describe_int8(&header, &Params::new(&header, weights)?)
        );
    }
    Ok(())
}

/// The quantization of a version-3 file: its scales, layer by layer.
fn describe_int8(h: &Header, p: &Params) -> String {
    let mut out = String::from(
        "quantization:  int8 weights (symmetric, per-output f32 scales), i32 biases, \
         16-bit activation codes, i32 accumulation\n",
    );
    let obs: Vec<String> = (0..h.obs_dim)
        .filter_map(|i| p.obs_scale(i))
        .map(|s| format!("±{:.4}", s * 32767.0))
        .collect();
    out += &format!("  observation ranges:   [{}]\n", obs.join(", "));
    for l in 0..h.hidden.len() {
        if let Some(s) = p.act_scale(l) {
            out += &format!("  hidden {l} output range: ±{:.4}\n", s * 32767.0);
        }
    }
    for (block, q) in h.blocks().iter().zip(p.blocks.iter()) {
        let name = match block.kind {
            BlockKind::Hidden(l) => format!("hidden {l}"),
            BlockKind::Mean => "mean".into(),
            BlockKind::LogStd => "log_std".into(),
            BlockKind::Logits => "logits".into(),
        };
        let (lo, hi) = q.scales().fold((f32::INFINITY, 0.0f32), |(lo, hi), s| {
            (lo.min(s), hi.max(s))
        });
        out += &format!(
            "  {name:<8} {}x{}  accumulator scales {lo:.3e} .. {hi:.3e}\n",
            q.inputs(),
            q.outputs
        );
    }
    out
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
         parameters:    {weights} ({})\n",
        h.encoding.version(),
        h.components,
        h.obs_dim,
        hidden.join("x"),
        h.activation,
        h.action_dim,
        h.log_std_min,
        h.log_std_max,
        h.action_low.to_vec(),
        h.action_high.to_vec(),
        match h.encoding {
            Encoding::F32 => "f32",
            Encoding::Int8 => "int8",
        },
    )
}
