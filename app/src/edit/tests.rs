//! Splices on Vietnamese text: precomposed letters (multibyte in UTF-8), combining marks (several
//! characters per letter), and astral characters (two UTF-16 units), checked against automerge's
//! own indexing through `schema::splice_text`.
#![allow(clippy::unwrap_used)]

use automerge::Automerge;
use chibo_shared::schema::{DocKind, ForumText, genesis, read_text, splice_text};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

use super::*;

wasm_bindgen_test_configure!(run_in_browser);

fn splice(pos: usize, del: usize, insert: &str) -> Splice {
    Splice { pos, del, insert: insert.to_owned() }
}

/// A forum document (genesis only) whose minutes hold `text`.
fn minutes_doc(text: &str) -> Automerge {
    let mut doc = genesis(DocKind::Forum);
    splice_text(&mut doc, &ForumText::Minutes, 0, 0, text, 0).unwrap();
    doc
}

fn apply_to_doc(doc: &mut Automerge, s: &Splice) {
    let del = isize::try_from(s.del).unwrap();
    splice_text(doc, &ForumText::Minutes, s.pos, del, &s.insert, 0).unwrap();
}

fn minutes(doc: &Automerge) -> String {
    read_text(doc, &ForumText::Minutes).unwrap()
}

#[wasm_bindgen_test]
fn a_splice_counts_characters_not_bytes() {
    let old = "Biên bản họp chi bộ";
    let new = "Biên bản cuộc họp chi bộ";
    let s = minimal_splice(old, new, None);
    assert_eq!(s, splice(9, 0, "cuộc "));
    assert_eq!(s.apply(old), new);
    // "ê" is two UTF-8 bytes and "ả" three: a byte diff would say 12.
    assert_eq!(old.find("họp"), Some(12));

    let s = minimal_splice("Đảng viên", "Đảng viên mới", None);
    assert_eq!(s, splice(9, 0, " mới"));
    let s = minimal_splice("Nguyễn Văn An", "Nguyễn Văn Ân", None);
    assert_eq!(s, splice(11, 1, "Â"));
    assert!(minimal_splice("Chi bộ", "Chi bộ", Some(3)).is_noop());
}

#[wasm_bindgen_test]
fn combining_marks_are_spliced_as_the_characters_they_are() {
    // Decomposed: "Việt" typed as V, i, e, U+0302 (circumflex), U+0323 (dot below), t.
    let without_tone = "Vie\u{302}t";
    let with_tone = "Vie\u{302}\u{323}t";
    let s = minimal_splice(without_tone, with_tone, Some(5));
    assert_eq!(s, splice(4, 0, "\u{323}"));
    assert_eq!(s.apply(without_tone), with_tone);
    // Replacing a precomposed "ệ" by its decomposed spelling is one replacement.
    let s = minimal_splice("Việt Nam", "Vie\u{302}\u{323}t Nam", None);
    assert_eq!(s, splice(2, 1, "e\u{302}\u{323}"));

    let mut doc = minutes_doc(without_tone);
    apply_to_doc(&mut doc, &minimal_splice(without_tone, with_tone, None));
    assert_eq!(minutes(&doc), with_tone);
}

#[wasm_bindgen_test]
fn the_caret_decides_between_equally_small_splices() {
    // Typing "a" with the caret after the first "a" of "aa".
    assert_eq!(minimal_splice("aa", "aaa", Some(2)), splice(1, 0, "a"));
    assert_eq!(minimal_splice("aa", "aaa", None), splice(2, 0, "a"));
    // Backspace at the start of "aab" deletes the first character.
    assert_eq!(minimal_splice("aab", "ab", Some(0)), splice(0, 1, ""));
    assert_eq!(minimal_splice("aab", "ab", None), splice(1, 1, ""));
    // Paste over a selection.
    assert_eq!(minimal_splice("họp ngày 15", "họp ngày 16 tháng 3", Some(19)), splice(10, 1, "6 tháng 3"));
    // A wrong caret still gives a correct splice.
    let s = minimal_splice("chi bộ", "chi bộ Khu phố 3", Some(1));
    assert_eq!(s.apply("chi bộ"), "chi bộ Khu phố 3");
}

#[wasm_bindgen_test]
fn typing_a_paragraph_through_minimal_splices_reproduces_it_in_automerge() {
    // Each step is what a textarea would hold after one input event (typing, a tone mark added
    // by the IME, a deletion, a paste).
    let steps = [
        "H",
        "Ho",
        "Hô",
        "Hôm",
        "Hôm nay",
        "Hôm nay, ngày 15",
        "Hôm nay, ngày 15 tháng 3",
        "Hôm nay, ngày 15 tháng 3 năm 2026, chi bộ họp.",
        "Hôm nay, ngày 15 tháng 3 năm 2026, Chi bộ Khu phố 3 họp.",
        "Hôm nay, ngày 15/3/2026, Chi bộ Khu phố 3 họp. 👍",
        "Hôm nay, ngày 15/3/2026, Chi bộ Khu phố 3 họp diễn đàn. 👍",
        "Hôm nay, Chi bộ Khu phố 3 họp diễn đàn. 👍",
        "",
        "Biên bản",
    ];
    let mut doc = minutes_doc("");
    let mut shown = String::new();
    for step in steps {
        let s = minimal_splice(&shown, step, None);
        apply_to_doc(&mut doc, &s);
        assert_eq!(minutes(&doc), step);
        step.clone_into(&mut shown);
    }
}

