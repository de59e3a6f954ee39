//! The estimator cases compared: each an estimator of DESIGN.md §4 with its baseline setting.

use crate::config::Estimator;
use crate::sac::estimators::EstimatorSettings;

/// One estimator as measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// `rep` on the squashed Gaussian (K = 1): the reference.
    Rep,
    /// `like` with its baseline of `baseline_samples` actions.
    Like,
    /// `like` without a baseline (b = 0): the plain likelihood-ratio estimator.
    LikeNoBaseline,
    HalfRep,
    Gumbel,
    Mrp,
}

impl Case {
    /// Every case, in table order.
    pub const ALL: [Case; 6] = [
        Case::Rep,
        Case::Like,
        Case::LikeNoBaseline,
        Case::HalfRep,
        Case::Gumbel,
        Case::Mrp,
    ];

    /// The name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Case::Rep => "rep",
            Case::Like => "like",
            Case::LikeNoBaseline => "like-nobaseline",
            Case::HalfRep => "halfrep",
            Case::Gumbel => "gumbel",
            Case::Mrp => "mrp",
        }
    }

    pub fn estimator(self) -> Estimator {
        match self {
            Case::Rep => Estimator::Rep,
            Case::Like | Case::LikeNoBaseline => Estimator::Like,
            Case::HalfRep => Estimator::HalfRep,
            Case::Gumbel => Estimator::Gumbel,
            Case::Mrp => Estimator::Mrp,
        }
    }

    /// The cases that apply to a policy of `components` components: the mixture estimators
    /// for K > 1; for K = 1 `rep` and `like` (`halfrep`, `gumbel` and `mrp` reduce to `rep`
    /// there).
    pub fn for_components(components: usize) -> Vec<Case> {
        match components {
            1 => vec![Case::Rep, Case::Like, Case::LikeNoBaseline],
            _ => vec![
                Case::Like,
                Case::LikeNoBaseline,
                Case::HalfRep,
                Case::Gumbel,
                Case::Mrp,
            ],
        }
    }

    /// `settings` as this case uses them (no baseline for [`Case::LikeNoBaseline`]).
    pub fn settings(self, settings: &EstimatorSettings) -> EstimatorSettings {
        EstimatorSettings {
            baseline_samples: match self {
                Case::LikeNoBaseline => 0,
                _ => settings.baseline_samples,
            },
            ..settings.clone()
        }
    }
}
