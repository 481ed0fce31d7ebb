//! The heat map of the 27 manifestations across the branch: for each item, how many members said
//! it does not apply, how many said it applies at each degree of the catalogue's scale, and how
//! many have not answered.
//!
//! How answers are stored ([`crate::schema::ItemAssessment`]): `applies` is `None` until answered;
//! `degree` is a code of the catalogue's degree scale, set only when the item applies (the
//! self-assessment page clears it when the member answers "does not apply"). So each assessment
//! falls in exactly one cell of each row, and every row adds up to the number of assessments.

use crate::catalogue::{Catalogue, ITEM_CODES};
use crate::schema::SelfAssessment;

/// The counts for one manifestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeatRow {
    /// The item code (`A1`..`C9`).
    pub code: &'static str,
    /// Members for whom it applies, by degree: `by_degree[i]` counts [`HeatMap::degrees`]`[i]`.
    pub by_degree: Vec<u32>,
    /// It applies, but no degree chosen yet.
    pub applies_without_degree: u32,
    /// It applies, with a degree code that is not in this catalogue's scale (an assessment made
    /// against another catalogue version).
    pub unknown_degree: u32,
    /// Members who answered that it does not apply.
    pub does_not_apply: u32,
    /// Members who have not answered (the item, or the whole assessment is empty).
    pub unanswered: u32,
}

impl HeatRow {
    /// Members for whom the item applies (any degree or none yet).
    pub fn applies(&self) -> u32 {
        self.by_degree.iter().sum::<u32>() + self.applies_without_degree + self.unknown_degree
    }
}

/// The branch's heat map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeatMap {
    /// The degree codes of the catalogue's scale, in scale order (labels: [`Catalogue::degree`]).
    pub degrees: Vec<String>,
    /// One row per item, `A1`..`C9` in order.
    pub rows: Vec<HeatRow>,
    /// Assessments counted (each row adds up to this).
    pub assessments: u32,
    /// Members whose assessment is not on this device (not counted anywhere).
    pub missing: u32,
}

/// Counts the branch's self-assessments (`None`: a member's assessment is not on this device)
/// against `catalogue`'s degree scale.
pub fn heat_map<'a>(
    catalogue: &Catalogue,
    assessments: impl IntoIterator<Item = Option<&'a SelfAssessment>>,
) -> HeatMap {
    let degrees: Vec<String> = catalogue.degrees().iter().map(|d| d.code().to_owned()).collect();
    let mut rows: Vec<HeatRow> = ITEM_CODES
        .iter()
        .map(|code| HeatRow {
            code,
            by_degree: vec![0; degrees.len()],
            applies_without_degree: 0,
            unknown_degree: 0,
            does_not_apply: 0,
            unanswered: 0,
        })
        .collect();
    let (mut counted, mut missing) = (0, 0);
    for assessment in assessments {
        let Some(assessment) = assessment else {
            missing += 1;
            continue;
        };
        counted += 1;
        for row in &mut rows {
            let item = assessment.items.get(row.code);
            match item.and_then(|i| i.applies) {
                None => row.unanswered += 1,
                Some(false) => row.does_not_apply += 1,
                Some(true) => match item.and_then(|i| i.degree.as_deref()) {
                    None => row.applies_without_degree += 1,
                    Some(degree) => match degrees.iter().position(|d| d == degree) {
                        Some(i) => row.by_degree[i] += 1,
                        None => row.unknown_degree += 1,
                    },
                },
            }
        }
    }
    HeatMap { degrees, rows, assessments: counted, missing }
}
