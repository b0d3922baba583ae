//! The iscsi step (not built yet: it says so plainly to the operator).

use crate::steps::{NotBuilt, Step, StepName};

/// The step implementation.
pub fn step() -> Box<dyn Step> {
    Box::new(NotBuilt(StepName::Iscsi))
}