#[wasm_bindgen_test]
fn concurrent_typing_merges_character_by_character() {
    let base = "Có mặt 6/7 đảng viên.";
    let mut clerk = minutes_doc(base);
    let mut secretary = clerk.fork();
    // The clerk fixes a word, the secretary adds a sentence, at the same time.
    let clerk_text = "Có mặt 6/7 đồng chí đảng viên.";
    let secretary_text = "Có mặt 6/7 đảng viên. Vắng 1 (có lý do).";
    apply_to_doc(&mut clerk, &minimal_splice(base, clerk_text, None));
    apply_to_doc(&mut secretary, &minimal_splice(base, secretary_text, None));
    clerk.merge(&mut secretary).unwrap();
    assert_eq!(minutes(&clerk), "Có mặt 6/7 đồng chí đảng viên. Vắng 1 (có lý do).");
}

#[wasm_bindgen_test]
fn a_local_edit_rebased_past_a_remote_one_keeps_both() {
    let base = "Chủ trì: đồng chí An. Thư ký: đồng chí Bình.";
    let cases = [
        // Remote before local: local shifts.
        (
            "Chủ trì: đồng chí Nguyễn Văn An. Thư ký: đồng chí Bình.",
            "Chủ trì: đồng chí An. Thư ký: đồng chí Trần Thị Bình.",
        ),
        // Remote after local: local stays.
        (
            "Chủ trì: đồng chí An. Thư ký: đồng chí Bình (vắng).",
            "Chủ trì: đồng chí An, Bí thư. Thư ký: đồng chí Bình.",
        ),
        // Both insert at the same place.
        (
            "Chủ trì: đồng chí An. Thư ký: đồng chí Bình. Có mặt 6.",
            "Chủ trì: đồng chí An. Thư ký: đồng chí Bình. Vắng 1.",
        ),
    ];
    for (remote_text, local_text) in cases {
        let remote = minimal_splice(base, remote_text, None);
        let local = minimal_splice(base, local_text, None);
        // Reference: automerge merging the two edits made concurrently.
        let mut a = minutes_doc(base);
        let mut b = a.fork();
        apply_to_doc(&mut a, &remote);
        apply_to_doc(&mut b, &local);
        a.merge(&mut b).unwrap();
        let merged = minutes(&a);
        let mut text = remote.apply(base);
        for s in rebase(&local, &remote) {
            text = s.apply(&text);
        }
        assert!(text.contains("Thư ký"), "{text}");
        if remote.pos != local.pos {
            assert_eq!(text, merged, "rebased {local:?} past {remote:?}");
        }
    }
}

#[wasm_bindgen_test]
fn a_local_deletion_overlapping_a_remote_one_deletes_only_what_is_left() {
    let base = "một hai ba bốn năm";
    // Remote replaced "hai ba" by "HAI"; local (meanwhile) deleted "ba bốn ".
    let remote = minimal_splice(base, "một HAI bốn năm", None);
    let local = minimal_splice(base, "một hai năm", None);
    assert_eq!((remote.clone(), local.clone()), (splice(4, 6, "HAI"), splice(8, 7, "")));
    let mut text = remote.apply(base);
    for s in rebase(&local, &remote) {
        text = s.apply(&text);
    }
    // What automerge makes of the same two edits.
    let mut a = minutes_doc(base);
    let mut b = a.fork();
    apply_to_doc(&mut a, &remote);
    apply_to_doc(&mut b, &local);
    a.merge(&mut b).unwrap();
    assert_eq!(text, minutes(&a));
    assert_eq!(text, "một HAInăm");
    // A local insert inside text remote deleted lands right after remote's replacement.
    let local = splice(6, 0, "X");
    assert_eq!(rebase(&local, &remote), vec![splice(7, 0, "X")]);
    // A local deletion before and into remote's deletion keeps its part before it.
    assert_eq!(rebase(&splice(2, 4, ""), &remote), vec![splice(2, 2, "")]);
    // Nothing left to do.
    assert!(rebase(&splice(4, 3, ""), &splice(4, 7, "")).is_empty());
}

#[wasm_bindgen_test]
fn carets_move_past_remote_edits_before_them_only() {
    let remote = splice(5, 2, "xyz");
    assert_eq!(remote.map_position(3), 3);
    assert_eq!(remote.map_position(5), 5, "someone typing at the caret does not push it");
    assert_eq!(remote.map_position(6), 8, "inside deleted text: after the replacement");
    assert_eq!(remote.map_position(7), 8);
    assert_eq!(remote.map_position(10), 11);
}

#[wasm_bindgen_test]
fn utf16_offsets_and_character_indexes_convert_both_ways() {
    let text = "Chào 👋 bạn, Việt Nam";
    assert_eq!(chars_to_utf16(text, 5), 5);
    assert_eq!(chars_to_utf16(text, 6), 7, "👋 is two UTF-16 units");
    assert_eq!(utf16_to_chars(text, 7), 6);
    assert_eq!(utf16_to_chars(text, 6), 6, "inside the pair: after the character");
    let chars = text.chars().count();
    for i in 0..=chars {
        assert_eq!(utf16_to_chars(text, chars_to_utf16(text, i)), i);
    }
    assert_eq!(chars_to_utf16(text, chars), text.encode_utf16().count());
    assert_eq!(utf16_to_chars(text, 10_000), chars);
    // Decomposed marks are one unit each in both.
    assert_eq!(chars_to_utf16("Vie\u{302}\u{323}t", 5), 5);
}
