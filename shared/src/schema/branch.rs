//! The branch profile: what a party cell is called and what kind it is.
//!
//! The roster, roles and devices are server-authoritative relational data, not CRDT (who may write
//! is not something a merge may decide); the profile only mirrors display names so documents can
//! be shown and printed offline.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};

use super::{DocKind, Document, string_enum};

string_enum! {
    /// The kind of branch; it decides which mass organisations are invited to the forum.
    pub enum BranchKind {
        /// Residential area (địa bàn dân cư): invite the Fatherland Front and mass organisations.
        Residential = "residential",
        /// Administrative agency, public service unit or armed forces unit (cơ quan, đơn vị).
        AgencyOrUnit = "agency-or-unit",
        /// Enterprise (doanh nghiệp).
        Enterprise = "enterprise",
    }
}

/// `branch/<branch>/profile`, written by the committee.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct BranchProfile {
    /// "Chi bộ Khu phố 3".
    pub name: String,
    pub branch_kind: BranchKind,
    /// The directly superior party organisation, for document headers ("Đảng bộ Phường ...").
    pub superior: String,
    /// Place name used in dated headers ("..., ngày ... tháng ... năm ...").
    pub place: String,
    /// Display names by member id (bs58 string); a mirror of the server's roster.
    pub display_names: BTreeMap<String, String>,
}

impl Document for BranchProfile {
    const KIND: DocKind = DocKind::BranchProfile;

    fn genesis_value() -> Self {
        BranchProfile {
            name: String::new(),
            branch_kind: BranchKind::Residential,
            superior: String::new(),
            place: String::new(),
            display_names: BTreeMap::new(),
        }
    }
}
