//! [`Arch`]: the published backbones by name, parsed leniently.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::NnError;

/// The published backbones, by the names a training config uses.
///
/// Serde reads exactly the canonical name ([`Arch::name`]) or insightface's
/// short name ([`Arch::short_name`]) and writes the canonical one;
/// [`FromStr`] also ignores case, surrounding spaces, `-` and `_`
/// (`IResNet-50`), and answers [`NnError::UnknownArch`] listing every name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// IResNet-18 (`r18`): blocks 2, 2, 2, 2.
    #[serde(alias = "r18")]
    Iresnet18,
    /// IResNet-34 (`r34`): blocks 3, 4, 6, 3.
    #[serde(alias = "r34")]
    Iresnet34,
    /// IResNet-50 (`r50`): blocks 3, 4, 14, 3.
    #[serde(alias = "r50")]
    Iresnet50,
    /// IResNet-100 (`r100`): blocks 3, 13, 30, 3.
    #[serde(alias = "r100")]
    Iresnet100,
    /// IResNet-200 (`r200`): blocks 6, 26, 60, 6.
    #[serde(alias = "r200")]
    Iresnet200,
    /// insightface's MobileFaceNet `mbf`: blocks 1, 4, 6, 2 at width scale 2.
    #[serde(alias = "mbf")]
    Mobilefacenet,
    /// insightface's `mbf_large`: blocks 2, 8, 12, 4 at width scale 4.
    #[serde(alias = "mbf_large")]
    MobilefacenetLarge,
}

impl Arch {
    /// Every architecture, IResNets by depth then the MobileFaceNets (the
    /// order error messages list them in).
    pub const ALL: [Arch; 7] =
        [Arch::Iresnet18, Arch::Iresnet34, Arch::Iresnet50, Arch::Iresnet100, Arch::Iresnet200, Arch::Mobilefacenet, Arch::MobilefacenetLarge];

    /// The canonical name (`iresnet50`, `mobilefacenet_large`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::Iresnet18 => "iresnet18",
            Arch::Iresnet34 => "iresnet34",
            Arch::Iresnet50 => "iresnet50",
            Arch::Iresnet100 => "iresnet100",
            Arch::Iresnet200 => "iresnet200",
            Arch::Mobilefacenet => "mobilefacenet",
            Arch::MobilefacenetLarge => "mobilefacenet_large",
        }
    }

    /// insightface's short name (`r50`, `mbf`), accepted as an alias.
    pub fn short_name(self) -> &'static str {
        match self {
            Arch::Iresnet18 => "r18",
            Arch::Iresnet34 => "r34",
            Arch::Iresnet50 => "r50",
            Arch::Iresnet100 => "r100",
            Arch::Iresnet200 => "r200",
            Arch::Mobilefacenet => "mbf",
            Arch::MobilefacenetLarge => "mbf_large",
        }
    }

    /// True for the IResNets, false for the two MobileFaceNets.
    pub fn is_iresnet(self) -> bool {
        !matches!(self, Arch::Mobilefacenet | Arch::MobilefacenetLarge)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = NnError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Separators are optional: `iresnet50`, `IResNet-50`, `mbf_large`, `mbf-large`.
        let normalise = |name: &str| name.trim().to_ascii_lowercase().replace(['-', '_'], "");
        let wanted = normalise(text);
        let found = Arch::ALL.into_iter().find(|arch| normalise(arch.name()) == wanted || normalise(arch.short_name()) == wanted);
        found.ok_or_else(|| NnError::UnknownArch {
            name: text.to_string(),
            known: Arch::ALL.iter().map(|arch| format!("{} ({})", arch.name(), arch.short_name())).collect::<Vec<_>>().join(", "),
        })
    }
}
