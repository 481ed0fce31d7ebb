//! The demo branch: every document hydrates, and two builds are identical.

use super::read;
use crate::schema::demo::{DemoRole, demo_branch, demo_branch_id, demo_forum_id, demo_paths};
use crate::schema::*;

#[test]
fn demo_branch_documents_all_hydrate() {
    let demo = demo_branch();
    assert_eq!(demo.name, "Chi bộ Khu phố 3");
    assert_eq!(demo.roster.len(), 7);
    let count = |role| demo.roster.iter().filter(|m| m.role == role).count();
    assert_eq!((count(DemoRole::Secretary), count(DemoRole::Clerk), count(DemoRole::Member)), (1, 1, 5));
    // Profile + forum + resolution + (self-assessment + plan) per person.
    assert_eq!(demo.documents.len(), 3 + 2 * demo.roster.len());
    assert_eq!(demo.paths.len(), demo.documents.len());

    for (path, (id, doc)) in demo.paths.iter().zip(&demo.documents) {
        assert_eq!(*id, path.document_id());
        assert_eq!(path.branch(), demo.branch);
        check_document(doc, path.kind()).unwrap_or_else(|e| panic!("{path}: {e}"));
        // Every demo document starts from its kind's genesis.
        let first = doc.get_changes(&[]).first().map(|c| c.hash());
        assert_eq!(first, Some(genesis_change_hash(path.kind())), "{path}");
    }

    let (_, profile_doc) = &demo.documents[0];
    let profile: BranchProfile = read(profile_doc);
    assert_eq!(profile.branch_kind, BranchKind::Residential);
    assert_eq!(profile.display_names.len(), 7);

    let (_, forum_doc) = &demo.documents[1];
    let forum: Forum = read(forum_doc);
    assert_eq!(forum.chair, Some(demo.roster[0].id));
    assert_eq!(forum.clerk, Some(demo.roster[1].id));
    assert!(ScriptSection::ALL.iter().all(|s| !forum.script.section(*s).as_str().is_empty()));
    assert!(forum.minutes.as_str().starts_with("Hôm nay, ngày 15 tháng 3 năm 2026"));
    assert_eq!(forum.sessions.len(), 1);
    assert_eq!(forum.guests.len(), 3);
    assert_eq!(forum.attendance.len(), 7);

    let assessments =
        demo.paths.iter().zip(&demo.documents).filter(|(p, _)| p.kind() == DocKind::SelfAssessment);
    for (_, (_, doc)) in assessments {
        let a: SelfAssessment = read(doc);
        assert_eq!(a.catalogue_id, crate::catalogue::Catalogue::builtin().id());
        assert!(a.items.values().all(|i| i.applies.is_none() && i.note.as_str().is_empty()));
    }
    let plans = demo.paths.iter().filter(|p| matches!(p, DocPath::PersonalPlan { year: 2026, .. })).count();
    assert_eq!(plans, 7);
}

#[test]
fn demo_branch_is_deterministic() {
    let a = demo_branch();
    let b = demo_branch();
    assert_eq!(a.roster, b.roster);
    assert_eq!(a.paths, b.paths);
    for ((id_a, doc_a), (id_b, doc_b)) in a.documents.iter().zip(&b.documents) {
        assert_eq!(id_a, id_b);
        assert_eq!(doc_a.get_heads(), doc_b.get_heads(), "{id_a}");
        assert_eq!(doc_a.save(), doc_b.save(), "{id_a}");
    }
}

#[test]
fn demo_paths_name_the_demo_documents_without_building_them() {
    let demo = demo_branch();
    assert_eq!(demo_paths(), demo.paths);
    assert_eq!(demo_paths(), demo_paths());
    assert_eq!((demo_branch_id(), demo_forum_id()), (demo.branch, demo.forum));
    assert_eq!(demo_paths()[0], DocPath::BranchProfile { branch: demo.branch });
    assert_eq!(demo_paths()[1], DocPath::Forum { branch: demo.branch, forum: demo.forum });
}
